from __future__ import annotations

import math

import pandas as pd
import pytest
from optuna.trial import TrialState

from fairsearch.search.recorder import Recorder, open_study, write_atomic
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
    "search": {"algorithm": "random", "trials": 6, "seed": 0},
}


@pytest.fixture
def recorder(tmp_path):
    spec = parse_spec(RAW)
    return Recorder(open_study(spec, tmp_path), spec, tmp_path)


def report(number, status="completed", mse=1.0, cka=0.5, **extra):
    return {"number": number, "status": status, "metrics": {"mse": mse, "cka": cka, "hsic": 0.1},
            "started_at": 100.0, "ended_at": 101.5, "seed": 0, "node": "n",
            "history": [{"epoch": 0, "total": 2.0}, {"epoch": 1, "total": 1.0}], **extra}


def test_outcomes_are_told_and_tabulated(recorder, tmp_path):
    asked = recorder.ask(4, "run0")
    assert [a["number"] for a in asked] == [0, 1, 2, 3]
    recorder.record(report(0))
    recorder.record(report(1, mse=math.nan))  # a NaN objective: Optuna's tell would refuse it
    recorder.record(report(2, status="diverged", error="training loss diverged"))
    recorder.record(report(0, mse=99.0))  # a duplicate (restarted Train run) is ignored
    assert recorder.fail_unreported("run0", "no report") == 1  # trial 3 never reported
    states = [t.state for t in recorder.study.trials]
    assert TrialState.RUNNING not in states
    assert states == [TrialState.COMPLETE] + [TrialState.FAIL] * 3
    df = pd.read_parquet(tmp_path / "trials.parquet")
    assert list(df["status"]) == ["completed", "failed", "diverged", "failed"]
    assert df.loc[0, "objective.mse"] == 1.0 and df["objective.mse"].isna().sum() == 3
    assert "must be finite" in df.loc[1, "error"] and df.loc[3, "error"] == "no report"
    assert str(df["started_at"].dtype) == "datetime64[us, UTC]" and df.loc[0, "duration_s"] == 1.5
    assert df["metric.hsic"].dtype == "float64" and df["param.mu"].dtype == "float64"
    assert str(df["param.dependence"].dtype) == "string"
    # conditional parameter: null exactly where its condition is off
    assert (df["param.sigma_f"].isna() == (df["param.dependence"] != "cka")).all()
    hist = pd.read_parquet(tmp_path / "history.parquet")
    assert set(hist["number"]) == {0, 1, 2} and hist["epoch"].dtype == "int64"
    assert recorder.done() == 4 and recorder.counts["diverged"] == 1


def test_recover_fails_stale_running_trials_and_reenqueues(recorder, tmp_path):
    recorder.ask(3, "run0")
    recorder.record(report(0))
    # a new driver (after kill -9) opens the same study
    fresh = Recorder(open_study(recorder.spec, tmp_path, resume=True), recorder.spec, tmp_path)
    stale_params = [t.params for t in fresh.study.trials if t.state == TrialState.RUNNING]
    assert fresh.recover() == 2 and fresh.done() == 1 and fresh.counts["interrupted"] == 2
    again = fresh.ask(2, "run1")
    assert [a["params"] for a in again] == stale_params  # the sampler's proposals are kept
    df = pd.read_parquet(tmp_path / "trials.parquet")
    assert list(df["status"]) == ["completed", "interrupted", "interrupted"]


def test_write_atomic_leaves_old_file_on_error(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("old")

    def broken(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(path, broken)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]
