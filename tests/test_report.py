from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from factory import edit_retrain, edit_table

from fairsearch.analysis.audit.leakage import headline, leak_sentence, relation
from fairsearch.analysis.decide.choice import DISCRETE_TIP
from fairsearch.analysis.decide.compute import compute_verdict, split_shift, what_would_help
from fairsearch.analysis.decide.text import verdict_text
from fairsearch.analysis.pareto.rule import parse_select
from fairsearch.analysis.pareto.stage import run_pareto
from fairsearch.data import synthetic_embeddings
from fairsearch.io.lineage import record_stage, stale_stages
from fairsearch.report.tables import audit_matrix
from fairsearch.report.writer import write_report
from fairsearch.runfolder.names import column_label, fmt_param, model_label
from fairsearch.runfolder.reader import load_run

# The run folders come from tests/factory.py (the real stages on tiny data): `tiny_run(stage)`
# copies the folder after that stage; a test that needs other numbers edits the copy's tables.
OBJECTIVES = [("mse", "minimize"), ("cka", "minimize")]
TinyRun = Callable[..., Path]


def _decided(tiny_run: TinyRun, *, seeds_disagree: bool = False,
             worst: tuple[float, float, float] = (0.52, 0.49, 0.545),
             new_audit: bool = True) -> Path:
    """The tiny run, retrained and audited, with numbers that make a clear case: every seed
    repeats its configuration's search result (stable; with ``seeds_disagree`` seed 1 of the
    Pareto pick breaks the rule) and predicts the test split well, the floor is 0.5, the pick's worst case (MLP selected) is
    ``worst``, the other models sit at chance. ``new_audit=False``: the audit table of before
    the worst case, the floor and the code length (the pick's probes at ``worst``)."""
    run = tiny_run("audit")
    chosen = load_run(run).chosen_number
    assert chosen is not None
    trials = pd.read_parquet(run / "trials.parquet").set_index("number")

    def stable(table: pd.DataFrame) -> None:
        for m, _ in OBJECTIVES:
            table[f"metric.{m}"] = (table["number"].map(trials[f"objective.{m}"])
                                    + 1e-5 * table["seed"])
        if seeds_disagree:
            table.loc[(table["number"] == chosen) & (table["seed"] == 1), "metric.cka"] = 0.46

    edit_retrain(run, stable)
    test_y = np.load(run / "retrain" / "test_y.npy")
    noise = np.random.default_rng(0)
    for pred in (run / "retrain").glob("trial-*/seed-*/test_pred.npy"):
        np.save(pred, (test_y + noise.normal(0.0, 0.1, len(test_y))).astype(np.load(pred).dtype))
    pick = f"trial-{chosen}/"
    value, lo, hi = worst

    def audit(table: pd.DataFrame) -> pd.DataFrame:
        models = table["model"].astype(str)
        worst_rows = table["probe"] == "worst_case"
        table.loc[worst_rows, ["value", "ci_low", "ci_high", "selected"]] = [0.50, 0.47, 0.53,
                                                                           "mlp"]
        table.loc[worst_rows & models.str.startswith(pick),
                  ["value", "ci_low", "ci_high"]] = [value, lo, hi]
        if new_audit:  # the floor of a classification task (this one's y is continuous)
            table["floor"] = 0.5
            table.loc[len(table)] = {"model": "floor", "target": "q", "probe": "control_label",
                                     "metric": "balanced_accuracy", "value": 0.5, "ci_low": 0.48,
                                     "ci_high": 0.52, "chance": 0.5, "floor": 0.5, "selected": ""}
            return table
        probes = (table["target"] == "q") & (table["probe"] == "logistic") & (
            table["metric"] == "balanced_accuracy")
        table.loc[probes & models.str.startswith(pick), ["value", "ci_low", "ci_high"]] = worst
        old = ~worst_rows & (models != "floor") & (table["probe"] != "mdl")
        return table[old].drop(columns=["floor", "selected"])

    edit_table(run, "audit.parquet", audit, stage="audit")
    return run


