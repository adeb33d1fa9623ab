from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fairsearch.analysis.audit.leakage import relation
from fairsearch.analysis.decide.compute import compute_verdict
from fairsearch.analysis.decide.text import verdict_text
from fairsearch.analysis.pareto.rule import parse_select
from fairsearch.analysis.pareto.stage import run_pareto
from fairsearch.analysis.retrain.summary import summarise_seeds as summarise
from fairsearch.analysis.retrain.units import retrain_configuration as train_one
from fairsearch.analysis.retrain.units import save_unit as _save
from fairsearch.data import synthetic_regression
from fairsearch.io.lineage import record_stage, stale_stages
from fairsearch.report.tables import audit_matrix
from fairsearch.report.writer import write_report
from fairsearch.runfolder.names import column_label, fmt_param, model_label
from fairsearch.runfolder.reader import load_run

SPEC = {
    "name": "fake",
    "data": {"name": "synthetic_regression", "n": 800, "sha256": "abc123"},
    "model": "wrapper",
    "objectives": [{"metric": "mse", "direction": "minimize"},
                   {"metric": "cka", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0.0, "high": 10.0}},
    "search": {"algorithm": "nsga2", "trials": 12, "max_concurrent": 2, "seed": 0},
    "post": {"select": {"minimize": "mse", "subject_to": ["cka <= 0.45"]}, "seeds": [0, 1]},
}
OBJECTIVES = [("mse", "minimize"), ("cka", "minimize")]


