"""Multi-objective successive halving (``search.halving``): the spec key, the rule (dominated
with confidence over the seeds, by enough of the configurations that reached the rung first), the
rung watch a lane runs, and an in-process search whose stopped configurations are ``pruned``."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from fairsearch.nets import MemberStopped
from fairsearch.search.halving import HalvingRule, RungWatch, dominators, rung_entry, stops
from fairsearch.spec import parse_spec
from fairsearch.spec.fields import SpecError
from fairsearch.spec.json_schema import spec_json_schema
from fairsearch.spec.validated import HalvingSpec


def _raw(halving: object = None, trials: int = 10) -> dict:
    raw = {
        "name": "halving",
        "data": {"name": "synthetic_regression", "n": 300, "n_train": 200, "seed": 0},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": {"mu": {"type": "float", "low": 0.0, "high": 10.0},
                  "lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True}},
        "search": {"algorithm": "random", "trials": trials, "max_concurrent": 1, "seed": 0,
                   "seeds": 2, "executor": "inprocess"},
        "trial": {"epochs": 4, "batch_size": 64},
        "post": {"select": {"minimize": "mse", "subject_to": ["cka <= 0.3"]}, "top_k": 2},
    }  # fmt: skip
    if halving is not None:
        raw["search"]["halving"] = halving
    return raw


# ----------------------------------------------------------------------------- the spec key
def test_halving_is_off_unless_asked_and_true_derives_rungs_from_the_epochs() -> None:
    assert parse_spec(_raw()).search.halving is None
    assert parse_spec(_raw(False)).search.halving is None
    assert "halving" not in parse_spec(_raw()).to_dict()["search"]  # spec.yaml reads as before
    raw = _raw(True)
    raw["trial"]["epochs"] = 12
    assert parse_spec(raw).search.halving == HalvingSpec(rungs=(3, 6))
    given = parse_spec(_raw({"rungs": [1, 3], "keep": 0.25, "confidence": 0.95, "min_trials": 2}))
    assert given.search.halving == HalvingSpec(rungs=(1, 3), keep=0.25, confidence=0.95,
                                               min_trials=2)  # fmt: skip
    again = parse_spec(given.to_dict())  # the run folder's spec.yaml reads back the same
    assert again.search.halving == given.search.halving
    assert "halving" in spec_json_schema()["properties"]["search"]["properties"]


@pytest.mark.parametrize(("halving", "changes", "message"), [
    ("yes", {}, r"`search.halving` must be true, false or a mapping of rungs, keep, confidence, "
                r"min_trials, but got 'yes'"),
    ({"rungs": [4]}, {}, r"`search.halving.rungs` must be a non-empty increasing list of epoch "
                         r"counts from 1 to `trial.epochs` - 1 = 3, but got \[4\]"),
    ({"rungs": [2, 1]}, {}, r"`search.halving.rungs` must be .* but got \[2, 1\]"),
    ({"keep": 1}, {}, r"`search.halving.keep` must be a number > 0 and < 1 .* but got 1"),
    ({"confidence": 0.3}, {}, r"`search.halving.confidence` must be a number >= 0.5 and < 1, "
                              r"but got 0.3"),
    ({"min_trials": 0}, {}, r"`search.halving.min_trials` must be an integer >= 1, but got 0"),
    ({"patience": 2}, {}, r"unknown key `search.halving.patience`"),
    (True, {"seeds": 1}, r"`search.halving` judges seed means by their standard errors: set "
                         r"`search.seeds` >= 2, but got 1"),
])  # fmt: skip
def test_a_bad_halving_value_is_refused_in_one_line(halving, changes, message) -> None:
    raw = _raw(halving)
    raw["search"].update(changes)
    with pytest.raises(SpecError, match=message):
        parse_spec(raw)


def test_halving_needs_one_worker_per_lane() -> None:
    raw = _raw(True)
    raw["trial"]["workers"] = 2
    with pytest.raises(SpecError, match=r"`search.halving` needs `trial.workers: 1`"):
        parse_spec(raw)


# ----------------------------------------------------------------------------- the rule
RULE = HalvingRule(rungs=(2,), keep=0.5, confidence=0.9, min_trials=3,
                   terms=("f1", "leak"), senses=(-1.0, 1.0))  # fmt: skip


def _entry(f1: list[float], leak: list[float]) -> list[float]:
    return rung_entry({"f1": f1, "leak": leak}, RULE)


GOOD = [_entry([0.80, 0.81, 0.79], [0.50, 0.51, 0.49]) for _ in range(4)]
BAD = _entry([0.40, 0.41, 0.39], [0.70, 0.71, 0.69])  # worse on both, seeds tight


def test_a_clearly_dominated_configuration_is_stopped() -> None:
    assert dominators(BAD, GOOD, RULE.z) == 4
    assert stops(BAD, GOOD, RULE)


def test_nothing_is_stopped_before_the_minimum_number_reached_the_rung() -> None:
    assert not stops(BAD, GOOD[:2], RULE)  # min_trials = 3
    assert stops(BAD, GOOD[:3], RULE)


def test_a_noisy_configuration_whose_seeds_overlap_is_kept() -> None:
    noisy = _entry([0.30, 0.95, 0.70], [0.40, 0.85, 0.60])  # worse means, spread over the others
    assert noisy[0] > GOOD[0][0] and noisy[1] > GOOD[0][1]  # dominated at the means
    assert dominators(noisy, GOOD, RULE.z) == 0 and not stops(noisy, GOOD, RULE)


def test_worse_on_one_objective_only_is_never_dominated() -> None:
    fair_but_weak = _entry([0.40, 0.41, 0.39], [0.20, 0.21, 0.19])
    assert not stops(fair_but_weak, GOOD, RULE)


def test_keep_sets_how_many_must_dominate() -> None:
    others = GOOD[:2] + [_entry([0.30, 0.31, 0.29], [0.90, 0.91, 0.89])] * 2  # 2 of 4 dominate
    assert stops(BAD, others, RULE)  # keep 0.5: 2 of 4 suffice
    strict = HalvingRule(**{**RULE.__dict__, "keep": 0.25})  # 3 of 4 needed
    assert not stops(BAD, others, strict)


def test_one_seed_has_no_standard_error_and_is_never_judged() -> None:
    assert not stops(_entry([0.4], [0.7]), GOOD, RULE)
    assert math.isnan(_entry([0.4], [0.7])[2])


# ----------------------------------------------------------------------------- the watch
def _row(epoch: int, f1: float, leak: float) -> dict[str, float]:
    return {"epoch": float(epoch), "f1": f1, "leak": leak}


def test_a_batched_population_is_judged_once_every_seed_reached_the_rung() -> None:
    watch = RungWatch(RULE, {2: GOOD}, n_seeds=2)
    for epoch in range(2):
        watch.report(0, _row(epoch, 0.40, 0.70))
        if epoch == 1:
            break
        watch.report(1, _row(epoch, 0.41, 0.71))
    assert watch.stopped_at is None  # seed 1 is part-way below the rung: no judgment yet
    with pytest.raises(MemberStopped):
        watch.report(1, _row(1, 0.41, 0.71))
    assert watch.stopped_at == 2
    with pytest.raises(MemberStopped):  # seed 0 stops at its next report
        watch.report(0, _row(2, 0.40, 0.70))
    record = watch.record()
    assert record["pruned_at"] == 2 and record["rungs"]["2"] == {"f1": [0.40, 0.41],
                                                                 "leak": [0.70, 0.71]}


def test_seeds_trained_one_after_another_are_judged_on_those_done() -> None:
    watch = RungWatch(RULE, {2: GOOD}, n_seeds=3)
    for epoch in range(4):  # seed 0 alone: no standard error, it trains to the end
        watch.report(0, _row(epoch, 0.40, 0.70))
    watch.report(1, _row(0, 0.41, 0.71))
    with pytest.raises(MemberStopped):  # seed 1 at the rung: judged on seeds 0 and 1
        watch.report(1, _row(1, 0.41, 0.71))
    with pytest.raises(MemberStopped):  # seed 2 stops at its first report
        watch.report(2, _row(0, 0.40, 0.70))


def test_the_leak_estimate_is_the_latest_measured_at_or_before_the_rung() -> None:
    watch = RungWatch(RULE, {2: GOOD}, n_seeds=2)
    for s in (0, 1):
        watch.report(s, _row(0, 0.80, 0.50 + s / 100))
    for s in (0, 1):
        watch.report(s, {"epoch": 1.0, "f1": 0.80, "leak": math.nan})  # not measured this epoch
    assert watch.stopped_at is None
    assert watch.record()["rungs"]["2"]["leak"] == [0.50, 0.51]


# ----------------------------------------------------------------------------- a search
@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fairsearch.search.engine import search_inprocess

    root = tmp_path_factory.mktemp("halving")
    rule = {"rungs": [1, 2], "keep": 0.5, "confidence": 0.6, "min_trials": 2}
    return {name: search_inprocess(parse_spec(_raw(h)), storage=root / name)
            for name, h in (("on", rule), ("off", False), ("absent", None))}  # fmt: skip


def _table(run: Path) -> pd.DataFrame:
    t = pd.read_parquet(run / "trials.parquet")
    return t.drop(columns=["started_at", "ended_at", "duration_s", "train_s", "overhead_s"])


def test_a_stopped_configuration_is_pruned_with_its_rung_values(runs) -> None:
    from fairsearch.search.study import load_run_study

    trials = pd.read_parquet(runs["on"] / "trials.parquet")
    pruned = trials[trials["status"] == "pruned"]
    assert len(pruned) >= 1 and (trials["status"] == "completed").sum() >= 5
    assert pruned["rung.pruned_at"].isin([1, 2]).all()
    assert pruned["rung.task"].notna().all() and pruned["rung_se.dependence"].notna().all()
    assert pruned["objective.mse"].isna().all()
    assert pruned["error"].str.startswith("pruned at").all()
    done = trials[trials["status"] == "completed"]
    assert (done["rung.epoch"] == 2).all() and done["rung.pruned_at"].isna().all()
    study = load_run_study(runs["on"])
    states = {t.number: t.state for t in study.trials}
    assert {n for n, s in states.items() if s == optuna.trial.TrialState.PRUNED} == \
        set(pruned["number"])  # fmt: skip
    history = pd.read_parquet(runs["on"] / "history.parquet")
    last = history.groupby("number")["epoch"].max()
    assert (last[pruned["number"]] < 3).all() and (last[done["number"]] == 3).all()


def test_halving_never_changes_a_completed_configurations_result(runs) -> None:
    on, off = (_table(runs[k]).set_index("number") for k in ("on", "off"))
    done = on.index[on["status"] == "completed"]
    for c in ("param.mu", "param.lr", "objective.mse", "objective.cka"):
        pd.testing.assert_series_equal(on.loc[done, c], off.loc[done, c])


def test_with_halving_off_the_trials_table_is_as_without_the_key(runs) -> None:
    off, absent = _table(runs["off"]), _table(runs["absent"])
    pd.testing.assert_frame_equal(off, absent)
    assert not [c for c in off if c.startswith("rung")] and set(off["status"]) == {"completed"}


def test_pareto_report_and_resume_take_a_run_with_pruned_trials(runs, tmp_path: Path) -> None:
    import shutil

    from fairsearch.analysis.pareto.stage import run_pareto
    from fairsearch.report.writer import write_report
    from fairsearch.search.engine import run_search
    from fairsearch.spec import load_spec

    run = tmp_path / "run"
    shutil.copytree(runs["on"], run)
    before = _table(run)
    run_search(load_spec(run / "spec.yaml"), run_dir=run, resume=True, quiet=True)
    pd.testing.assert_frame_equal(_table(run), before)  # a pruned trial is finished, not retried
    run_pareto(run)
    pareto = pd.read_parquet(run / "pareto.parquet")
    pruned = set(before.loc[before["status"] == "pruned", "number"])
    left_out = pareto[pareto["number"].isin(pruned)]
    assert pruned and left_out["rank"].isna().all() and not left_out["on_front"].any()
    assert left_out["candidate"].isna().all() and pareto["candidate"].notna().any()
    assert write_report(run).is_file()


def test_rung_tables_reach_each_asked_configuration(runs) -> None:
    from fairsearch.search.recorder import Recorder
    from fairsearch.search.study import load_run_study
    from fairsearch.spec import load_spec

    spec = load_spec(runs["on"] / "spec.yaml")
    recorder = Recorder(load_run_study(runs["on"]), spec, runs["on"])
    assert recorder.recover() == []
    assert recorder.counts["pruned"] >= 1 and recorder.done() == spec.search.trials
    told = recorder.counts["completed"] + recorder.counts["pruned"]
    table = recorder._rung_tables([(99, {"mu": 1.0, "lr": 1e-3})])[99]
    assert len(table[1]) == told and len(table[2]) <= told


@pytest.mark.slow
@pytest.mark.ray
def test_ray_lanes_prune_the_same_configurations_as_the_in_process_search(ray_local, runs,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    from fairsearch.search.engine import run_search

    rule = {"rungs": [1, 2], "keep": 0.5, "confidence": 0.6, "min_trials": 2}
    raw = _raw(rule)
    raw["search"]["executor"] = "ray"  # one lane: the same order of asks and tells as in process
    on_ray = _table(run_search(parse_spec(raw), storage=tmp_path, quiet=True))
    here = _table(runs["on"])
    cols = ["number", "status", "param.mu", "param.lr", "rung.epoch", "rung.pruned_at"]
    assert (on_ray["status"] == "pruned").any()
    pd.testing.assert_frame_equal(on_ray[cols], here[cols])


def test_a_repaired_study_keeps_its_pruned_trials_pruned(runs, tmp_path: Path) -> None:
    import shutil

    from fairsearch.search.repair import repair_study
    from fairsearch.search.study import load_run_study

    run = tmp_path / "run"
    shutil.copytree(runs["on"], run)
    assert repair_study(run, force=True) is not None
    states = {t.number: t.state for t in load_run_study(run).trials}
    pruned = _table(runs["on"]).query("status == 'pruned'")["number"]
    assert pruned.size and all(states[n] == optuna.trial.TrialState.PRUNED for n in pruned)


def test_the_progress_line_counts_pruned_trials() -> None:
    from fairsearch.search.progress import Progress

    line = Progress(10, quiet=True).line(6, 1, 0, 0, 3, pruned=2)
    assert line.startswith("search 6/10 done (2 pruned), 1 running, front 3")


# ----------------------------------------------------------------------------- every family
def _family_case(case: str):
    from fairsearch.data import synthetic_embeddings, synthetic_regression

    if case == "wrapper":
        return "wrapper", {}, {"mu": 1.0, "lr": 3e-3}, synthetic_regression(n=300, n_train=200, seed=0)
    if case == "own module":
        return ("wrapper", {"factory": "examples.tabular_resnet:make_resnet",
                            "factory_args": {"dropout": 0.0}},
                {"mu": 1.0, "width": 16, "blocks": 1}, synthetic_embeddings(n=300, d=8, seed=0))  # fmt: skip
    batched = case.split()[-1]
    return ("translator", {"batched": batched}, {"fairness": "cka", "w_fair": 1.0, "lr": 1e-3},
            synthetic_embeddings(n=300, d=8, seed=0))  # fmt: skip


@pytest.mark.parametrize("case", ["wrapper", "own module", "translator always",
                                  "translator never"])  # fmt: skip
@pytest.mark.parametrize("dominated", [True, False])
def test_every_family_stops_a_dominated_configuration_at_its_rung(case: str, dominated: bool) -> None:
    from fairsearch.executor.contract import LaneContext
    from fairsearch.families import get_family
    from fairsearch.search.trial import train_configuration

    name, model_args, params, data = _family_case(case)
    family = get_family(name)
    senses = tuple(1.0 if family.metric_info[t].direction == "minimize" else -1.0
                   for t in family.rung_terms)  # fmt: skip
    rule = HalvingRule(rungs=(1,), keep=0.5, confidence=0.6, min_trials=1,
                       terms=tuple(family.rung_terms), senses=senses)  # type: ignore[arg-type]
    # one earlier configuration, far better (dominated) or far worse (kept) on both rung values
    best = -1e6 if dominated else 1e6
    table = {7: {1: [[best, best, 1e-6, 1e-6]]}}
    settings = {"model": name, "model_args": model_args, "epochs": 3, "batch_size": 64,
                "split_seed": 0, "halving": rule.as_dict()}  # fmt: skip
    item = {"key": 7, "params": params, "seeds": [0, 1], "rung_tables": table}
    out = train_configuration(item, LaneContext(data=data), settings=settings)
    last = pd.DataFrame(out["history"]).groupby("seed")["epoch"].max()
    assert set(out["rungs"]["1"]) == set(family.rung_terms)
    if not dominated:
        assert out["status"] == "completed" and out["pruned_at"] is None
        assert (last == 2).all() and out["metrics"]
        return
    assert out["status"] == "pruned" and out["pruned_at"] == 1, out.get("error")
    assert "metrics" not in out  # no final metrics, no strong leak objective
    assert last[1] == 0  # the second seed stops at the rung
    assert last[0] == (2 if case in ("own module", "translator never") else 1)  # alone: to the end