def _worst(run: Path, model: str) -> pd.Series:
    audit = pd.read_parquet(run / "audit.parquet")
    return audit[(audit["model"] == model) & (audit["probe"] == "worst_case")].iloc[0]


def _interval(row: pd.Series) -> str:
    return f"{row['value']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


# ---------------------------------------------------------------------------- basics
def test_report_files_and_content(tiny_run: TinyRun) -> None:
    run = tiny_run("audit")
    html_path = write_report(run)
    out = run / "report"
    for name in ("report.html", "report.md", "report.json", "trade_off.png", "hypervolume.png",
                 "loss_curves.png", "audit_forest.png"):
        assert (out / name).is_file(), name
    page, md = html_path.read_text(), (out / "report.md").read_text()
    content = json.loads((out / "report.json").read_text())
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == len(content["figures"]) >= 4
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    audited = [m for m in pd.read_parquet(run / "audit.parquet")["model"].unique()
               if m.startswith("trial-")]
    for model in ("original", *audited):  # each model's worst case, as the audit table has it
        number = _interval(_worst(run, model))
        assert number in page and number in md, (model, number)
    chosen = content["chosen"]
    assert chosen["objective.cka"] <= 0.45  # the spec's rule
    spec_bytes = (run / "spec.yaml").read_bytes()
    assert content["manifest"]["spec_sha256"] == hashlib.sha256(spec_bytes).hexdigest()
    assert content["manifest"]["packages"]["pandas"] == pd.__version__
    pinned = yaml.safe_load(content["reproduce_yaml"])
    assert pinned["space"]["mu"] == {"type": "categorical", "choices": [chosen["param.mu"]]}
    assert pinned["search"]["trials"] == 1
    text = " ".join(content["notice"])
    audit = pd.read_parquet(run / "audit.parquet")
    for model in audited:  # the notice says each model's leak from its numbers
        leak = headline(audit, model)
        assert leak is not None and f"{model_label(model)}: {leak_sentence(leak)}." in text
    assert content["missing"] == [] and content["verdict"]["status"] != "no verdict"
    assert "metric." not in page and "objective." not in page.split("Details")[0]


def test_report_before_retraining_says_what_is_missing(tiny_run: TinyRun) -> None:
    run = tiny_run("pareto")
    run_pareto(run, rule=parse_select("minimize cka; mse <= 1"))  # not the best MSE
    write_report(run)
    content = json.loads((run / "report" / "report.json").read_text())
    assert content["missing"] == ["no retraining yet: run `fairsearch retrain`",
                                  "no audit yet: run `fairsearch audit`"]
    assert content["verdict"]["status"] == "no verdict"
    text = " ".join(content["notice"])
    best = int(pd.read_parquet(run / "trials.parquet")
               .sort_values("objective.mse")["number"].iloc[0])
    assert "costs" in text and f"against #{best}, the best mse on the front" in text
    assert "interval" not in text  # no audit: nothing said about a leak


def test_report_without_optional_stages(tiny_run: TinyRun) -> None:
    run = tiny_run("search")
    (run / "history.parquet").unlink()
    write_report(run)
    content = json.loads((run / "report" / "report.json").read_text())
    assert content["audit"] is None and content["chosen"] is None
    page = (run / "report" / "report.html").read_text()
    assert "no audit yet" in page and "no Pareto analysis yet" in page
    assert content["figures"] == ["trade_off.png"]


def test_report_cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fairsearch.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "no spec.yaml" in capsys.readouterr().err


def test_names() -> None:
    assert column_label("metric.control_f1:mean") == "control F1 (val) mean"
    assert column_label("test.adversary_bacc.std") == "adversary balanced accuracy (test) std"
    assert model_label("trial-3/seed-0") == "#3 seed 0" and model_label("leace") == "LEACE"
    assert fmt_param(0.0031234567891) == "0.00312" and fmt_param(128.0) == "128"
    assert relation(0.49, 0.56, 0.5) == "contains" and relation(0.51, 0.6, 0.5) == "above"