def _fake_run(path: Path, *, audit: bool = True, pareto: bool = True) -> Path:
    rng = np.random.default_rng(0)
    n = 12
    mu = np.linspace(0, 8, n)
    trials = pd.DataFrame({
        "trial_id": [f"r_{i:05d}" for i in range(n)], "run_id": [f"r_{i // 4}" for i in range(n)],
        "number": np.arange(n),
        "status": ["completed"] * (n - 1) + ["diverged"], "error": [None] * (n - 1) + ["nan loss"],
        "seed": np.arange(n), "param.mu": mu, "param.lr": 0.0031234567891,
        "objective.mse": 0.09 + 0.14 * mu + rng.normal(0, 0.05, n),
        "objective.cka": 0.62 - 0.036 * mu + rng.normal(0, 0.02, n),
        "metric.r2": 0.9 - 0.05 * mu,
    })
    trials.loc[n - 1, ["objective.mse", "objective.cka"]] = np.nan
    trials.to_parquet(path / "trials.parquet")
    hist = pd.DataFrame([{"trial_id": t, "number": k, "epoch": e, "total": 2.0 / (e + 1),
                          "task": 1.0 / (e + 1), "dependence": 0.5 + 0.1 / (e + 1),
                          "mse": 1.0 / (e + 1), "cka": 0.6 - 0.01 * e}
                         for k, t in enumerate(trials["trial_id"]) for e in range(10)])
    hist.to_parquet(path / "history.parquet")
    (path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    if pareto:
        run_pareto(path)
    if audit:
        pd.DataFrame({
            "model": ["original", "original", "cfg-3/seed-0", "cfg-3/seed-0"],
            "target": ["q"] * 4, "probe": ["mlp", "logistic", "mlp", "logistic"],
            "metric": ["balanced_accuracy"] * 4, "value": [0.912, 0.871, 0.734, 0.512],
            "ci_low": [0.881, 0.842, 0.701, 0.468], "ci_high": [0.943, 0.899, 0.766, 0.556],
            "chance": [0.5] * 4,
        }).to_parquet(path / "audit.parquet")
    return path


def _retrained_run(path: Path, *, seeds_disagree: bool = False,
                   worst: tuple[float, float, float] = (0.52, 0.49, 0.545),
                   new_audit: bool = True) -> Path:
    """A fake run with retrain (real wrapper weights) and an audit of the new format."""
    _fake_run(path, audit=False)
    files = load_run(path)
    chosen = files.chosen_number
    assert chosen is not None
    other = int(files.pareto.query("on_front and not chosen")["number"].iloc[0])
    data = synthetic_regression(n=200, seed=0, n_train=150)
    out = train_one("wrapper", {"mu": 1.0}, data, seed=0, epochs=1, batch_size=64)
    out["status"], out["error"] = "completed", None
    rows = []
    for number, base_cka in ((chosen, 0.40), (other, 0.30)):
        for seed in (0, 1):
            cka = base_cka + (0.1 if seeds_disagree and seed == 1 and number == chosen else 0.01 * seed)
            cid = f"trial-{number}"
            rows.append({"config_id": cid, "number": number, "trial_id": f"r_{number:05d}",
                         "seed": seed, "status": "completed", "error": None, "duration_s": 1.0,
                         # the Pareto pick has the better validation MSE: the decision keeps it
                         "metric.mse": 0.5 + 0.02 * seed + (0.0 if number == chosen else 0.05),
                         "metric.cka": cka,
                         "test.mse": 0.55 + 0.03 * seed, "test.cka": cka + 0.01})
            _save(path / "retrain" / cid / f"seed-{seed}", out,
                  {"family": "wrapper", "model": {}, "config": {"mu": 1.0},
                   "data": SPEC["data"], "seed": seed, "epochs": 1, "batch_size": 64})
    table = pd.DataFrame(rows)
    table.to_parquet(path / "retrain.parquet")
    summarise(table, OBJECTIVES, ("cka <= 0.45",)).to_parquet(path / "retrain_summary.parquet")
    record_stage(path, "retrain")
    value, lo, hi = worst
    audit = []
    models = ["original", "leace"] + [f"trial-{n}/seed-{s}" for n in (chosen, other) for s in (0, 1)]
    for i, model in enumerate(models):
        shift = 0.3 if model == "original" else 0.01 * i
        for probe, v in (("logistic", 0.50), ("mlp", 0.51), ("worst_case", value)):
            if probe == "worst_case" and not new_audit:
                continue
            v = v + shift
            row = {"model": model, "target": "q", "probe": probe, "metric": "balanced_accuracy",
                   "value": v, "ci_low": v - 0.03, "ci_high": v + 0.03, "chance": 0.5}
            if probe == "worst_case":
                row.update(selected="mlp")
                if model == f"trial-{chosen}/seed-0":
                    row.update(value=value, ci_low=lo, ci_high=hi)
            audit.append(row)
        audit.append({"model": model, "target": "control", "probe": "logistic",
                      "metric": "f1", "value": 0.9, "ci_low": 0.88, "ci_high": 0.92,
                      "chance": 0.6})
        audit.append({"model": model, "target": "control", "probe": "logistic",
                      "metric": "demographic_parity_difference", "value": 0.04,
                      "ci_low": 0.01, "ci_high": 0.08, "chance": 0.0})
        if new_audit:
            audit.append({"model": model, "target": "q", "probe": "mdl",
                          "metric": "mdl_bits", "value": 140.5, "ci_low": np.nan,
                          "ci_high": np.nan, "chance": 150.0})
    table = pd.DataFrame(audit)
    if new_audit:
        table["floor"] = 0.5
        table.loc[len(table)] = {"model": "floor", "target": "q", "probe": "control_label",
                                 "metric": "balanced_accuracy", "value": 0.5, "ci_low": 0.48,
                                 "ci_high": 0.52, "chance": 0.5, "floor": 0.5}
    table.to_parquet(path / "audit.parquet")
    record_stage(path, "audit")
    return path


# ---------------------------------------------------------------------------- basics
def test_report_files_and_content(tmp_path: Path) -> None:
    html_path = write_report(_fake_run(tmp_path))
    out = tmp_path / "report"
    for name in ("report.html", "report.md", "report.json", "trade_off.png", "hypervolume.png",
                 "loss_curves.png", "audit_forest.png"):
        assert (out / name).is_file(), name
    page = html_path.read_text()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for number in ("0.734 [0.701, 0.766]", "0.912"):
        assert number in page and number in (out / "report.md").read_text()
    content = json.loads((out / "report.json").read_text())
    chosen = content["chosen"]
    assert chosen["objective.cka"] <= 0.45
    assert content["manifest"]["data_hash"] == "abc123"
    assert len(content["manifest"]["spec_sha256"]) == 64
    assert content["manifest"]["packages"]["pandas"] == pd.__version__
    pinned = yaml.safe_load(content["reproduce_yaml"])
    assert pinned["space"]["mu"] == {"type": "categorical", "choices": [chosen["param.mu"]]}
    assert pinned["search"]["trials"] == 1
    text = " ".join(content["notice"])
    assert "costs" in text and "interval above chance" in text and "#3 seed 0" in text
    assert content["missing"] == ["no retraining yet: run `fairsearch retrain`"]
    assert content["verdict"]["status"] == "no verdict"
    assert "metric." not in page and "objective." not in page.split("Details")[0]


def test_report_without_optional_stages(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, audit=False, pareto=False)
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
def test_verdict_numbers_equal_the_tables(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path)
    v = compute_verdict(load_run(run))
    assert v.status == "deployable", v.reason
    text = verdict_text(run)
    summary = pd.read_parquet(run / "retrain_summary.parquet")
    row = summary[summary["config_id"] == f"trial-{v.number}"].iloc[0]
    for m, _ in OBJECTIVES:
        for split in ("metric", "test"):
            mean, std = row[f"{split}.{m}.mean"], row[f"{split}.{m}.std"]
            assert f"{mean:.3f} ± {std:.3f}" in text  # the table's ddof=0 std, not recomputed
    audit = pd.read_parquet(run / "audit.parquet")
    head = audit[(audit["model"] == f"trial-{v.number}/seed-{v.seed}")
                 & (audit["probe"] == "worst_case")].iloc[0]
    assert f"{head['value']:.3f} [{head['ci_low']:.3f}, {head['ci_high']:.3f}]" in text
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


def test_snippet_loads_the_weights(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path)
    v = compute_verdict(load_run(run))
    assert v.snippet is not None and len(v.snippet.splitlines()) <= 4
    X = synthetic_regression(n=50, seed=1, n_train=40).X
    scope: dict[str, object] = {"X": X}
    exec(v.snippet, scope)  # noqa: S102 - the report's own snippet, run as a user would
    assert np.asarray(scope["out"]).shape[0] == 50


def test_borderline_when_the_interval_touches_chance(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path, worst=(0.53, 0.47, 0.59), new_audit=False)
    v = compute_verdict(load_run(run))
    assert v.status == "borderline" and v.rule_holds == "every"
    assert v.leak is not None and v.leak.floor is None
    text = verdict_text(run)
    assert "BORDERLINE" in text and "above chance" not in text
    assert "interval contains chance" in text


def test_an_unstable_pick_gives_way_to_a_candidate_that_holds(tmp_path: Path) -> None:
    """The search's pick breaks the rule on one fresh seed; the second candidate holds on every
    seed: the decision recommends the second, and says why."""
    run = _retrained_run(tmp_path, seeds_disagree=True)
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
    text = verdict_text(run)
    assert f"configuration #{v.number}" in text.splitlines()[0] and "unstable" in text


def test_no_candidate_holds_names_the_closest_and_what_would_help(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path)
    table = pd.read_parquet(run / "retrain.parquet")
    table.loc[table["seed"] == 1, "metric.cka"] = 0.46  # every candidate misses on one seed
    table.to_parquet(run / "retrain.parquet")
    for stage in ("retrain", "audit"):
        record_stage(run, stage)
    v = compute_verdict(load_run(run))
    assert v.status in ("borderline", "fails") and v.number is not None
    assert "no retrained candidate holds the rule" in v.reason
    assert f"the closest is #{v.number}" in v.reason and "more trials" in v.help
    assert {c["status"] for c in v.candidates} == {"unstable"}


def test_the_audit_never_changes_the_recommendation(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path)
    before = compute_verdict(load_run(run))
    assert before.status == "deployable"
    audit = pd.read_parquet(run / "audit.parquet")
    mine = audit["model"].str.startswith(f"trial-{before.number}/") & (
        audit["probe"] == "worst_case")
    audit.loc[mine, ["value", "ci_low", "ci_high"]] = [0.9, 0.88, 0.92]  # it leaks badly
    audit.to_parquet(run / "audit.parquet")
    record_stage(run, "audit")
    after = compute_verdict(load_run(run))
    assert after.number == before.number and after.status == "fails"
    assert "recovers q" in after.reason


def test_choose_refuses_test_columns() -> None:
    from fairsearch.analysis.decide.choice import choose

    table = pd.DataFrame({"number": [0], "status": ["completed"], "test.cka": [0.1]})
    with pytest.raises(ValueError, match="validation only"):
        choose(pd.DataFrame({"number": [0]}), table, [], target=None, direction="maximize",
               subject_to=(), task=None, trivial_val=None)


def test_a_near_trivial_model_is_not_deployable(tmp_path: Path) -> None:
    """A rule that lands on a model no better than predicting the training mean: the verdict
    names the trivial predictor it fails to beat, on validation and on test."""
    run = _retrained_run(tmp_path)
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    np.save(run / "retrain" / "test_y.npy", y)
    for pred in (run / "retrain").glob("trial-*/seed-*/test_pred.npy"):
        np.save(pred, np.full(len(y), y.mean()) + rng.normal(0, 0.05, len(y)))
    (run / "retrain" / "reference.json").write_text(json.dumps({
        "task": "regression", "constant": 0.0, "label": "the training mean (0)", "n_classes": 0,
        "val": {"mse": 0.51}, "test": {"mse": float(np.mean(y ** 2))}}))
    v = compute_verdict(load_run(run))
    assert v.status == "fails" and "the training mean (0)" in v.reason
    assert "near-trivial" in v.reason
    assert v.utility is not None and not v.utility.passes
    assert {c["status"] for c in v.candidates} == {"near-trivial"}


def test_fails_when_the_leak_is_far_above_the_floor(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path, worst=(0.75, 0.70, 0.80))
    v = compute_verdict(load_run(run))
    assert v.status == "fails" and "[0.700, 0.800] lies above floor + 0.05" in v.reason


# ---------------------------------------------------------------------------- stale results
def test_select_override_marks_later_stages_stale(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path)
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


def test_rule_that_picks_nothing_says_so(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path)
    run_pareto(run, rule=parse_select("minimize mse; cka <= 0.01"))
    v = compute_verdict(load_run(run))
    assert v.status == "fails" and "picks no configuration" in v.reason
    page = write_report(run).read_text()
    assert "picks no configuration" in page and 'class="banner"' in page
    assert verdict_text(run).startswith("VERDICT: FAILS")


def test_same_pareto_result_keeps_later_stages_current(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path)
    run_pareto(run)
    assert stale_stages(run) == {}


def test_parse_select_errors() -> None:
    with pytest.raises(ValueError, match="--select parts must be"):
        parse_select("maximize control_f1; adversary_bacc ~ 0.5")
    assert parse_select("knee").knee


# ---------------------------------------------------------------------------- audit tables
def test_audit_matrix_new_and_old_format(tmp_path: Path) -> None:
    run = _retrained_run(tmp_path)
    t = audit_matrix(pd.read_parquet(run / "audit.parquet"))
    assert t is not None
    assert t.head[1] == "worst case" and t.head[-1] == "online code length (bits)"
    assert [r[0] for r in t.rows][:3] == ["original", "LEACE", "floor"]
    assert "best" in t.marks.values() and "worst" in t.marks.values()
    assert "floor 0.500" in t.note
    (tmp_path / "old").mkdir()
    old = audit_matrix(pd.read_parquet(_fake_run(tmp_path / "old") / "audit.parquet"))
    assert old is not None and "worst case" not in old.head
    assert "not measured" in old.note
    assert "halving" not in t.note


def test_audit_matrix_names_what_halving_cut(tmp_path: Path) -> None:
    audit = pd.read_parquet(_retrained_run(tmp_path) / "audit.parquet")
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
def test_nothing_overflows_in_headless_chromium(tmp_path: Path, width: int) -> None:
    (tmp_path / "run").mkdir()
    run = _retrained_run(tmp_path / "run")
    result = _layout(write_report(run), width, tmp_path)
    assert result["w"] == width
    assert result["doc"] <= width and result["bad"] == [], result


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium on PATH")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    html_path = write_report(_fake_run(tmp_path))
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
