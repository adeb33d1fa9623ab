from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fairsearch.data import load_dataset, split_train_val
from fairsearch.families import TrialSettings, train_and_evaluate
from fairsearch.nets import DivergenceError
from fairsearch.search.study import load_run_study
from fairsearch.spec.schema import parse_spec

ROOT = Path(__file__).resolve().parent.parent


def raw_spec(trials=4, epochs=3, space=None, name="e2e"):
    return {
        "name": name,
        "data": {"name": "synthetic_regression", "n": 300, "n_train": 200, "seed": 0},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": space or "wrapper_mlp.yaml",
        "search": {"algorithm": "nsga2", "trials": trials, "max_concurrent": 2, "seed": 0},
        "trial": {"epochs": epochs, "batch_size": 64},
    }


# ----------------------------------------------------------------------------- no Ray
def test_wrapper_trial_reports_history_and_validation_metrics():
    data = load_dataset("synthetic_regression", n=300, n_train=200, seed=0)
    train, val = split_train_val(data, seed=0)
    assert len(val.y) == 50 and len(train.y) == 150  # 25% of train carved out, test untouched
    rows = []
    m = train_and_evaluate("wrapper", {"mu": 1.0, "sigma_f": 1.0, "sigma_q": 1.0, "lr": 3e-3},
                           data, TrialSettings(epochs=2, batch_size=64), rows.append)
    assert set(m) == {"mse", "cka", "cka_median", "hsic", "trivial"} and 0 <= m["cka"] <= 1
    assert m["trivial"] == 0.0  # the trained model does not predict a constant
    assert [r["epoch"] for r in rows] == [0, 1] and {"total", "task", "fairness"} <= set(rows[0])


def test_huge_learning_rate_diverges():
    data = load_dataset("synthetic_regression", n=300, n_train=200, seed=0)
    with pytest.raises(DivergenceError):
        train_and_evaluate("wrapper", {"mu": 1.0, "lr": 1e6}, data,
                           TrialSettings(epochs=3, batch_size=64), lambda r: None)


def test_an_old_spec_naming_configs_per_run_gets_a_clear_message():
    raw = raw_spec(trials=20)
    raw["search"]["configs_per_run"] = 1
    with pytest.raises(ValueError, match=r"`search.configs_per_run` is gone: .*lanes"):
        parse_spec(raw)


# ----------------------------------------------------------------------------- Ray
@pytest.mark.slow
@pytest.mark.ray
def test_search_end_to_end_with_a_diverging_trial(ray_local, tmp_path):
    from fairsearch.search.engine import run_search

    space = {"mu": {"type": "float", "low": 0, "high": 10, "step": 0.5},
             "lr": {"type": "categorical", "choices": [3e-3, 1e6]}}  # 1e6 diverges
    spec = parse_spec(raw_spec(trials=6, space=space))
    run_dir = run_search(spec, storage=tmp_path, quiet=True)
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert len(df) == 6 and set(df["status"]) <= {"completed", "diverged"}
    assert (df["status"] == "diverged").any() and (df["status"] == "completed").any()
    assert (df["status"] == "diverged").eq(df["param.lr"] == 1e6).all()
    assert df.loc[df.status == "diverged", "error"].str.contains("diverged").all()
    done = df[df.status == "completed"]
    assert done[["objective.mse", "objective.cka"]].notna().all().all()
    hist = pd.read_parquet(run_dir / "history.parquet")
    assert set(hist["trial_id"]) >= set(done["trial_id"])
    assert {"spec.yaml", "study.journal", "trials.parquet", "history.parquet"} <= {
        p.name for p in run_dir.iterdir()}
    study = load_run_study(run_dir, "e2e")
    assert all(t.state.is_finished() for t in study.trials) and len(study.trials) == 6
    assert len(study.best_trials) >= 1
    # where the lanes' start-up went: each lane's marks in order, its first pull before the
    # first configuration was asked (the driver asks only lanes that pulled)
    lanes = json.loads((run_dir / "lanes.json").read_text())
    assert 1 <= lanes["told"] <= 6 and not lanes["stopped"]  # a repeat is told untrained
    # a lane that starts after the others finished the work never pulls
    assert lanes["start_marks"] and set(lanes["start_marks"]) <= {str(i) for i in range(2)}
    for marks in lanes["start_marks"].values():
        order = [marks[k] for k in ("trainable", "loop", "ready", "pulled")]
        assert 0 < order[0] and order == sorted(order)
    assert lanes["first_pull_s"] >= min(m["pulled"] for m in lanes["start_marks"].values()) - 0.5


