from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fairsearch.analysis.pareto.analysis import pareto_analysis
from fairsearch.analysis.pareto.front import (
    default_reference_point,
    hypervolume,
    hypervolume_curve,
    is_pareto_front,
    knee_point,
    loss_matrix,
    non_dominated_ranks,
)
from fairsearch.analysis.pareto.rule import SelectionRule, parse_select, rule_mapping
from fairsearch.analysis.pareto.stage import run_pareto
from fairsearch.spec.constraints import parse_constraint
from fairsearch.spec.schema import SpecError, parse_spec


def _trials(values: np.ndarray, names=("mse", "cka"), **metrics) -> pd.DataFrame:
    n = len(values)
    df = pd.DataFrame({"trial_id": [f"t{i}" for i in range(n)], "number": np.arange(n),
                       "status": ["completed"] * n})
    for j, name in enumerate(names):
        df[f"objective.{name}"] = values[:, j]
    for k, v in metrics.items():
        df[f"metric.{k}"] = v
    return df


def test_staircase_hypervolume_closed_form() -> None:
    # points (i, n-1-i): the dominated area with reference (n, n) is n(n+1)/2
    for n in (1, 2, 5, 9):
        pts = np.array([[i, n - 1 - i] for i in range(n)], dtype=float)
        assert hypervolume(pts, np.array([n, n], float)) == pytest.approx(n * (n + 1) / 2)


def test_dominated_and_outside_points_add_nothing() -> None:
    # (2.5, 2.5) is dominated, (5, -1) lies beyond the reference point
    pts = np.array([[0.0, 2.0], [2.0, 0.0], [2.5, 2.5], [5.0, -1.0]])
    ref = np.array([3.0, 3.0])
    assert hypervolume(pts, ref) == pytest.approx(3 + 3 - 1)
    assert hypervolume(np.vstack([pts, [[1.5, 1.5]]]), ref) == pytest.approx(5 + 0.25)


def test_3d_hypervolume_known_sets() -> None:
    ref = np.ones(3)
    assert hypervolume(np.zeros((1, 3)), ref) == pytest.approx(1.0)
    # three axis-aligned slabs: union of [a,1]^3 boxes, inclusion-exclusion by hand
    pts = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    expected = 3 * 0.25 - 3 * 0.125 + 0.125
    assert hypervolume(pts, ref) == pytest.approx(expected)
    # permutation points on a grid: count of dominated voxels, brute force
    rng = np.random.default_rng(0)
    grid = np.stack([rng.permutation(6) for _ in range(3)], axis=1).astype(float)
    r = np.full(3, 6.0)
    brute = sum(any(np.all(p <= v) for p in grid) for v in itertools.product(range(6), repeat=3))
    assert hypervolume(grid, r) == pytest.approx(brute)
    # 4-D: one point is a box
    assert hypervolume(np.array([[0.5, 0.5, 0.5, 0.5]]), np.ones(4)) == pytest.approx(0.0625)


def test_mixed_directions_flip_once() -> None:
    vals = np.array([[0.1, 0.9], [0.2, 0.95], [0.3, 0.5]])  # minimise mse, maximise f1
    loss = loss_matrix(vals, ["minimize", "maximize"])
    assert np.array_equal(is_pareto_front(loss), [True, True, False])
    assert np.array_equal(non_dominated_ranks(loss), [0, 0, 1])
    with pytest.raises(ValueError, match="'minimize' or 'maximize'.*'max'"):
        loss_matrix(vals, ["minimize", "max"])  # type: ignore[list-item]


def test_ranks_beyond_first_front_and_duplicates() -> None:
    loss = np.array([[0, 0], [0, 0], [1, 1], [2, 0.5], [3, 3]], dtype=float)
    assert non_dominated_ranks(loss).tolist() == [0, 0, 1, 1, 2]


def test_nan_and_failed_rows_excluded() -> None:
    vals = np.array([[0.0, 1.0], [1.0, 0.0], [np.nan, -5.0], [-9.0, -9.0]])
    df = _trials(vals)
    df.loc[3, "status"] = "failed"
    r = pareto_analysis(df, [("mse", "minimize"), ("cka", "minimize")])
    assert r.table["rank"].isna().tolist() == [False, False, True, True]
    assert r.table["on_front"].tolist() == [True, True, False, False]
    # default reference point: worst + 10% of range → (1.1, 1.1)
    assert r.reference_point == pytest.approx({"mse": 1.1, "cka": 1.1})
    assert r.hypervolume == pytest.approx(1.1 * 0.1 + 0.1 * 1.0)
    assert [n for n, _ in r.hv_curve] == [0, 1]


