"""The stall message: a search in which no configuration finished for ``search.stall_timeout_s``
says why (lanes started and training, what a lane needs against what Ray has free)."""

from __future__ import annotations

import io
import os
import re
import threading
import time
from pathlib import Path

import pytest

#: One stall line: idle seconds, lanes started / lanes, lanes training, the rest.
STALL = re.compile(r"^search: no configuration finished for (\d+)s; (\d+)/(\d+) lanes started, "
                   r"(\d+) training(.*)$")  # fmt: skip


def waiting(n: int) -> str:
    return f" ({n} lane{'s' * (n > 1)} waiting for resources: add nodes or lower trial.workers/cpus/gpus)"


def _stall_lines(text: str) -> list[tuple[int, int, int, int, str]]:
    """Every line of ``text`` parsed as a stall line (an AssertionError names one that is not)."""
    out = []
    for line in text.splitlines():
        match = STALL.match(line)
        assert match, f"not a stall line: {line!r}"
        idle, started, lanes, training = (int(g) for g in match.groups()[:4])
        out.append((idle, started, lanes, training, match.group(5)))
    return out


def _lanes(source, *, lanes: int, storage: Path, stall_timeout_s: float, stream,
           stop: threading.Event | None = None):  # fmt: skip
    from _stall_helpers import sleepy_work

    from fairsearch.executor.lanes import run_lanes
    from fairsearch.executor.scaling import LaneScaling

    return run_lanes(source, sleepy_work, None, lanes=lanes,
                     scaling=LaneScaling(cpus_per_worker=1.0), storage=str(storage),
                     stop=stop or threading.Event(), name="stall", stall_timeout_s=stall_timeout_s,
                     stream=stream)  # fmt: skip


def _wait_for_free_cpus(ray, timeout: float = 30.0) -> None:
    """Until every CPU of the local Ray is free again (the next test starts lanes)."""
    total = ray.cluster_resources().get("CPU", 0.0)
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0.0) < total and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.mark.ray
def test_a_slow_configuration_on_a_started_lane_is_reported_as_training(ray_tests_importable, tmp_path):
    from fairsearch.executor.contract import ItemList

    results = []
    source = ItemList([{"key": "slow", "sleep_s": 4.0}],
                      on_result=lambda item, result: results.append(dict(result)))  # fmt: skip
    stream = io.StringIO()
    stats = _lanes(source, lanes=1, storage=tmp_path, stall_timeout_s=1.0, stream=stream)
    lines = _stall_lines(stream.getvalue())
    # while the configuration trains, its lane is started and training; nothing else is said
    training = [line for line in lines if line[1:4] == (1, 1, 1)]
    assert training, stream.getvalue()
    for idle, _, _, _, rest in training:
        assert idle >= 1 and rest == "", stream.getvalue()
    # lines printed while the lane was still starting (Tune trial, imports) name what it needs
    for _, started, lanes, training_, rest in lines:
        assert lanes == 1 and started <= 1 and training_ <= started
        if started == 0:  # Ray placed its trial (starting), or it waits for a CPU
            assert rest == ", 1 starting" or rest.startswith("; a lane needs CPU 1 and Ray has "
                                                            "CPU "), stream.getvalue()
        assert "restarts" not in rest
    # the search was only slow: it still finished normally
    assert not stats.stopped and stats.told == 1 and stats.lane_errors == []
    assert [(r["key"], r["status"]) for r in results] == [("slow", "completed")]
    assert source.finished()


@pytest.mark.ray
def test_lanes_that_cannot_start_name_what_they_need_and_what_ray_has_free(ray_tests_importable, tmp_path):
    from _stall_helpers import ResourceHolder

    from fairsearch.executor.contract import ItemList

    ray = ray_tests_importable
    total = ray.cluster_resources()["CPU"]
    holder = ResourceHolder.options(num_cpus=total).remote()  # every CPU, for the whole search
    try:
        ray.get(holder.ready.remote(), timeout=60)
        assert ray.available_resources().get("CPU", 0.0) == 0.0

        appeared, stop = threading.Event(), threading.Event()

        class Watched(io.StringIO):
            def write(self, s: str) -> int:
                if "lanes started" in s:
                    appeared.set()
                return super().write(s)

        def stopper() -> None:  # as a signal handler would: from outside the driver loop
            appeared.wait(timeout=45)
            stop.set()

        watcher = threading.Thread(target=stopper, daemon=True)
        watcher.start()
        source = ItemList([{"key": k, "sleep_s": 0.0} for k in range(3)])
        stream = Watched()
        stats = _lanes(source, lanes=2, storage=tmp_path, stall_timeout_s=1.0, stream=stream,
                       stop=stop)  # fmt: skip
        watcher.join(timeout=10)
    finally:
        ray.kill(holder)
        _wait_for_free_cpus(ray)
    assert appeared.is_set(), "no stall message before the stopper gave up"
    lines = _stall_lines(stream.getvalue())
    assert lines
    for idle, started, lanes, training, rest in lines:
        assert idle >= 1 and (started, lanes, training) == (0, 2, 0), stream.getvalue()
        # one lane needs one CPU (local mode); Ray has none free: the resources are pending
        assert rest == f"; a lane needs CPU 1 and Ray has CPU 0 free{waiting(2)}", stream.getvalue()
    # stopped before any lane pulled: nothing was asked, told or lost
    assert stats.stopped and stats.told == 0 and stats.first_pull_s is None
    assert len(source.todo) == 3 and not source.pending