def _completed(run_dir: Path) -> int:
    """COMPLETE trials in the study a running search appends to (0 before it exists)."""
    try:
        return sum(t.state.name == "COMPLETE" for t in load_run_study(run_dir).trials)
    except Exception:  # noqa: BLE001 - not created yet
        return 0


@pytest.mark.slow
@pytest.mark.ray
# one lane per configuration on Tune lanes, and a population on warm lanes (a population on
# Tune lanes: test_lanes' signal test)
@pytest.mark.parametrize(("population", "warm"), [(1, False), (2, True)])
def test_kill_and_resume_loses_and_repeats_nothing(tmp_path, population, warm):
    """``warm``: on a ``fairsearch up`` Ray whose warm lanes the search and its resume train on."""
    spec_path = tmp_path / "spec.yaml"
    trials = 12 if warm else 5  # warm lanes start at once: enough work to be killed mid-way
    raw = raw_spec(trials=trials, epochs=20 if warm else 2, name="kill")
    raw["search"]["population"] = population  # 2: a lane trains two configurations at once
    spec_path.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "fairsearch.cli", "search", str(spec_path),
           "--storage", str(tmp_path / "runs"), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAIRSEARCH_HOME": str(tmp_path / "home")}
    env.pop("RAY_ADDRESS", None)
    if warm:
        up = subprocess.run([sys.executable, "-m", "fairsearch.cli", "up", "--warm-lanes", "4"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert up.returncode == 0 and "warm lanes: 4 ready" in up.stdout, up.stderr[-2000:]
    try:
        run_dir = _kill_and_resume(cmd, env, tmp_path, trials)
        if warm:  # the resume's lanes ran on the warm lanes the killed search left free
            assert json.loads((run_dir / "lanes.json").read_text())["warm"] == 2
    finally:
        if warm:
            subprocess.run([sys.executable, "-m", "fairsearch.cli", "down"], cwd=ROOT, env=env,
                           capture_output=True, timeout=120)  # fmt: skip


def _kill_and_resume(cmd: list[str], env: dict[str, str], tmp_path: Path, trials: int) -> Path:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600  # a loaded 2-core machine starts Ray slowly
        run_dir = None
        while time.time() < deadline:
            runs = list((tmp_path / "runs").glob("kill-*"))
            if runs:
                run_dir = runs[0]
                if _completed(run_dir) >= 2:
                    break
            time.sleep(0.2)
        assert run_dir is not None and _completed(run_dir) >= 2, "search too slow"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        time.sleep(2)  # let Ray's reaper stop the killed driver's local cluster
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything left of the session we started
        except ProcessLookupError:
            pass
    # the study is the source of truth (trials.parquet is re-derived from it on resume)
    done_before = {t.number for t in load_run_study(run_dir).trials if t.state.name == "COMPLETE"}
    assert len(done_before) >= 2
    res = subprocess.run([sys.executable, "-m", "fairsearch.cli", "resume", str(run_dir),
                          "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=400)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    after = pd.read_parquet(run_dir / "trials.parquet")
    counted = after[after.status != "interrupted"]
    assert len(counted) == trials and (counted.status == "completed").all()  # budget met exactly
    assert done_before <= set(after.loc[after.status == "completed", "number"])  # none lost
    assert after["number"].is_unique  # none run twice under one number
    # each interrupted configuration is retried exactly once, with its own parameters; nothing
    # else is a retry (NSGA-II may itself propose a copy of a parent, so parameters alone
    # cannot tell a retry from a new configuration)
    interrupted = after[after.status == "interrupted"]
    assert len(interrupted) <= trials - len(done_before)
    params = [c for c in after.columns if c.startswith("param.")]
    retries = counted[counted.retry_of.notna()]
    # an interrupted trial killed before all its parameters were drawn held no configuration
    # (the space has no conditions: a configuration holds every parameter)
    configured = interrupted[interrupted[params].notna().all(axis=1)]
    assert sorted(retries.retry_of.astype(int)) == sorted(configured.number)
    for _, retry in retries.iterrows():
        original = after[after.number == int(retry.retry_of)].iloc[0]
        assert retry[params].equals(original[params])
    return run_dir
