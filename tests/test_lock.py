"""``run.lock``: one driver per run folder, stale locks taken over, re-entrant in one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fairsearch.io.lock import LOCK_FILE, RunLock, pid_alive, read_lock


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def test_lock_records_the_holder_and_is_removed_after(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        holder = read_lock(tmp_path / LOCK_FILE)
        assert holder is not None
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["started_at"] > 0
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_second_driver_is_refused_naming_the_holder(tmp_path: Path) -> None:
    # The other driver: a live process of this host (our parent) holds the lock.
    other = {"pid": os.getppid(), "host": socket.gethostname(), "started_at": 1_700_000_000.0}
    (tmp_path / LOCK_FILE).write_text(json.dumps(other))
    with pytest.raises(ValueError, match=rf"is in use by pid {os.getppid()} on host "
                                         rf"'{socket.gethostname()}' since 2023-11-1\dT"):
        RunLock(tmp_path).acquire()
    assert read_lock(tmp_path / LOCK_FILE) == other  # left alone


def test_two_drivers_in_two_processes(tmp_path: Path) -> None:
    code = ("import sys, time; from fairsearch.io.lock import RunLock\n"
            "with RunLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"in use by pid {proc.pid} on host"):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    with RunLock(tmp_path):  # the holder is gone: its lock is stale now
        assert read_lock(tmp_path / LOCK_FILE)["pid"] == os.getpid()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path: Path, capsys) -> None:
    dead = _dead_pid()
    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"pid": dead, "host": socket.gethostname(), "started_at": 1.0}))
    with RunLock(tmp_path):
        assert read_lock(tmp_path / LOCK_FILE)["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert f"taking over the stale lock of pid {dead}" in err
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_of_another_host_is_never_taken_over(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"pid": _dead_pid(), "host": "some-other-node", "started_at": 1.0}))
    with pytest.raises(ValueError, match="on host 'some-other-node'"):
        RunLock(tmp_path).acquire()


def test_an_unreadable_lock_is_refused(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("")
    with pytest.raises(ValueError, match=r"in use by an unknown process .*delete '.*run.lock'"):
        RunLock(tmp_path).acquire()


def test_reentrant_in_one_process(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        with RunLock(tmp_path):  # e.g. the search stage inside `fairsearch run`
            pass
        assert (tmp_path / LOCK_FILE).exists()  # still held by the outer one
    assert not (tmp_path / LOCK_FILE).exists()


def test_lock_of_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a folder"):
        RunLock(tmp_path / "nope").acquire()


def _contend(run_dir: str, start, done) -> None:  # noqa: ANN001 - multiprocessing barriers
    """One driver of a race: wait for the others, try the lock, hold it until all have tried."""
    start.wait()
    try:
        RunLock(run_dir).acquire()
        (Path(run_dir) / f"won-{os.getpid()}").touch()
    except ValueError:
        pass
    done.wait()  # a winner stays alive (its lock is live) until every contender has tried
    os._exit(0)


def test_racing_takeovers_of_a_stale_lock_have_one_holder(tmp_path: Path) -> None:
    """Drivers that all find the same dead holder's lock: exactly one takes it over, every time
    (read-unlink-create let two of them hold it in about one try in ten)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")  # cheap processes: the lock module is imported
    tries, drivers, doubles = 100, 4, 0
    dead = _dead_pid()
    for i in range(tries):
        run = tmp_path / f"run{i}"
        run.mkdir()
        (run / LOCK_FILE).write_text(json.dumps(
            {"pid": dead, "host": socket.gethostname(), "started_at": 1.0}))
        start, done = ctx.Barrier(drivers), ctx.Barrier(drivers + 1)
        procs = [ctx.Process(target=_contend, args=(str(run), start, done))
                 for _ in range(drivers)]  # fmt: skip
        for p in procs:
            p.start()
        done.wait(timeout=60)
        for p in procs:
            p.join(timeout=60)
        winners = [int(p.name.removeprefix("won-")) for p in run.glob("won-*")]
        assert len(winners) >= 1, f"try {i}: nobody took over the stale lock"
        doubles += len(winners) > 1
        assert read_lock(run / LOCK_FILE)["pid"] in winners
    assert doubles == 0, f"{doubles} of {tries} tries had two holders"


def test_every_command_that_writes_refuses_a_folder_another_driver_holds(tmp_path: Path,
                                                                         capsys) -> None:  # fmt: skip
    from fairsearch.cli import main

    code = ("import sys, time; from fairsearch.io.lock import RunLock\n"
            "with RunLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    try:
        assert proc.stdout.readline().strip() == "held"
        for command in ("pareto", "retrain", "audit", "report", "repair"):
            assert main([command, str(tmp_path)]) == 2, command
            err = capsys.readouterr().err
            assert f"fairsearch {command}: error: run folder" in err, err
            assert f"is in use by pid {proc.pid} on host" in err, err
    finally:
        proc.kill()
        proc.wait()