@pytest.mark.ray
@pytest.mark.parametrize(("stall_timeout_s", "sleeps"), [(120.0, [0.0, 0.0, 0.0]), (0.0, [3.0])],
                         ids=["fast-search-long-timeout", "slow-search-timeout-off"])  # fmt: skip
def test_no_stall_message_when_configurations_finish_in_time_or_the_check_is_off(
        ray_tests_importable, tmp_path, stall_timeout_s, sleeps):  # fmt: skip
    from fairsearch.executor.contract import ItemList

    source = ItemList([{"key": k, "sleep_s": s} for k, s in enumerate(sleeps)])
    stream = io.StringIO()
    stats = _lanes(source, lanes=1, storage=tmp_path, stall_timeout_s=stall_timeout_s,
                   stream=stream)  # fmt: skip
    assert stream.getvalue() == ""  # 0 turns the check off: slow configurations say nothing
    assert not stats.stopped and stats.told == len(sleeps) and source.finished()


@pytest.mark.ray
def test_search_stall_timeout_s_of_the_spec_reaches_stderr(ray_tests_importable, tmp_path, capfd):
    import pandas as pd

    from fairsearch.search.engine import run_search
    from fairsearch.spec.schema import parse_spec

    raw = {
        "name": "stall",
        "data": {"name": "synthetic_regression", "n": 90, "n_train": 60, "seed": 0},
        "model": {"family": "wrapper", "factory": "_stall_helpers:make_slow_net",
                  "factory_args": {"sleep_s": 4.0, "driver_pid": os.getpid()}},
        "objectives": [{"metric": "mse", "direction": "minimize"}],
        "space": {"mu": {"type": "float", "low": 0, "high": 10}},
        "search": {"algorithm": "random", "trials": 1, "max_concurrent": 1, "seed": 0,
                   "stall_timeout_s": 1},
        "trial": {"epochs": 1, "batch_size": 32},
    }  # fmt: skip
    spec = parse_spec(raw)
    assert spec.search.stall_timeout_s == 1.0
    run_dir = run_search(spec, storage=tmp_path, quiet=True)
    err = capfd.readouterr().err
    said = "".join(line + "\n" for line in err.splitlines()
                   if line.startswith("search: no configuration finished"))  # fmt: skip
    assert any(line[1:4] == (1, 1, 1) and line[4] == "" for line in _stall_lines(said)), err
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert len(df) == 1 and (df["status"] == "completed").all()


@pytest.mark.ray
def test_lanes_ray_placed_are_starting_not_waiting_for_resources(ray_tests_importable):
    """A lane whose Tune trial Ray placed holds its CPU while it starts: with every CPU taken
    by starting lanes, none is said to wait for resources; a lane not placed is."""
    from _stall_helpers import ResourceHolder

    from fairsearch.executor.dispatcher import Dispatcher
    from fairsearch.executor.scaling import LaneScaling, LaneStats, stall_message

    ray = ray_tests_importable
    dispatcher = Dispatcher.remote(1)  # no lane has pulled from it
    holder = ResourceHolder.options(num_cpus=ray.cluster_resources()["CPU"]).remote()
    try:
        ray.get(holder.ready.remote(), timeout=60)  # as the two starting lanes' trials would
        local = LaneScaling(cpus_per_worker=1.0)
        both = stall_message(dispatcher, local, 2, LaneStats(), 5.0, granted={0, 1})
        assert both == "search: no configuration finished for 5s; 0/2 lanes started, 0 training, 2 starting"
        one = stall_message(dispatcher, local, 2, LaneStats(), 5.0, granted={0})
        assert one.endswith(", 1 starting; a lane needs CPU 1 and Ray has CPU 0 free" + waiting(1))
        # a worker-group lane that Ray placed may still wait for its workers: say what it needs
        group = LaneScaling(workers=2, cpus_per_worker=1.0)
        assert group.needs() == {"CPU": 2.0}  # its trial's share comes out of the workers'
        told = stall_message(dispatcher, group, 1, LaneStats(), 5.0, granted={0})
        assert told.endswith(", 1 starting; a lane needs CPU 2 and Ray has CPU 0 free")
    finally:
        ray.kill(holder)
        ray.kill(dispatcher)
        _wait_for_free_cpus(ray)