def test_reference_point_in_objective_units_for_maximise() -> None:
    vals = np.array([[0.0, 1.0], [1.0, 0.0]])
    df = _trials(vals, names=("mse", "f1"))
    r = pareto_analysis(df, [("mse", "minimize"), ("f1", "maximize")])
    assert r.reference_point == pytest.approx({"mse": 1.1, "f1": -0.1})
    ref = default_reference_point(loss_matrix(vals, ["minimize", "maximize"]))
    assert ref == pytest.approx([1.1, 0.1])


def test_hypervolume_curve_is_monotone() -> None:
    rng = np.random.default_rng(1)
    loss = rng.random((30, 3))
    curve = hypervolume_curve(loss, np.ones(3) * 1.1)
    assert np.all(np.diff(curve) >= -1e-12)
    assert curve[-1] == pytest.approx(hypervolume(loss, np.ones(3) * 1.1))


def test_knee_point_2d_and_3d() -> None:
    front = np.array([[0.0, 1.0], [0.1, 0.2], [0.5, 0.1], [1.0, 0.0]])
    assert knee_point(front) == 1
    front3 = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [0.3, 0.3, 0.3]], float)
    assert knee_point(front3) == 3


@pytest.mark.parametrize(("text", "metric", "op", "value"), [
    ("adversary_f1 <= 0.1", "adversary_f1", "<=", 0.1),
    ("cka<1e-2", "cka", "<", 0.01),
    (" metric.acc >= -3 ", "metric.acc", ">=", -3.0),
    ("x == .5", "x", "==", 0.5),
])
def test_parse_constraint(text: str, metric: str, op: str, value: float) -> None:
    c = parse_constraint(text)
    assert (c.metric, c.op, c.value) == (metric, op, value)


@pytest.mark.parametrize("bad", ["adversary_f1 =< 0.1", "f1 <= abc", "<= 0.1",
                                 "__import__('os') <= 1", "f1 <= 0.1; x"])
def test_parse_constraint_errors_name_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match=r"'<metric> <op> <number>'.*" + __import__("re").escape(
            repr(bad))):
        parse_constraint(bad)