# ---------------------------------------------------------------------------- verdict
def test_verdict_numbers_equal_the_tables(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run)
    v = compute_verdict(load_run(run))
    assert v.status == "deployable", v.reason
    text = verdict_text(run)
    summary = pd.read_parquet(run / "retrain_summary.parquet")
    row = summary[summary["config_id"] == f"trial-{v.number}"].iloc[0]
    for m, _ in OBJECTIVES:
        for split in ("metric", "test"):
            mean, std = row[f"{split}.{m}.mean"], row[f"{split}.{m}.std"]
            assert f"{mean:.3f} ± {std:.3f}" in text  # the table's ddof=0 std, not recomputed
    assert _interval(_worst(run, f"trial-{v.number}/seed-{v.seed}")) in text
    assert "interval contains the floor 0.500" in text and "selected probe MLP" in text
    trials = pd.read_parquet(run / "trials.parquet")
    lr = trials.loc[trials["number"] == v.number, "param.lr"].iloc[0]
    assert f"{lr:.3g}" in text and str(lr) not in text  # rounded, no 16-digit floats
    assert f"#{v.number}" in text and f"trial-{v.number}/seed-{v.seed}/model.pt" in text
    assert "every seed" in text
    # The HTML and Markdown carry the same numbers.
    write_report(run)
    page = (run / "report" / "report.html").read_text()
    md = (run / "report" / "report.md").read_text()
    for m, _ in OBJECTIVES:
        s = f"{row[f'metric.{m}.mean']:.3f} ± {row[f'metric.{m}.std']:.3f}"
        assert s in page and s in md
    assert page.index("DEPLOYABLE".lower()) < page.index("Trade-off")


def test_snippet_loads_the_weights(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run)
    v = compute_verdict(load_run(run))
    assert v.snippet is not None and len(v.snippet.splitlines()) <= 4
    X = synthetic_embeddings(n=50, d=8, seed=1).X
    scope: dict[str, object] = {"X": X}
    exec(v.snippet, scope)  # noqa: S102 - the report's own snippet, run as a user would
    assert np.asarray(scope["out"]).shape[0] == 50


def test_borderline_when_the_interval_touches_chance(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run, worst=(0.53, 0.47, 0.59), new_audit=False)
    v = compute_verdict(load_run(run))
    assert v.status == "borderline" and v.rule_holds == "every"
    assert v.leak is not None and v.leak.floor is None
    text = verdict_text(run)
    assert "BORDERLINE" in text and "above chance" not in text
    assert "interval contains chance" in text


def test_an_unstable_pick_gives_way_to_a_candidate_that_holds(tiny_run: TinyRun) -> None:
    """The search's pick breaks the rule on one fresh seed; the second candidate holds on every
    seed: the decision recommends the second, and says why."""
    run = _decided(tiny_run, seeds_disagree=True)
    f = load_run(run)
    pick = f.chosen_number
    v = compute_verdict(f)
    assert v.number is not None and v.number != pick
    assert v.rule_holds == "every" and v.rule_by_seed_test and all(v.rule_by_seed_test.values())
    rows = {c["number"]: c for c in v.candidates}
    assert rows[v.number]["status"] == "recommended"
    assert rows[pick]["status"] == "unstable"
    assert "holds for 1 of 2 fresh seeds" in rows[pick]["problem"]
    assert f"#{pick} unstable" in v.why_chosen and f"#{v.number} has the best" in v.why_chosen
    assert all(c["why"] for c in v.candidates), v.candidates  # each says why it was retrained
    text = verdict_text(run)
    assert f"configuration #{v.number}" in text.splitlines()[0] and "unstable" in text


