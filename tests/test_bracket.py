"""The verdict's leak bracket (probes from below, the certified bound from above) and reads-q line."""

from __future__ import annotations

import pandas as pd

from fairsearch.analysis.decide.bracket import READS_Q, bracket_sentence, reads_q_sentence
from fairsearch.analysis.decide.text import render_text
from fairsearch.analysis.decide.verdict import Verdict
from fairsearch.report.tables import verdict_table


def _audit(with_bound: bool) -> pd.DataFrame:
    rows = [dict(model="m/seed-0", target="q", probe="worst_case", metric="balanced_accuracy",
                 value=0.61, ci_low=0.60, ci_high=0.62, selected="gbt")]  # fmt: skip
    if with_bound:
        rows.append(dict(model="m/seed-0", target="q", probe="certified_bound",
                         metric="balanced_accuracy", value=0.64, ci_low=0.64, ci_high=0.64,
                         selected="any classifier, p >= 0.95; 128 cells, plug-in 0.620"))
    return pd.DataFrame(rows)


def test_bracket_states_the_bound_or_that_none_exists():
    with_bound = bracket_sentence(_audit(True), "m/seed-0")
    assert with_bound is not None
    assert "probes reach 0.610 [0.600, 0.620]" in with_bound
    assert "no classifier exceeds 0.640" in with_bound
    without = bracket_sentence(_audit(False), "m/seed-0")
    assert without is not None and "no certified upper bound" in without
    assert bracket_sentence(_audit(True), "other/seed-0") is None
    assert bracket_sentence(None, "m/seed-0") is None


def test_reads_q_only_for_group_aware_models():
    assert reads_q_sentence({"q_input": True}) == READS_Q
    assert reads_q_sentence({"q_input": "true"}) == READS_Q
    assert reads_q_sentence({"q_input": False}) is None
    assert reads_q_sentence({"fairness": "mmd"}) is None


def test_verdict_shows_the_bracket_and_reads_q():
    v = Verdict("deployable", "ok", bracket="probes reach 0.610", reads_q=READS_Q)
    labels = [r[0] for r in verdict_table(v).rows]
    assert "leak bracket" in labels and "reads q" in labels
    text = render_text(v)
    assert "leak bracket: probes reach 0.610" in text and "reads q: reads q to translate" in text


def test_the_verdict_explains_the_words_it_uses_and_only_those():
    v = Verdict("deployable", "ok", bracket="probes reach 0.610", params={"sigma_f": 1.0})
    words = render_text(v).split("  words:\n")[1]
    assert "leak bracket: the leak lies between the probes' worst case" in words
    assert "sigma_f, sigma_q: the bandwidths" in words
    plain = render_text(Verdict("deployable", "ok"))
    assert "words:" not in plain  # nothing to explain
