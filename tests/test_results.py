from __future__ import annotations

import math

import pandas as pd
import pytest
from optuna.trial import TrialState

from fairsearch.io.atomic import write_atomic
from fairsearch.search.recorder import Recorder
from fairsearch.search.study import open_study
from fairsearch.spec.schema import parse_spec

RAW = {
    "name": "rec",
    "data": {"name": "synthetic_regression", "n": 200},
    "model": "wrapper",
    "objectives": [{"metric": "mse", "direction": "minimize"},
                   {"metric": "cka", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0, "high": 10},
              "dependence": {"type": "categorical", "choices": ["cka", "hsic"]},
              "sigma_f": {"type": "float", "low": 0.2, "high": 5,
                          "when": {"dependence": "cka"}}},
    "search": {"algorithm": "random", "trials": 6, "max_concurrent": 4, "seed": 0},
}


@pytest.fixture
def recorder(tmp_path):
    spec = parse_spec(RAW)
    return Recorder(open_study(spec, tmp_path), spec, tmp_path)


def report(number, status="completed", mse=1.0, cka=0.5, **extra):
    return {"key": number, "status": status, "metrics": {"mse": mse, "cka": cka, "hsic": 0.1},
            "started_at": 100.0, "ended_at": 101.5, "seed": 0, "node": "n", "lane": 0,
            "attempt": 0, "train_s": 1.4, "overhead_s": 0.01,
            "history": [{"epoch": 0, "total": 2.0}, {"epoch": 1, "total": 1.0}], **extra}


def ask(recorder, k):
    """Ask ``k`` configurations (the spec allows that many untold)."""
    return [recorder.ask(i) for i in range(k)]


def test_outcomes_are_told_and_tabulated(recorder, tmp_path):
    asked = ask(recorder, 4)
    assert [a["key"] for a in asked] == [0, 1, 2, 3]
    recorder.tell(0, report(0))
    recorder.tell(1, report(1, mse=math.nan))  # a NaN objective: Optuna's tell would refuse it
    recorder.tell(2, report(2, status="diverged", error="training loss diverged"))
    recorder.tell(0, report(0, mse=99.0))  # a duplicate (a restarted lane re-sends) is ignored
    recorder.fail(3, "the lane died: boom")
    recorder.flush()
    states = [t.state for t in recorder.study.trials]
    assert TrialState.RUNNING not in states
    assert states == [TrialState.COMPLETE] + [TrialState.FAIL] * 3
    df = pd.read_parquet(tmp_path / "trials.parquet")
    assert list(df["status"]) == ["completed", "failed", "diverged", "failed"]
    assert df.loc[0, "objective.mse"] == 1.0 and df["objective.mse"].isna().sum() == 3
    assert "must be finite" in df.loc[1, "error"] and df.loc[3, "error"] == "the lane died: boom"
    assert str(df["started_at"].dtype) == "datetime64[us, UTC]" and df.loc[0, "duration_s"] == 1.5
    assert df.loc[0, "train_s"] == 1.4 and df.loc[0, "overhead_s"] == 0.01
    assert str(df["lane"].dtype) == "Int64" and df.loc[0, "trial_id"] == "trial-0"
    assert df["metric.hsic"].dtype == "float64" and df["param.mu"].dtype == "float64"
    assert str(df["param.dependence"].dtype) == "string"
    # conditional parameter: null exactly where its condition is off
    assert (df["param.sigma_f"].isna() == (df["param.dependence"] != "cka")).all()
    hist = pd.read_parquet(tmp_path / "history.parquet")
    assert set(hist["number"]) == {0, 1, 2} and hist["epoch"].dtype == "int64"
    assert recorder.done() == 4 and recorder.counts["diverged"] == 1
    assert recorder.ask(0) is not None and recorder.ask(1) is not None  # budget 6: two more
    assert recorder.ask(2) is None


def test_never_more_asked_than_max_concurrent(recorder):
    ask(recorder, 4)  # max_concurrent is 4 in RAW (population 1)
    trials = len(recorder.study.trials)
    assert recorder.ask(4) is None  # at capacity: nothing more is asked
    assert len(recorder.study.trials) == trials
    assert recorder.peak_untold == 4 and recorder.untold_at_ask == [0, 1, 2, 3]


@pytest.mark.parametrize("population", [2, 3])
def test_never_more_asked_than_population_times_lanes(tmp_path, population):
    raw = {**RAW, "search": {**RAW["search"], "trials": 30, "population": population}}
    spec = parse_spec(raw)
    rec = Recorder(open_study(spec, tmp_path), spec, tmp_path)
    items = []
    while (item := rec.ask(len(items))) is not None:
        items.append(item)
    assert rec.peak_untold == len(rec.pending) == population * 4
    assert max(rec.untold_at_ask) == population * 4 - 1
    assert sum(len(i.get("members") or [i]) for i in items) == population * 4