def test_no_candidate_holds_names_the_closest_and_what_would_help(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run)

    def miss(table: pd.DataFrame) -> None:
        table.loc[table["seed"] == 1, "metric.cka"] = 0.46  # every candidate misses on one seed

    edit_retrain(run, miss)
    record_stage(run, "audit")
    v = compute_verdict(load_run(run))
    assert v.status in ("borderline", "fails") and v.number is not None
    assert "no retrained candidate is eligible" in v.reason
    assert f"the closest is #{v.number}" in v.reason and "more trials" in v.help
    assert {c["status"] for c in v.candidates} == {"unstable"}
    # the closest's fresh seeds that held the rule are counted once, not again by its verdict
    assert "holds for 1 of 2 fresh seeds" in v.reason, v.reason
    assert "the rule holds for 1 of 2 seeds" not in v.reason, v.reason
    assert "holds for some seeds only" not in v.reason, v.reason
    # a discrete output is proposed only to a model whose audit certified no bound
    assert (DISCRETE_TIP in v.help) == (v.bound is None), (v.help, v.bound)
    page = write_report(run).read_text()  # the first screen says what would help too
    assert "Would help: " in page and "more trials" in page


def test_a_shift_every_candidate_shares_from_validation_to_test_is_named() -> None:
    """A recommendation that holds on validation but not on every test seed: when every
    retrained candidate moved the same way between the splits, the verdict says so and gives
    the margin that allows for it (a main job's figures: 0.512 -> 0.553, 0.569 -> 0.606,
    0.499 -> 0.544)."""
    def row(val: float, test: float, metric: str = "adversary_bacc") -> dict:
        return {"val": {metric: {"mean": val, "se": 0.01}}, "test": {metric: test}}

    rows = [row(0.512, 0.553), row(0.569, 0.606), row(0.499, 0.544)]
    text = split_shift(rows, ["adversary_bacc <= 0.55 @ 0.9"])
    assert "every one of the 3 retrained candidates measures adversary_bacc higher on test" in text
    assert "by 0.037 to 0.045" in text and "(adversary_bacc <= 0.505)" in text
    rows[0] = row(0.512, 0.50)  # one candidate moved the other way: no shared shift to name
    assert split_shift(rows, ["adversary_bacc <= 0.55"]) == ""
    lower = [row(0.80, 0.77, "control_f1"), row(0.82, 0.80, "control_f1")]
    assert "(control_f1 >= 0.830)" in split_shift(lower, ["control_f1 >= 0.8"])
    assert "lower on test" in split_shift(lower, ["control_f1 >= 0.8"])


def test_the_audit_never_changes_the_recommendation(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run)
    before = compute_verdict(load_run(run))
    assert before.status == "deployable"

    def leaks(audit: pd.DataFrame) -> None:
        mine = audit["model"].str.startswith(f"trial-{before.number}/") & (
            audit["probe"] == "worst_case")
        audit.loc[mine, ["value", "ci_low", "ci_high"]] = [0.9, 0.88, 0.92]  # it leaks badly

    edit_table(run, "audit.parquet", leaks, stage="audit")
    after = compute_verdict(load_run(run))
    assert after.number == before.number and after.status == "fails"
    assert "recovers q" in after.reason


def test_choose_refuses_test_columns() -> None:
    from fairsearch.analysis.decide.choice import choose

    table = pd.DataFrame({"number": [0], "status": ["completed"], "test.cka": [0.1]})
    with pytest.raises(ValueError, match="validation only"):
        choose(pd.DataFrame({"number": [0]}), table, [], target=None, direction="maximize",
               subject_to=(), task=None, trivial_val=None)


