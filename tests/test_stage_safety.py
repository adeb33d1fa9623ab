"""Stages after the search are transactional: a re-run or an interrupted run never loses the
previous complete outputs, and a resumed run trains only the units not yet finished (no Ray:
the lanes are replaced by an in-process loop)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairsearch.analysis.pareto.stage import run_pareto
from fairsearch.analysis.retrain.stage import run_retrain
from fairsearch.analysis.retrain.staging import PARTIAL
from fairsearch.executor.contract import LaneContext
from fairsearch.io.lock import LOCK_FILE
from fairsearch.io.signals import Interrupted
from fairsearch.io.transaction import commit, finish_commits
from fairsearch.search.recorder import Recorder, write_spec
from fairsearch.search.study import open_study
from fairsearch.spec.schema import parse_spec

ROOT = Path(__file__).resolve().parent.parent


def _searched_run(tmp_path: Path, n: int = 3) -> Path:
    spec = parse_spec({
        "name": "safe", "data": {"name": "synthetic_regression", "n": 300, "n_train": 200},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": {"mu": {"type": "float", "low": 0.0, "high": 4.0},
                  "hidden": {"type": "categorical", "choices": ["8"]}},
        "search": {"algorithm": "random", "trials": n, "max_concurrent": n},
        "trial": {"epochs": 1, "batch_size": 64},
        "post": {"top_k": 2, "seeds": [0, 1]},
    })  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    write_spec(spec, run / "spec.yaml")
    rec = Recorder(open_study(spec, run), spec, run)
    for i, item in enumerate([rec.ask() for _ in range(n)]):
        rec.tell(0, {"key": item["key"], "status": "completed",
                     "metrics": {"mse": 0.1 * (i + 1), "cka": 0.5 - 0.1 * i}})  # fmt: skip
    rec.close()
    run_pareto(run)
    return run


class _Lanes:
    """``run_lanes`` in this process; ``fail_after``: raise (as a signal would) after that many
    units, or set ``stop`` (``stop_after``), as the retrain's own signal handler does."""

    def __init__(self, fail_after: int | None = None, stop_after: int | None = None) -> None:
        self.fail_after, self.stop_after, self.trained = fail_after, stop_after, []

    def __call__(self, source, work, data, *, stop, **_kw) -> None:  # noqa: ANN001
        ctx = LaneContext(data=data)
        while (item := source.ask(0)) is not None:
            if self.fail_after is not None and len(self.trained) == self.fail_after:
                raise Interrupted(signal.SIGTERM)
            result = work(item, ctx)
            self.trained.append(item["key"])
            source.tell(0, {"key": item["key"], **result})
            if self.stop_after is not None and len(self.trained) == self.stop_after:
                stop.set()
                return


@pytest.fixture()
def lanes(monkeypatch):
    def use(fake: _Lanes) -> _Lanes:
        monkeypatch.setattr("fairsearch.executor.lanes.run_lanes", fake)
        return fake

    monkeypatch.setattr("fairsearch.executor.ray_start.init_ray", lambda address=None: None)
    return use


def _outputs(run: Path) -> dict[str, bytes]:
    files = [run / "retrain.parquet", run / "retrain_summary.parquet",
             *sorted((run / "retrain").rglob("*.*"))]  # fmt: skip
    return {str(p.relative_to(run)): p.read_bytes() for p in files if p.is_file()}