def test_recover_interrupts_running_trials_and_reenqueues_each_once(recorder, tmp_path):
    ask(recorder, 2)
    recorder.tell(0, report(0))
    # a kill between the record and the tell: the record says completed, the state is RUNNING
    trial = recorder.pending[1]
    trial.set_user_attr("record", report(1, mse=7.0))
    stale_params = [t.params for t in recorder.study.trials if t.state == TrialState.RUNNING]
    # a new driver (after kill -9) opens the same study
    fresh = Recorder(open_study(recorder.spec, tmp_path, resume=True), recorder.spec, tmp_path)
    assert fresh.recover() == [1] and fresh.done() == 1 and fresh.counts["interrupted"] == 1
    again = fresh.ask(0)
    assert again["params"] == stale_params[0]  # the sampler's proposal is kept
    df = pd.read_parquet(tmp_path / "trials.parquet")
    assert list(df["status"]) == ["completed", "interrupted"]
    assert df["objective.mse"].isna().tolist() == [False, True]  # the stale record is not shown
    # a second resume does not enqueue the same configuration again
    fresh.interrupt_pending()
    third = Recorder(open_study(recorder.spec, tmp_path, resume=True), recorder.spec, tmp_path)
    assert third.recover() == [2]  # only the retry that was itself interrupted
    assert int(pd.read_parquet(tmp_path / "trials.parquet")["retry_of"].dropna().iloc[0]) == 1


def test_a_proposal_that_repeats_a_completed_configuration_is_told_its_result_untrained(recorder,
                                                                                       tmp_path):  # fmt: skip
    (first,) = ask(recorder, 1)
    recorder.tell(0, report(0, mse=3.0, cka=0.25))
    # the sampler proposes trial 0's configuration again (an enqueued copy stands in)
    recorder.study.enqueue_trial(first["params"])
    handed = recorder.ask(0)
    assert handed["key"] == 2 and handed["params"] != first["params"]  # a new one for the lane
    recorder.flush()
    df = pd.read_parquet(tmp_path / "trials.parquet").set_index("number")
    assert df.loc[1, "status"] == "completed" and df.loc[1, "same_as"] == 0
    assert df.loc[1, ["objective.mse", "objective.cka"]].tolist() == [3.0, 0.25]
    assert df.loc[1, "train_s"] == 0.0 and pd.isna(df.loc[0, "same_as"])
    assert recorder.done() == 2 and recorder.remaining() == 6 - 2 - 1  # it counts as a trial
    hist = pd.read_parquet(tmp_path / "history.parquet")
    first_curve, repeat_curve = (hist[hist.number == n].drop(columns=["trial_id", "number"])
                                 for n in (0, 1))  # fmt: skip
    assert len(first_curve) == 2 and first_curve.reset_index(drop=True).equals(
        repeat_curve.reset_index(drop=True))  # fmt: skip
    # a resumed driver knows the completed configurations too
    recorder.tell(0, report(2))
    again = Recorder(open_study(recorder.spec, tmp_path, resume=True), recorder.spec, tmp_path)
    again.recover()
    again.study.enqueue_trial(first["params"])
    again.ask(0)
    assert again.study.trials[-2].user_attrs["record"]["same_as"] == 0


def test_constraint_violations_reach_the_sampler(tmp_path):
    raw = {**RAW, "post": {"select": {"minimize": "mse", "subject_to": ["cka <= 0.3"]}},
           "search": {**RAW["search"], "algorithm": "nsga2"}}
    spec = parse_spec(raw)
    rec = Recorder(open_study(spec, tmp_path), spec, tmp_path)
    ask(rec, 2)
    rec.tell(0, report(0, cka=0.5))
    rec.tell(1, report(1, cka=0.1))
    got = [t.constraints for t in rec.study.trials]
    assert got == [{"cka <= 0.3": pytest.approx(0.2)}, {"cka <= 0.3": pytest.approx(-0.2)}]


@pytest.mark.parametrize("algorithm", ["gp", "tpe"])
def test_gp_and_tpe_take_two_objectives_and_constraints(tmp_path, algorithm):
    raw = {**RAW, "post": {"select": {"minimize": "mse", "subject_to": ["cka <= 0.3"]}},
           "space": {"mu": {"type": "float", "low": 0, "high": 10},
                     "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
           "search": {"algorithm": algorithm, "trials": 8, "max_concurrent": 1, "seed": 0}}
    spec = parse_spec(raw)
    rec = Recorder(open_study(spec, tmp_path), spec, tmp_path)
    while (item := rec.ask(0)) is not None:
        mu = item["params"]["mu"]
        rec.tell(0, report(item["key"], mse=1 + mu, cka=1 / (1 + mu)))
    assert rec.done() == 8 and all(t.state == TrialState.COMPLETE for t in rec.study.trials)


def test_write_atomic_leaves_old_file_on_error(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("old")

    def broken(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(path, broken)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_resume_retries_only_configurations_that_were_drawn_whole(tmp_path):
    """A driver killed part-way through sampling a trial leaves it with some parameters only:
    resume retries the whole configurations and lets the sampler replace the partial one."""
    spec = parse_spec(RAW)
    study = open_study(spec, tmp_path)
    whole = study.ask()
    whole.suggest_float("mu", 0, 10)
    whole.suggest_categorical("dependence", ["cka", "hsic"])
    whole.suggest_float("sigma_f", 0.2, 5)  # active: dependence is cka or, if hsic, unused
    partial = study.ask()
    partial.suggest_float("mu", 0, 10)  # killed here: dependence (and maybe sigma_f) missing
    rec = Recorder(open_study(spec, tmp_path, resume=True), spec, tmp_path)
    assert rec.recover() == [whole.number]
    assert rec.counts["interrupted"] == 2