def test_a_near_trivial_model_is_not_deployable(tiny_run: TinyRun) -> None:
    """A rule that lands on a model no better than predicting the training mean: the verdict
    names the trivial predictor it fails to beat, on validation and on test."""
    run = _decided(tiny_run)
    reference = json.loads((run / "retrain" / "reference.json").read_text())
    for pred in (run / "retrain").glob("trial-*/seed-*/test_pred.npy"):
        np.save(pred, np.full(len(np.load(pred)), reference["constant"]))

    def trivial(table: pd.DataFrame) -> None:
        table["metric.mse"] = reference["val"]["mse"] + 1e-3 * table["seed"]

    def trivial_search(trials: pd.DataFrame) -> None:  # the search's seeds pool with them
        trials["per_seed.mse"] = [[reference["val"]["mse"]] * len(v)
                                  for v in trials["per_seed.mse"]]

    edit_table(run, "trials.parquet", trivial_search, stage="pareto")
    edit_retrain(run, trivial)
    record_stage(run, "audit")
    v = compute_verdict(load_run(run))
    assert v.status == "fails" and reference["label"] in v.reason
    assert "near-trivial" in v.reason
    assert v.utility is not None and not v.utility.passes
    assert {c["status"] for c in v.candidates} == {"near-trivial"}


def test_fails_when_the_leak_is_far_above_the_floor(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run, worst=(0.75, 0.70, 0.80))
    v = compute_verdict(load_run(run))
    assert v.status == "fails" and "[0.700, 0.800] lies above floor + 0.05" in v.reason


# ---------------------------------------------------------------------------- stale results
def test_select_override_marks_later_stages_stale(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run)
    assert stale_stages(run) == {}
    run_pareto(run, rule=parse_select("minimize cka; mse <= 0.5"))
    meta = json.loads((run / "pareto.json").read_text())
    assert meta["rule_source"].startswith("command line")
    assert meta["select"] == {"subject_to": ["mse <= 0.5"], "minimize": "cka"}
    assert set(stale_stages(run)) == {"retrain", "audit"}
    v = compute_verdict(load_run(run))
    assert v.status == "no verdict" and "stale" in v.reason
    page = write_report(run).read_text()
    assert 'class="banner"' in page and "STALE" in page


def test_rule_that_picks_nothing_says_so(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run)
    run_pareto(run, rule=parse_select("minimize mse; cka <= 0.0001"))
    v = compute_verdict(load_run(run))
    assert v.status == "fails" and "picks no configuration" in v.reason
    page = write_report(run).read_text()
    assert "picks no configuration" in page and 'class="banner"' in page
    assert verdict_text(run).startswith("VERDICT: FAILS")


def test_same_pareto_result_keeps_later_stages_current(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run)
    run_pareto(run)
    assert stale_stages(run) == {}


def test_parse_select_errors() -> None:
    with pytest.raises(ValueError, match="--select parts must be"):
        parse_select("maximize control_f1; adversary_bacc ~ 0.5")
    assert parse_select("knee").knee


# ---------------------------------------------------------------------------- audit tables
def test_audit_matrix_new_and_old_format(tiny_run: TinyRun) -> None:
    run = _decided(tiny_run)
    audit = pd.read_parquet(run / "audit.parquet")
    audit = audit[audit["metric"] != "fold_seeds"]  # every probe on every fold seed: no halving
    leace = audit[audit["model"] == "original"].assign(model="leace")  # as a translator's run has
    t = audit_matrix(pd.concat([audit, leace], ignore_index=True))
    assert t is not None
    assert t.head[1] == "worst case" and t.head[-1] == "online code length (bits)"
    assert [r[0] for r in t.rows][:3] == ["original", "LEACE", "floor"]
    assert "best" in t.marks.values() and "worst" in t.marks.values()
    assert "floor 0.500" in t.note
    old = audit_matrix(pd.read_parquet(_decided(tiny_run, new_audit=False) / "audit.parquet"))
    assert old is not None and "worst case" not in old.head
    assert "not measured" in old.note
    assert "halving" not in t.note