def test_an_interrupted_retrain_keeps_the_previous_outputs_and_resumes_unit_by_unit(
        tmp_path, lanes, capsys) -> None:  # fmt: skip
    run = _searched_run(tmp_path)
    first = lanes(_Lanes())
    run_retrain(run, quiet=True)
    assert len(first.trained) == 4  # 2 configurations x 2 seeds
    (run / "audit_inputs.npz").write_bytes(b"cache of these models")
    before = _outputs(run)
    # a re-run with other epochs is stopped by a signal after one unit: nothing old is lost
    with pytest.raises(Interrupted, match=r"SIGTERM: 1 of 4 \(configuration, seed\) units are "
                                          r"finished and kept in .*retrain.partial; the previous "
                                          r"retrain outputs are unchanged; `fairsearch retrain"):
        lanes(_Lanes(fail_after=1))
        run_retrain(run, epochs=2, quiet=True)
    assert _outputs(run) == before
    assert (run / "audit_inputs.npz").is_file()
    assert len(list((run / PARTIAL / "models").glob("*/seed-*/row.json"))) == 1
    assert not (run / LOCK_FILE).exists()
    # stopped the graceful way (the retrain's handler sets stop): one more unit kept
    with pytest.raises(Interrupted, match=r"2 of 4 .* units are finished and kept"):
        lanes(_Lanes(stop_after=1))
        run_retrain(run, epochs=2, quiet=True)
    assert _outputs(run) == before
    from fairsearch.report.writer import write_report

    write_report(run)  # from the previous complete retrain, saying a new one is under way
    assert "holds 2 finished units of an interrupted retrain" in capsys.readouterr().err
    # the next run trains only the two units not finished, then swaps everything in
    rest = lanes(_Lanes())
    table = run_retrain(run, epochs=2, quiet=True)
    assert len(rest.trained) == 2
    assert len(table) == 4 and (table["status"] == "completed").all()
    assert pd.read_parquet(run / "retrain.parquet").equals(table)
    assert json.loads(next((run / "retrain").glob("*/seed-0/config.json")).read_text())[
        "epochs"] == 2
    assert not (run / PARTIAL).exists() and not (run / "audit_inputs.npz").exists()


def test_a_partial_retrain_from_other_settings_is_not_mixed_in(tmp_path, lanes, capsys) -> None:
    run = _searched_run(tmp_path)
    with pytest.raises(Interrupted):
        lanes(_Lanes(fail_after=2))
        run_retrain(run, epochs=1, quiet=True)
    again = lanes(_Lanes())
    run_retrain(run, epochs=2, quiet=True)
    assert len(again.trained) == 4
    assert "left by a run with other settings or inputs: starting afresh" in capsys.readouterr().err


def test_retrain_checks_pareto_json_and_seeds_before_training(tmp_path, lanes) -> None:
    run = _searched_run(tmp_path)
    never = lanes(_Lanes())
    (run / "pareto.json").write_text("{garbage")
    with pytest.raises(ValueError, match=r"pareto.json is damaged or unreadable .*to recover: "
                                         r"`fairsearch pareto .*run`"):
        run_retrain(run, quiet=True)
    run_pareto(run)
    with pytest.raises(ValueError, match=r"retrain seeds must be distinct .*but got \[0, 0\]"):
        run_retrain(run, seeds=[0, 0], quiet=True)
    (run / "pareto.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ValueError, match=r"pareto.parquet is damaged or unreadable .*to recover: "
                                         r"`fairsearch pareto"):
        run_retrain(run, quiet=True)
    assert never.trained == []


def test_a_commit_cut_short_is_completed_by_the_next_stage(tmp_path) -> None:
    run = tmp_path
    (run / "out").mkdir()
    (run / "out" / "old").write_text("old")
    (run / "table").write_text("old")
    (run / "stage.partial" / "out").mkdir(parents=True)
    (run / "stage.partial" / "out" / "new").write_text("new")
    (run / "stage.partial" / "table").write_text("new")
    moves = [("stage.partial/out", "out"), ("stage.partial/table", "table")]
    journal = run / ".stage.commit.json"
    # killed just after the commit point, with the first folder moved aside
    journal.write_text(json.dumps({"moves": [list(m) for m in moves],
                                   "remove": ["stage.partial", "cache"]}))  # fmt: skip
    (run / "out").rename(run / ".out.old")
    assert finish_commits(run) == ["stage"]
    assert [p.name for p in (run / "out").iterdir()] == ["new"]
    assert (run / "table").read_text() == "new"
    assert not (run / "stage.partial").exists() and not journal.exists()
    assert not (run / ".out.old").exists()
    with pytest.raises(FileNotFoundError):
        commit(run, "stage", [("stage.partial/out", "out")])  # nothing staged: nothing moves
    assert (run / "out" / "new").is_file()