SPEC = {"name": "p", "data": {"name": "synthetic_regression", "n": 300, "n_train": 200},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": {"mu": {"type": "float", "low": 0.0, "high": 1.0}}}


def test_selection_rule_is_validated_by_the_spec() -> None:
    def post(select: dict) -> dict:
        return {**SPEC, "post": {"select": select}}

    with pytest.raises(SpecError, match=r"unknown key `post.select.maximise`"):
        parse_spec(post({"maximise": "mse"}))
    with pytest.raises(SpecError, match="both"):
        parse_spec(post({"maximize": "mse", "minimize": "cka"}))
    with pytest.raises(SpecError, match=r"`post.select.maximize` must be one of .*'nope'"):
        parse_spec(post({"maximize": "nope"}))
    rule = SelectionRule.from_post(parse_spec(post({"minimize": "mse",
                                                    "subject_to": ["cka <= 0.4"]})).post)
    assert rule == parse_select("minimize mse; cka <= 0.4")
    assert rule_mapping(rule) == {"subject_to": ["cka <= 0.4"], "minimize": "mse"}
    knee = SelectionRule.from_post(parse_spec(SPEC).post)  # no select: the knee
    assert knee.knee and knee.target is None and knee == parse_select("knee")


def test_select_line_errors_and_unknown_metrics() -> None:
    with pytest.raises(ValueError, match=r"at most one of .*\['maximize a', 'minimize b'\]"):
        parse_select("maximize a; minimize b")
    df = _trials(np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"unknown metric 'nope'.*\['cka', 'mse'\]"):
        pareto_analysis(df, [("mse", "minimize"), ("cka", "minimize")],
                        parse_select("maximize nope"))


def test_constrained_pick() -> None:
    vals = np.array([[0.1, 0.9], [0.2, 0.5], [0.4, 0.2], [0.8, 0.05]])  # mse, cka (both min)
    df = _trials(vals, adversary_f1=[0.6, 0.3, 0.08, 0.01])
    objs = [("mse", "minimize"), ("cka", "minimize")]
    rule = parse_select("minimize mse; adversary_f1 <= 0.1")
    r = pareto_analysis(df, objs, rule)
    assert r.chosen_trial_id == "t2"
    assert r.table["chosen"].sum() == 1
    none = parse_select("minimize mse; adversary_f1 < 0")
    r2 = pareto_analysis(df, objs, none)
    assert r2.chosen_trial_id is None and "nothing chosen" in r2.notes[-1]
    knee = pareto_analysis(df, objs, parse_select("knee"))
    assert knee.chosen_trial_id in {"t1", "t2"}


def test_run_pareto_writes_files(tmp_path: Path) -> None:
    vals = np.array([[0.1, 0.9], [0.2, 0.5], [0.4, 0.2], [0.3, 0.6]])
    _trials(vals).to_parquet(tmp_path / "trials.parquet")
    spec = {**SPEC, "post": {"select": {"minimize": "cka", "subject_to": ["mse <= 0.25"]}}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    r = run_pareto(tmp_path)
    table = pd.read_parquet(tmp_path / "pareto.parquet")
    assert list(table.columns[:5]) == ["trial_id", "number", "rank", "on_front", "chosen"]
    assert table.loc[table["chosen"], "trial_id"].tolist() == ["t1"] == [r.chosen_trial_id]
    meta = json.loads((tmp_path / "pareto.json").read_text())
    assert meta["chosen_trial_id"] == "t1"
    assert meta["rule"] == "minimize cka subject to mse <= 0.25"
    assert meta["rule_source"] == "spec.yaml post.select"
    assert set(meta["reference_point"]) == {"mse", "cka"} and len(meta["hv_curve"]) == 4
    assert not list(tmp_path.glob(".*.tmp"))
    r = run_pareto(tmp_path, rule=parse_select("minimize mse"))  # --select overrides the spec
    meta = json.loads((tmp_path / "pareto.json").read_text())
    assert r.chosen_trial_id == meta["chosen_trial_id"] == "t0"
    assert meta["select"] == {"subject_to": [], "minimize": "mse"}
    assert meta["rule_source"] == "command line (--select)"


def test_cli_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fairsearch.cli import main

    assert main(["pareto", str(tmp_path)]) == 2
    assert "no trials.parquet" in capsys.readouterr().err


def test_configurations_tied_with_the_pick_become_candidates_best_first() -> None:
    # f1 (max) and leak (min); the rule: maximize f1 with leak <= 0.6
    vals = np.array([[0.70, 0.59], [0.695, 0.55], [0.60, 0.40], [0.66, 0.50], [0.699, 0.65],
                     [0.692, 0.58]])
    df = _trials(vals, names=("f1", "leak"))
    df["se.f1"] = [0.004, 0.004, 0.004, 0.004, 0.004, 0.004]
    df["n_seeds"] = 4
    objs = [("f1", "maximize"), ("leak", "minimize")]
    rule = parse_select("maximize f1; leak <= 0.6")
    r = pareto_analysis(df, objs, rule)
    assert r.chosen_trial_id == "t0"
    whys = dict(r.candidates)
    tied = [t for t, why in r.candidates if "seed noise of the pick" in why]
    # t1 and t5 are within 1.645 * sqrt(2) * 0.004 = 0.0093 of the pick; t3 (0.04 behind) is
    # not, and t4 is closer still but breaks the rule
    assert tied == ["t1", "t5"]
    assert "t3" not in whys or "seed noise" not in whys["t3"]
    assert "t4" not in whys
    # noisier seeds widen the tie: t3 joins
    df["se.f1"] = 0.03
    assert "t3" in [t for t, why in pareto_analysis(df, objs, rule).candidates
                    if "seed noise" in why]
    # one seed a trial (no standard errors): no ties are claimed
    assert not [w for _, w in pareto_analysis(df.drop(columns="se.f1"), objs, rule).candidates
                if "seed noise" in w]