def test_audit_matrix_names_what_halving_cut(tiny_run: TinyRun) -> None:
    audit = pd.read_parquet(tiny_run("audit") / "audit.parquet")
    audit = audit[audit["metric"] != "fold_seeds"]
    base = dict(target="q", metric="fold_seeds", ci_low=np.nan, ci_high=np.nan, chance=2.0,
                floor=np.nan, selected="")
    seeds = pd.DataFrame([dict(base, model="original", probe="gbt", value=1.0),
                          dict(base, model="original", probe="mlp", value=2.0)])
    t = audit_matrix(pd.concat([audit, seeds], ignore_index=True))
    assert t is not None
    assert "on 1 of 2 fold seeds: original: boosted trees." in t.note, t.note


# ---------------------------------------------------------------------------- rendering
_PROBE_JS = """<script>
window.addEventListener('load', () => {
  const W = window.innerWidth, bad = [];
  const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; }
    return false; };
  for (const el of document.querySelectorAll('body *')) {
    if (scrolls(el)) continue;
    const r = el.getBoundingClientRect(), o = getComputedStyle(el).overflowX;
    if (r.right > W + 1) bad.push('wide:' + el.tagName + '.' + el.className);
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && o !== 'auto' && o !== 'scroll')
      bad.push('clip:' + el.tagName + '.' + el.className);
  }
  document.title = 'RESULT' + JSON.stringify({doc: document.documentElement.scrollWidth, w: W,
                                               bad: bad.slice(0, 8)});
});
</script>"""


def _layout(html_path: Path, width: int, tmp: Path) -> dict[str, object]:
    probe = tmp / f"probe-{width}.html"
    probe.write_text(html_path.read_text().replace("</body>", _PROBE_JS + "</body>"))
    out = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp / f'profile-{width}'}",
         f"--window-size={width},900", "--virtual-time-budget=3000", "--dump-dom",
         probe.resolve().as_uri()],
        check=True, capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"<title>RESULT(.*?)</title>", out)
    assert m, out[:500]
    return json.loads(m.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium on PATH")
@pytest.mark.parametrize("width", [1024, 1400])
def test_nothing_overflows_in_headless_chromium(tiny_run: TinyRun, tmp_path: Path,
                                                width: int) -> None:
    run = _decided(tiny_run)
    result = _layout(write_report(run), width, tmp_path)
    assert result["w"] == width
    assert result["doc"] <= width and result["bad"] == [], result


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium on PATH")
def test_report_renders_in_headless_chromium(tiny_run: TinyRun, tmp_path: Path) -> None:
    html_path = write_report(tiny_run("audit"))
    png = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
         "--window-size=1200,2000", html_path.resolve().as_uri()],
        check=True, capture_output=True, timeout=120)
    assert png.is_file() and png.stat().st_size > 10_000
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    assert img.std() > 0.05  # not a blank page
    dark = (img.mean(-1) < 0.5).mean()
    assert dark > 0.005


def test_group_table_names_each_group() -> None:
    import pandas as pd

    from fairsearch.report.tables import group_table

    audit = pd.DataFrame([
        dict(model="original", target="control", probe="logistic", metric=m, value=v,
             ci_low=v - 0.01, ci_high=v + 0.01, chance=float("nan"))
        for m, v in (("demographic_parity_difference", 0.2), ("accuracy[q=0]", 0.8),
                     ("accuracy[q=1]", 0.7))])  # fmt: skip
    table = group_table(audit, {"0": ("Black × Female", 30), "1": ("White × Male", 400)})
    assert "accuracy [Black × Female]" in table.head and "accuracy [White × Male]" in table.head
    assert "Black × Female: 30, White × Male: 400" in table.note
    assert "accuracy [q=1]" in group_table(audit).head  # no names: the code


def test_what_would_help_proposes_a_discrete_output_only_where_there_is_none() -> None:
    """An Adult run of a quantized translator with no eligible candidate was told to try 'a
    family whose output is discrete': the tip goes where the audit certified a bound."""
    tips = "more trials, or more search seeds; " + DISCRETE_TIP
    assert what_would_help(tips, None) == tips
    assert what_would_help(tips, 0.641) == "more trials, or more search seeds"
