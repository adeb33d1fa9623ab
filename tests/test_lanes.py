"""Lanes on a real local Ray: interleaved ask/tell, a lane whose process dies, signals, resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from fairsearch.search.study import load_run_study
from fairsearch.spec.schema import parse_spec

ROOT = Path(__file__).resolve().parent.parent


def raw_spec(trials=6, epochs=2, name="lanes", algorithm="tpe", n=300, concurrency=2, **extra):
    return {
        "name": name,
        "data": {"name": "synthetic_regression", "n": n, "n_train": n * 2 // 3, "seed": 0},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": {"mu": {"type": "float", "low": 0, "high": 10},
                  "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
        "search": {"algorithm": algorithm, "trials": trials, "max_concurrent": concurrency,
                   "seed": 0},
        "trial": {"epochs": epochs, "batch_size": 64, "max_failures": 1},
        **extra,
    }  # fmt: skip


@pytest.mark.ray
def test_asks_interleave_with_results_and_never_exceed_max_concurrent(ray_tests_importable, tmp_path,
                                                                       monkeypatch):  # fmt: skip
    from fairsearch.search import recorder as recorder_module
    from fairsearch.search.engine import run_search

    untold_at_asks: list[int] = []
    ask = recorder_module.Recorder.ask

    def watched(self, lane=0):
        untold_at_asks.append(len(self.pending))
        if len(self.pending) >= self.spec.search.max_concurrent:
            raise AssertionError(f"asked with {len(self.pending)} configurations untold")
        return ask(self, lane)

    monkeypatch.setattr(recorder_module.Recorder, "ask", watched)
    spec = parse_spec(raw_spec(trials=8))
    run_dir = run_search(spec, storage=tmp_path, quiet=True)
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert len(df) == 8 and (df["status"] == "completed").all() and df["number"].is_unique
    assert max(untold_at_asks) <= 1  # with 2 lanes: at most one other configuration untold
    study = load_run_study(run_dir, "lanes")
    assert study.user_attrs["max_untold"] <= 2
    # in the study itself: trial k was asked only after k - 1 trials had been told
    trials = sorted(study.trials, key=lambda t: t.number)
    completes = sorted(t.datetime_complete for t in trials)
    for t in trials[2:]:
        assert t.datetime_start >= completes[t.number - 2]
    # per-configuration timings of the real path are in the table
    assert (df["train_s"] > 0).all() and (df["overhead_s"] >= 0).all()
    assert set(df["lane"].astype(int)) <= {0, 1}
    hist = pd.read_parquet(run_dir / "history.parquet")
    # one row per configuration, seed and epoch: every configuration trains each search seed
    seeds = int(df["n_seeds"].iloc[0])
    assert (df["n_seeds"] == seeds).all() and seeds >= 1
    assert set(hist["number"]) == set(df["number"]) and len(hist) == 8 * 2 * seeds
    assert set(hist["seed"].dropna().astype(int)) == set(range(seeds))


@pytest.mark.ray
def test_a_lane_whose_process_dies_is_restarted_and_nothing_is_lost_or_repeated(ray_tests_importable,
                                                                               tmp_path):  # fmt: skip
    from fairsearch.search.engine import run_search

    marker = tmp_path / "crashed"
    raw = raw_spec(trials=5, name="crash")
    raw["model"] = {"family": "wrapper", "factory": "_lane_helpers:make_crashing_net",
                    "factory_args": {"marker": str(marker), "driver_pid": os.getpid()}}
    run_dir = run_search(parse_spec(raw), storage=tmp_path / "runs", quiet=True)
    assert marker.exists(), "the training function never killed its process"
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert len(df) == 5 and df["number"].is_unique
    assert (df["status"] == "completed").all(), df[["status", "error"]]
    assert sorted(df["attempt"].astype(int)) == [0, 0, 0, 0, 1]  # retried once, on its lane
    assert all(t.state.is_finished() for t in load_run_study(run_dir, "crash").trials)


@pytest.mark.ray
def test_a_two_worker_lane_fits_two_cpus_and_its_ranks_train_on_disjoint_rows(ray_tests_importable,
                                                                               tmp_path):  # fmt: skip
    """``workers: 2`` of 1 CPU on this 2-CPU Ray: one Train worker group per lane (its Tune
    trial's small CPU share comes out of the workers', so the lane fits), and the two ranks
    train on disjoint halves of the training rows."""
    from fairsearch.search.engine import run_search

    rows = tmp_path / "rows"
    rows.mkdir()
    raw = raw_spec(trials=1, epochs=1, name="group", concurrency=1, n=120)
    raw["trial"].update(workers=2, cpus_per_worker=1, batch_size=1000)
    raw["model"] = {"family": "wrapper", "factory": "_lane_helpers:make_row_logging_net",
                    "factory_args": {"folder": str(rows), "driver_pid": os.getpid()}}
    run_dir = run_search(parse_spec(raw), storage=tmp_path / "runs", quiet=True)
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert list(df["status"]) == ["completed"], df[["status", "error"]]
    logs = sorted(rows.glob("rows-*.txt"))
    assert len(logs) == 2, logs  # two processes trained: the worker group's two ranks
    seen = [set(f.read_text().splitlines()) for f in logs]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    from fairsearch.data import load_from_spec, split_train_val

    train, _ = split_train_val(load_from_spec(parse_spec(raw).data), seed=0)
    assert len(seen[0]) == len(seen[1]) == len(train.X) // 2  # equal shards of the same split


# ----------------------------------------------------------------------------- subprocesses
def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    return env


def _count(run_dir: Path, state: str = "COMPLETE") -> int:
    """Trials in ``state`` in the study a running search appends to (0 before it exists)."""
    if not (run_dir / "study.journal").is_file():
        return 0
    try:
        return sum(t.state.name == state for t in load_run_study(run_dir).trials)
    except Exception:  # noqa: BLE001 - no study in it yet
        return 0


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)  # fmt: skip


def _reap(proc: subprocess.Popen) -> None:
    """Anything left of the process group of a killed driver (its local Ray)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)
    time.sleep(1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _search_cmd(tmp_path: Path, raw: dict) -> list[str]:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    return [sys.executable, "-m", "fairsearch.cli", "search", str(spec_path), "--storage",
            str(tmp_path / "runs"), "--quiet"]  # fmt: skip


def _resume(run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fairsearch.cli", "resume", str(run_dir),
                           "--quiet"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=400)  # fmt: skip


def _wait_for(tmp_path: Path, pattern: str, completed: int, timeout: float = 240) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = list((tmp_path / "runs").glob(pattern))
        if runs and _count(runs[0]) >= completed:
            return runs[0]
        time.sleep(0.1)
    raise AssertionError("the search was too slow to reach the signal")


def _check_resumed(run_dir: Path, trials: int, done_before: set[int]) -> pd.DataFrame:
    after = pd.read_parquet(run_dir / "trials.parquet")
    counted = after[after.status != "interrupted"]
    assert len(counted) == trials and (counted.status == "completed").all()  # budget met exactly
    assert done_before <= set(counted["number"])  # none lost
    assert after["number"].is_unique
    params = [c for c in after.columns if c.startswith("param.")]
    assert counted[params].round(12).astype(str).agg("|".join, axis=1).is_unique  # none repeated
    # the table is the study, row for row
    study = load_run_study(run_dir, _name(run_dir))
    finished = {t.number for t in study.trials if t.state.is_finished()}
    assert finished == set(after["number"])
    complete = {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert complete == set(after.loc[after.status == "completed", "number"])
    return after


def _name(run_dir: Path) -> str:
    return yaml.safe_load((run_dir / "spec.yaml").read_text())["name"]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize(("signum", "code", "population", "warm"),
                         # each signal, population and lane kind at least once (a case a
                         # minute of CI: not every combination)
                         [(signal.SIGTERM, 143, 1, False), (signal.SIGTERM, 143, 3, False),
                          (signal.SIGINT, 130, 3, True)])  # fmt: skip
def test_a_signal_stops_the_search_cleanly_and_resume_reruns_what_was_interrupted(
        tmp_path, monkeypatch, signum, code, population, warm):  # fmt: skip
    """``warm``: on a ``fairsearch up`` Ray, the lanes on its warm lanes."""
    raw = raw_spec(trials=8, epochs=25, n=800, name="sig")
    raw["search"]["population"] = population  # 3: lanes train populations of configurations
    if warm:
        monkeypatch.setenv("FAIRSEARCH_HOME", str(tmp_path / "home"))
        up = subprocess.run([sys.executable, "-m", "fairsearch.cli", "up", "--warm-lanes", "4"],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
        assert up.returncode == 0 and "warm lanes: 4 ready" in up.stdout, up.stderr[-2000:]
    try:
        run_dir = _signal_then_resume(tmp_path, raw, signum, code)
        if warm:  # the resume's lanes ran on warm lanes too
            assert json.loads((run_dir / "lanes.json").read_text())["warm"] == 2
    finally:
        if warm:
            subprocess.run([sys.executable, "-m", "fairsearch.cli", "down"], cwd=ROOT, env=_env(),
                           capture_output=True, timeout=120)  # fmt: skip


def _signal_then_resume(tmp_path: Path, raw: dict, signum: int, code: int) -> Path:
    proc = _start(_search_cmd(tmp_path, raw), tmp_path / "search.log")
    try:
        run_dir = _wait_for(tmp_path, "sig-*", completed=2)
        # SIGINT as a terminal's Ctrl-C sends it (to the whole group: Ray's local processes too);
        # SIGTERM as `kill` sends it (to the driver only)
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        proc.wait(timeout=120)
    finally:
        _reap(proc)
    log = (tmp_path / "search.log").read_text()
    assert proc.returncode == code, log[-3000:]
    assert "resume" in log and "Traceback" not in log and "*** SIGSEGV" not in log
    assert "stack trace" not in log.lower(), log[-3000:]
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert _count(run_dir, "RUNNING") == 0  # nothing left RUNNING
    interrupted = set(df.loc[df.status == "interrupted", "number"])
    done_before = set(df.loc[df.status == "completed", "number"])
    assert len(done_before) >= 2 and len(done_before) < 8
    res = _resume(run_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    after = _check_resumed(run_dir, 8, done_before)
    # exactly the interrupted configurations were re-run, each once
    retried = after.dropna(subset=["retry_of"])
    assert set(retried["retry_of"].astype(int)) == interrupted
    params = [c for c in after.columns if c.startswith("param.")]
    for _, row in retried.iterrows():
        old = after.loc[after.number == int(row["retry_of"]), params].iloc[0]
        assert row[params].astype(float).round(12).equals(old.astype(float).round(12))
    return run_dir


@pytest.mark.slow
@pytest.mark.ray
def test_kill_9_at_random_points_then_resume_keeps_study_and_table_in_agreement(tmp_path):
    rng = random.Random(0)
    raw = raw_spec(trials=10, epochs=10, n=600, name="kill")
    cmd = _search_cmd(tmp_path, raw)
    run_dir = None
    for round_ in range(2):  # a kill of the first search, then one of its resume
        if run_dir is not None:
            cmd = [sys.executable, "-m", "fairsearch.cli", "resume", str(run_dir), "--quiet"]
        proc = _start(cmd, tmp_path / f"kill{round_}.log")
        try:
            run_dir = _wait_for(tmp_path, "kill-*", completed=0)
            time.sleep(rng.uniform(8.0, 20.0))  # Ray's start-up is part of where a kill lands
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            _reap(proc)
        if not (run_dir / "spec.yaml").is_file() or not (run_dir / "study.journal").is_file():
            run_dir = None  # killed before the run folder was complete: start again
            cmd = _search_cmd(tmp_path, raw)
    assert run_dir is not None
    done_before = {t.number for t in load_run_study(run_dir, "kill").trials if t.state.name == "COMPLETE"}
    res = _resume(run_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    _check_resumed(run_dir, 10, done_before)