def _audit_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    run.mkdir()
    q = rng.integers(0, 2, 300)
    np.savez(run / "audit_inputs.npz", q=q, y=rng.integers(0, 2, 300),
             **{"rep:trial-0/seed-0": rng.normal(size=(300, 4)) + q[:, None]})  # fmt: skip
    (run / "spec.yaml").write_text("post: {probes: [logistic]}\n")
    return run


_SWALLOWING_AUDIT = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)  # started from a shell with `&` it would be ignored
import numpy as np
# torch is imported only after the swallowed interrupt (by the audit): on a cold cache that
# import outlasts the repeat interval, and the repeats wait for it to finish
from sklearn.neural_network import MLPClassifier
import fairsearch.analysis.audit.stage as audit
from fairsearch import cli

real = audit.audit_representations

class Probe(MLPClassifier):
    def _update_no_improvement_count(self, *args, **kwargs):  # once per epoch, inside the try
        if self.n_iter_ == 1:
            print("fitting", flush=True)
        return super()._update_no_improvement_count(*args, **kwargs)

def swallowing(*args, **kwargs):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    # trains until interrupted: scikit-learn catches the KeyboardInterrupt and returns
    Probe(max_iter=10**7, tol=0, n_iter_no_change=10**7).fit(X, X[:, 0] > 0)
    print("fit returned", flush=True)
    return real(*args, **kwargs)

