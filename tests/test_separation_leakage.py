"""Separation leakage: q recovered from a representation within each class of the label, against
chance (the label is given, so no floor)."""

from __future__ import annotations

import numpy as np
import pytest

from fairsearch.probes.ladder.separation import separation_leakage


def _rows(n: int, seed: int, *, within: float):
    """``q`` depends on ``y`` (base rates 0.2 / 0.8); ``Z`` carries ``y`` and, scaled by
    ``within``, ``q`` within each class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    q = (rng.random(n) < 0.2 + 0.6 * y).astype(int)
    Z = np.column_stack([2.0 * y + rng.normal(size=n), within * q + rng.normal(size=n),
                         rng.normal(size=n)])  # fmt: skip
    return Z, q, y


def test_a_representation_that_reveals_q_only_through_y_is_at_chance_in_every_class():
    Z, q, y = _rows(1200, 0, within=0.0)
    overall = np.corrcoef(Z[:, 0], q)[0, 1]
    assert overall > 0.3  # q is recoverable from Z without the label ...
    leak = separation_leakage(Z, q, y, n_boot=300)
    for c, interval in leak.by_class.items():  # ... but not within a class of it
        assert interval.ci_low <= leak.chance[c] <= interval.ci_high, (c, interval)
    assert abs(leak.excess) < 0.05 and leak.skipped == ()


def test_q_within_a_class_is_found_and_the_worst_class_is_named():
    Z, q, y = _rows(1200, 1, within=2.0)
    leak = separation_leakage(Z, q, y, n_boot=300)
    assert leak.worst.ci_low > leak.chance[leak.worst_class] + 0.1
    assert leak.worst == max(leak.by_class.values(), key=lambda i: i.value)


def test_a_class_too_small_to_cross_fit_is_skipped_and_none_is_an_error():
    Z, q, y = _rows(600, 2, within=1.0)
    y = y.copy()
    y[:3] = 2  # a third class of three rows
    leak = separation_leakage(Z, q, y, n_boot=100)
    assert leak.skipped == (2,) and set(leak.by_class) == {0, 1}
    with pytest.raises(ValueError, match=r"needs at least one class of y in which every group of "
                                         r"q has at least folds=5 rows"):
        separation_leakage(Z[:8], q[:8], y[:8], n_boot=100)


def test_audit_rows_and_the_report_table_of_a_separation_run():
    import pandas as pd

    from fairsearch.analysis.audit.given_label import separation_rows
    from fairsearch.analysis.audit.representations import COLUMNS
    from fairsearch.report.tables import given_label_table

    Z, q, y = _rows(800, 3, within=2.0)
    reps = {"trial-1/seed-4": Z, "original": Z[:, :1]}
    rows = pd.DataFrame(separation_rows(reps, q, y, criterion="separation", probes=["majority",
                        "logistic"], n_boot=100, seed=0), columns=COLUMNS)  # fmt: skip
    assert set(rows["target"]) == {"q_given_y"} and rows["floor"].isna().all()
    mine = rows[rows["model"] == "trial-1/seed-4"]
    assert sorted(mine.loc[mine["probe"] == "worst_case", "selected"]) == ["y=0", "y=1"]
    worst = mine[mine["probe"] == "worst_class"].iloc[0]
    assert worst["ci_low"] > worst["chance"] + 0.1  # q leaks within the classes here
    only_positive = separation_rows(reps, q, y, criterion="opportunity", probes=["logistic"],
                                    n_boot=100, seed=0)  # fmt: skip
    assert {r["selected"] for r in only_positive} == {"y=1"}
    table = given_label_table(rows)
    assert table is not None and table.head[1:3] == ["within y=0", "within y=1"]
    assert given_label_table(rows.assign(target="q")) is None


def test_the_verdicts_leak_of_a_separation_run_is_its_worst_class_against_chance():
    import pandas as pd

    from fairsearch.analysis.audit.given_label import separation_rows
    from fairsearch.analysis.audit.leakage import headline, judge_leak, leak_sentence
    from fairsearch.analysis.audit.representations import COLUMNS

    Z, q, y = _rows(800, 4, within=2.0)
    independent = pd.DataFrame([dict(model="m", target="q", probe="worst_case",
                                     metric="balanced_accuracy", value=0.8, ci_low=0.78,
                                     ci_high=0.82, chance=0.5, floor=0.79, selected="logistic")],
                               columns=COLUMNS)  # fmt: skip
    assert headline(independent, "m").floor == 0.79  # independence: against the floor
    rows = pd.DataFrame(separation_rows({"m": Z}, q, y, criterion="separation",
                                        probes=["logistic"], n_boot=100, seed=0), columns=COLUMNS)
    leak = headline(pd.concat([independent, rows], ignore_index=True), "m")
    assert leak.probe == "worst_class" and leak.floor is None and leak.reference_name == "chance"
    assert leak.selected in ("y=0", "y=1")
    assert judge_leak(leak)[0] == "fails"  # q leaks within the classes
    assert "on q given the label" in leak_sentence(leak) and "the label given, no floor" in \
        leak_sentence(leak)