audit.audit_representations = swallowing
sys.exit(cli.main(["audit", sys.argv[1], "--n-boot", "20", "--quiet"]))
"""


def test_ctrl_c_swallowed_by_scikit_learn_never_gives_a_finished_audit(tmp_path) -> None:
    run = _audit_folder(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _SWALLOWING_AUDIT, str(run)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "fitting"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "fit returned" in out  # the library did swallow the interrupt
    assert proc.returncode == 130, err
    assert not (run / "audit.parquet").exists()
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"fairsearch audit: interrupted by SIGINT: no audit.parquet is written from an "
        f"interrupted audit; the previous one is unchanged; `fairsearch audit {run}` runs it again")
    assert not (run / LOCK_FILE).exists()


def test_a_damaged_audit_cache_is_collected_again_not_an_internal_error(tmp_path, lanes,
                                                                         capsys) -> None:  # fmt: skip
    from fairsearch.cli import main

    run = _searched_run(tmp_path)
    lanes(_Lanes())
    run_retrain(run, top_k=1, seeds=[0], quiet=True)
    (run / "audit_inputs.npz").write_bytes(b"PK\x03\x04 cut short")
    assert main(["audit", str(run), "--n-boot", "20", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {run / 'audit_inputs.npz'} is damaged" in err
    assert "trial-" in " ".join(pd.read_parquet(run / "audit.parquet")["model"])
    assert not (run / "audit.partial").exists()


def test_resume_refuses_a_spec_that_disagrees_with_its_study(tmp_path, capsys) -> None:
    import yaml

    from fairsearch.cli import main
    from fairsearch.pipeline import check_agreement
    from fairsearch.spec.schema import load_spec

    run = _searched_run(tmp_path)
    original = (run / "spec.yaml").read_text()
    check_agreement(load_spec(run / "spec.yaml"), run)  # as it was started: agrees
    raw = yaml.safe_load(original)
    raw["objectives"].append({"metric": "hsic", "direction": "minimize"})
    (run / "spec.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"does not agree with the study it resumes .*objective "
                                         r"directions: spec.yaml has \['minimize', 'minimize', "
                                         r"'minimize'\], the study \['minimize', 'minimize'\]"):
        check_agreement(load_spec(run / "spec.yaml"), run)
    assert main(["resume", str(run), "--quiet"]) == 2  # before Ray starts
    assert "has 2 objective values, spec.yaml names 3 objectives" in capsys.readouterr().err
    raw = yaml.safe_load(original)
    raw["objectives"] = raw["objectives"][::-1]  # same directions, swapped metrics
    (run / "spec.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"objectives \['cka', 'mse'\] of spec.yaml are not the "
                                         r"values trial 0 was told"):
        check_agreement(load_spec(run / "spec.yaml"), run)
    raw = yaml.safe_load(original)
    raw["space"]["mu"]["high"] = 9.0
    raw["space"]["lr"] = {"type": "float", "low": 1e-3, "high": 1e-2}
    (run / "spec.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"parameter 'mu': spec.yaml draws it from "
                                         r"FloatDistribution\(.*high=9.0.*, the study drew it "
                                         r"from FloatDistribution\(.*high=4.0.*parameters "
                                         r"\['lr'\] of spec.yaml's space are in no trial"):
        check_agreement(load_spec(run / "spec.yaml"), run)



def test_damaged_files_and_a_full_disk_name_the_file_and_the_recovery(tmp_path, lanes, capsys,
                                                                      monkeypatch) -> None:  # fmt: skip
    import errno

    from fairsearch.cli import main

    run = _searched_run(tmp_path)
    lanes(_Lanes())
    run_retrain(run, top_k=1, seeds=[0], quiet=True)
    repr_file = next((run / "retrain").glob("*/seed-0/test_repr.npy"))
    repr_file.write_bytes(b"\x93NUMPY garbage")
    assert main(["audit", str(run), "--n-boot", "20", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{repr_file} is damaged or unreadable" in err and f"`fairsearch retrain {run}`" in err
    (run / "pareto.json").write_text("{not json")
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'pareto.json'} is damaged or unreadable" in err
    assert f"to recover: `fairsearch pareto {run}`" in err and "internal error" not in err

    def full(self, path, *args, **kwargs):  # noqa: ANN001, ANN202 - DataFrame.to_parquet
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    assert main(["pareto", str(run)]) == 2
    err = capsys.readouterr().err
    assert (f"fairsearch pareto: error: {run / 'pareto.partial' / 'pareto.parquet'}: no space "
            f"left on device: free disk space, then re-run the command") in err
    assert not (run / "pareto.partial").exists() or not any((run / "pareto.partial").iterdir())
    assert (run / "pareto.parquet").is_file()  # the previous one is kept


# ----------------------------------------------------------------------------- real signals
def _child(code_args: list[str], tag: str) -> list[str]:
    """A fairsearch command in a child process whose SIGINT is the default one (a process
    started in the background with `&` begins with SIGINT ignored)."""
    code = ("import signal, sys\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\n"
            "from fairsearch.cli import main\nsys.exit(main(sys.argv[1:]))\n")  # fmt: skip
    return [sys.executable, "-c", code, *code_args]


def _env(tag: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAIRSEARCH_TEST_TAG": tag}
    env.pop("RAY_ADDRESS", None)
    return env


def _tagged(tag: str) -> list[int]:
    """PIDs of live processes that inherited ``tag`` (the child and every Ray process it
    started: Ray's processes inherit the driver's environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"FAIRSEARCH_TEST_TAG={tag}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _until(condition, timeout: float) -> bool:  # noqa: ANN001 - a callable
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_sigterm_between_stages_of_run_exits_143_and_names_the_command_to_continue(
        tmp_path) -> None:  # fmt: skip
    run = _searched_run(tmp_path)
    code = ("import signal, sys, time\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\n"
            "import fairsearch.analysis.pareto.stage as pareto\n"
            "def slow(run, *a, **k):\n    print('pareto', flush=True); time.sleep(60)\n"
            "pareto.run_pareto = slow\nfrom fairsearch.cli import main\n"
            "sys.exit(main(['run', sys.argv[1], '--from', 'pareto', '--quiet']))\n")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], cwd=ROOT, env=_env("x"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "pareto"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == (f"fairsearch run: interrupted by SIGTERM: the stages before pareto "
                           f"are complete and kept, pareto keeps its previous outputs; "
                           f"`fairsearch run {run} --from pareto` continues")
    assert not (run / LOCK_FILE).exists()


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_retrain_keeps_finished_units_and_leaves_no_ray_process(
        tmp_path, signum, code) -> None:  # fmt: skip
    import uuid

    run = _searched_run(tmp_path)
    tag = uuid.uuid4().hex
    log = tmp_path / "retrain.log"
    args = ["retrain", str(run), "--epochs", "400"]
    with open(log, "w") as out:
        proc = subprocess.Popen(_child(args, tag), cwd=ROOT, env=_env(tag), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    marks = run / PARTIAL / "models"
    try:
        assert _until(lambda: any(marks.glob("*/seed-*/row.json")) or proc.poll() is not None,
                      600), "no unit finished"  # fmt: skip
        assert proc.poll() is None, log.read_text()[-3000:]
        if signum == signal.SIGINT:  # as a terminal's Ctrl-C: the whole group, Ray's too
            os.killpg(proc.pid, signum)
        else:  # as `kill`: the driver only
            os.kill(proc.pid, signum)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert proc.returncode == code, text[-3000:]
    assert "Traceback" not in text and "stack trace" not in text.lower() and "*** " not in text
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"fairsearch retrain: interrupted by {signal.Signals(signum).name}: ")
    assert "units are finished and kept in" in last and f"`fairsearch retrain {run}`" in last
    assert _until(lambda: not _tagged(tag), 60), f"processes left: {_tagged(tag)}"
    kept = {p.parent: (p.parent / "model.pt").read_bytes()
            for p in marks.glob("*/seed-*/row.json")}  # fmt: skip
    assert kept and not (run / "retrain.parquet").exists() and not (run / LOCK_FILE).exists()
    # the next run trains only the units not finished, and keeps the others as they are
    res = subprocess.run(_child(["retrain", str(run), "--epochs", "400", "--quiet"], tag),
                         cwd=ROOT, env=_env(tag), capture_output=True, text=True,
                         timeout=900)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{len(kept)} of 4 (configuration, seed) units were finished" in res.stderr
    table = pd.read_parquet(run / "retrain.parquet")
    assert len(table) == 4 and (table["status"] == "completed").all()
    for folder, weights in kept.items():
        moved = run / "retrain" / folder.relative_to(marks)
        assert (moved / "model.pt").read_bytes() == weights  # not trained again


@pytest.mark.slow
@pytest.mark.ray
def test_sigterm_during_the_search_of_run_exits_143_with_the_resume_command(tmp_path) -> None:
    import uuid

    import yaml

    from fairsearch.search.study import load_run_study

    spec = {"name": "term", "data": {"name": "synthetic_regression", "n": 600, "n_train": 400},
            "model": "wrapper",
            "objectives": [{"metric": "mse", "direction": "minimize"},
                           {"metric": "cka", "direction": "minimize"}],
            "space": {"mu": {"type": "float", "low": 0.0, "high": 4.0}},
            "search": {"algorithm": "random", "trials": 12, "max_concurrent": 2},
            "trial": {"epochs": 60, "batch_size": 64}}  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    tag = uuid.uuid4().hex
    log = tmp_path / "run.log"
    args = ["run", str(path), "--storage", str(tmp_path / "runs"), "--quiet"]
    with open(log, "w") as out:
        proc = subprocess.Popen(_child(args, tag), cwd=ROOT, env=_env(tag), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def completed() -> int:
        runs = list((tmp_path / "runs").glob("term-*"))
        try:
            study = load_run_study(runs[0])
        except Exception:  # noqa: BLE001 - not created yet
            return 0
        return sum(t.state.name == "COMPLETE" for t in study.trials)

    try:
        assert _until(lambda: completed() >= 1 or proc.poll() is not None, 600), "too slow"
        assert proc.poll() is None, log.read_text()[-3000:]
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    run = next((tmp_path / "runs").glob("term-*"))
    assert proc.returncode == 143, text[-3000:]
    assert "Traceback" not in text and "stack trace" not in text.lower()
    assert text.strip().splitlines()[-1] == (
        f"fairsearch run: interrupted by SIGTERM: the search's finished configurations are kept "
        f"(those in flight are recorded interrupted); `fairsearch run {run}` resumes the search "
        f"and runs the later stages")
    assert _until(lambda: not _tagged(tag), 60), f"processes left: {_tagged(tag)}"


@pytest.mark.slow
@pytest.mark.ray
def test_kill_9_during_retrain_loses_no_finished_unit(tmp_path) -> None:
    import uuid

    run = _searched_run(tmp_path)
    tag = uuid.uuid4().hex
    args = ["retrain", str(run), "--epochs", "400", "--quiet"]
    proc = subprocess.Popen(_child(args, tag), cwd=ROOT, env=_env(tag), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    marks = run / PARTIAL / "models"
    try:
        assert _until(lambda: any(marks.glob("*/seed-*/row.json")) or proc.poll() is not None,
                      600), "no unit finished"  # fmt: skip
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        _until(lambda: not _tagged(tag), 30)  # Ray's own processes follow their driver
        for pid in _tagged(tag):  # anything still left of the session we started
            os.kill(pid, signal.SIGKILL)
    kept = {p.parent.relative_to(marks): (p.parent / "model.pt").read_bytes()
            for p in marks.glob("*/seed-*/row.json")}  # fmt: skip
    assert kept and (run / LOCK_FILE).exists()  # the dead driver's lock: stale, taken over
    res = subprocess.run(_child(args, tag), cwd=ROOT, env=_env(tag), capture_output=True,
                         text=True, timeout=900)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "taking over the stale lock" in res.stderr
    assert f"{len(kept)} of 4 (configuration, seed) units were finished" in res.stderr
    assert len(pd.read_parquet(run / "retrain.parquet")) == 4
    for unit, weights in kept.items():
        assert (run / "retrain" / unit / "model.pt").read_bytes() == weights


# ----------------------------------------------------------------------------- issue 30
def _retrained_run(tmp_path: Path, lanes, seeds: list[int]) -> Path:  # noqa: ANN001 - fixture
    run = _searched_run(tmp_path)
    lanes(_Lanes())
    run_retrain(run, top_k=1, seeds=seeds, quiet=True)
    return run


def test_audit_with_the_weights_gone_names_them_and_the_retrain(tmp_path, lanes,
                                                                  capsys) -> None:  # fmt: skip
    """retrain.parquet says two seeds completed, their files are deleted: the audit says the
    weights are missing, which ones, and which command rebuilds them (not 'none completed')."""
    import shutil

    from fairsearch.analysis.audit.stage import run_stage
    from fairsearch.cli import main

    run = _retrained_run(tmp_path, lanes, seeds=[0, 1])
    config = next((run / "retrain").iterdir()).name
    shutil.rmtree(run / "retrain")
    files = [f"retrain/{config}/seed-{s}/{f}" for s in (0, 1) for f in ("model.pt", "test_repr.npy")]
    message = (f"nothing to audit in {str(run)!r}: retrain.parquet names 2 completed retrained "
               f"seeds, but their weights are missing ({', '.join(files)}); `fairsearch "
               f"retrain {run}` rebuilds them")  # fmt: skip
    assert main(["run", str(run), "--from", "audit", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"fairsearch run: error: {message}"
    assert "no retrained seed completed" not in err and "None" not in err
    assert not (run / "audit.parquet").exists() and not (run / "audit_inputs.npz").exists()
    # one seed's weights back (as a partial restore would leave them): still refused
    (run / "retrain" / config / "seed-0").mkdir(parents=True)
    (run / "retrain" / config / "seed-0" / "model.pt").write_bytes(b"weights")
    np.save(run / "retrain" / config / "seed-0" / "test_repr.npy", np.zeros((100, 1)))
    with pytest.raises(ValueError, match=(
            rf"cannot audit '.*run': retrain.parquet names 2 completed retrained seeds, but the "
            rf"weights of 1 of them are missing \(retrain/{config}/seed-1/model.pt, "
            rf"retrain/{config}/seed-1/test_repr.npy\); `fairsearch retrain .*run` rebuilds")):
        run_stage(run, quiet=True)


def test_the_audit_cache_is_tied_to_the_weights_it_came_from(tmp_path, lanes, capsys) -> None:
    """audit_inputs.npz records the path and SHA-256 of each retrained file it was collected
    from; with those files gone it is refused (never an audit of models that no longer exist),
    with other versions of them it is collected again."""
    import hashlib
    import shutil

    from fairsearch.analysis.audit.inputs import SOURCES, audit_inputs
    from fairsearch.cli import main

    run = _retrained_run(tmp_path, lanes, seeds=[0])
    cache = run / "audit_inputs.npz"
    data = audit_inputs(run)
    seed = next((run / "retrain").glob("*/seed-0"))
    rel = seed.relative_to(run).as_posix()
    sources = json.loads(str(np.load(cache)[SOURCES]))
    assert sources == {f"{rel}/{f}": hashlib.sha256((seed / f).read_bytes()).hexdigest()
                       for f in ("model.pt", "test_repr.npy")}  # fmt: skip
    assert f"rep:{rel.removeprefix('retrain/')}" in data
    # the cache is used as it is while its files are unchanged
    stamp = cache.stat().st_mtime_ns
    audit_inputs(run)
    assert cache.stat().st_mtime_ns == stamp and capsys.readouterr().err == ""
    # other weights under the same name: collected again, with the new hash
    (seed / "model.pt").write_bytes((seed / "model.pt").read_bytes() + b"\0")
    audit_inputs(run)
    assert (f"warning: {cache} was collected from other versions of {rel}/model.pt; collecting "
            f"it again from retrain/") in capsys.readouterr().err  # fmt: skip
    assert json.loads(str(np.load(cache)[SOURCES]))[f"{rel}/model.pt"] == hashlib.sha256(
        (seed / "model.pt").read_bytes()).hexdigest()
    # a cache of an earlier version (no sources) is collected again while its weights are there
    legacy = {k: v for k, v in np.load(cache).items() if k != SOURCES}
    np.savez(cache, **legacy)
    audit_inputs(run)
    assert "has no record of the files it was collected from" in capsys.readouterr().err
    assert SOURCES in np.load(cache).files
    # the weights deleted, the cache kept: refused, naming them
    shutil.rmtree(run / "retrain")
    assert main(["audit", str(run), "--n-boot", "20", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"fairsearch audit: error: {cache} holds the outputs of retrained models whose files "
        f"are missing in {str(run)!r} ({rel}/model.pt, {rel}/test_repr.npy): no audit is "
        f"written for models that no longer exist; `fairsearch retrain {run}` rebuilds them "
        f"(and drops this cache)")  # fmt: skip
    assert not (run / "audit.parquet").exists() and not (run / "audit.partial").exists()
    np.savez(cache, **legacy)  # an earlier version's cache is refused the same way
    with pytest.raises(ValueError, match=rf"holds the outputs of retrained models whose files "
                                         rf"are missing in '.*run' \({rel}/model.pt\)"):
        audit_inputs(run)
    # arrays a user brought to a folder with no retrain outputs are audited as they are
    (tmp_path / "byo").mkdir()
    assert "rep:trial-0/seed-0" in audit_inputs(_audit_folder(tmp_path / "byo"))


def _no_space(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    raise OSError(errno.ENOSPC, "No space left on device")


def _half_then_full(path, data) -> None:  # noqa: ANN001 - a writer that fills the disk midway
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        _no_space()


@pytest.mark.parametrize("where", ["writer", "fsync", "chmod", "rename", "mkstemp", "interrupt",
                                   "library error"])  # fmt: skip
def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch,
                                                                       where) -> None:  # fmt: skip
    from fairsearch.io.atomic import write_atomic

    path = tmp_path / "table.parquet"
    path.write_text("old")

    def write(tmp: Path) -> None:
        if where == "writer":  # e.g. pyarrow or torch filling the disk while it writes
            _half_then_full(tmp, b"new table " * 100)
        with open(tmp, "wb") as fh:
            fh.write(b"new")
            if where == "interrupt":
                raise KeyboardInterrupt
            if where == "library error":  # torch reports a full disk as a RuntimeError
                raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")
            os.fsync(fh.fileno())

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", _no_space)
    if where == "chmod":
        monkeypatch.setattr(os, "chmod", _no_space)
    if where == "rename":
        monkeypatch.setattr(os, "replace", _no_space)
    if where == "mkstemp":
        monkeypatch.setattr("tempfile.mkstemp", _no_space)
    expected = {"interrupt": KeyboardInterrupt, "library error": RuntimeError}.get(where, OSError)
    with pytest.raises(expected) as info:
        write_atomic(path, write)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]
    assert path.read_text() == "old"
    if expected is OSError:  # the message names the file, so the CLI says "free disk space"
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)


def test_a_full_disk_leaves_no_temporary_file_in_the_run_folder(tmp_path, lanes, capsys,
                                                                monkeypatch) -> None:  # fmt: skip
    """`fairsearch pareto` and `fairsearch report` on a full disk: rc 2, every old file intact,
    and no temporary file left (the lock's holder file included)."""
    from fairsearch.cli import main
    from fairsearch.data import save_parquet, synthetic_embeddings
    from fairsearch.executor.head import state_file, write_state
    from fairsearch.report.writer import write_report

    run = _retrained_run(tmp_path, lanes, seeds=[0])
    write_report(run)
    capsys.readouterr()

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(run)): p.read_bytes() for p in run.rglob("*") if p.is_file()}

    before = files()

    class Full:  # a file whose first write fills the disk (the lock's holder file)
        def __init__(self, fd: int, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            self.fd = fd

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc) -> None:  # noqa: ANN002
            os.close(self.fd)

        def write(self, text: str) -> None:
            os.write(self.fd, text[:1].encode())
            _no_space()

    with monkeypatch.context() as m:  # the disk is full from the start: run.lock cannot be made
        m.setattr(os, "fdopen", Full)
        assert main(["pareto", str(run)]) == 2
        assert main(["report", str(run)]) == 2
        err = capsys.readouterr().err
    assert not list(run.rglob("*.tmp")) and files() == before
    for command in ("pareto", "report"):
        assert (f"fairsearch {command}: error: {run / LOCK_FILE}: no space left on device: free "
                f"disk space") in err  # fmt: skip
    with monkeypatch.context() as m:  # the disk fills while pyarrow and the PNGs are written
        m.setattr(pd.DataFrame, "to_parquet",
                  lambda self, path, *a, **k: _half_then_full(path, b"PAR1" * 1000))
        m.setattr(Path, "write_bytes", lambda self, data: _half_then_full(self, data))
        assert main(["pareto", str(run)]) == 2
        assert main(["report", str(run)]) == 2
        err = capsys.readouterr().err
    assert not list(run.rglob("*.tmp")) and files() == before
    assert f"{run / 'pareto.partial' / 'pareto.parquet'}: no space left on device" in err
    assert "report.partial" in err and "no space left on device: free disk space" in err
    assert not (run / LOCK_FILE).exists()
    # the other temporary-file writers: a dataset saved as Parquet, the local Ray's record
    monkeypatch.setattr("pyarrow.parquet.write_table",
                        lambda table, path, *a, **k: _half_then_full(path, b"PAR1" * 1000))
    with pytest.raises(OSError, match="No space left"):
        save_parquet(synthetic_embeddings(n=50, d=2), tmp_path / "data" / "emb.parquet")
    assert not list((tmp_path / "data").iterdir())
    monkeypatch.setenv("FAIRSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(json, "dump", lambda obj, fh: (fh.write("{"), _no_space()))
    with pytest.raises(OSError, match="No space left"):
        write_state({"address": "127.0.0.1:1"})
    assert not state_file().exists() and not list(state_file().parent.iterdir())
