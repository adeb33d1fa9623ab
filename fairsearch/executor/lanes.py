"""Lanes: ``max_concurrent`` long-lived Ray Train runs, each training one item after another.

::

    driver thread (owns the work source)          tuner.fit() in a background thread
      loop: results, waiting = poll()               Tune: one function trainable per lane
            source.tell(result) at once              -> ONE TorchTrainer for the lane's life
            source.ask() only for waiting lanes         1 worker, CPU: local mode (this process)
            deliver()                                   else: a worker group; rank 0 pulls and
                      \\                                 broadcasts the item to every rank
                       Dispatcher actor (executor/dispatcher.py): next(lane, result) -> item

A lane pays the start-up (Tune trial, Train run, imports, data) once; each item then costs one
dispatcher round trip. Results come back through the dispatcher, never ``ray.train.report``
(a barrier across ranks plus the Train controller's 2 s polling; docs/cluster.md). The work
source is an Optuna study for the search (:class:`fairsearch.search.recorder.Recorder`) and a
fixed list of (configuration, seed) items for the retrain stage; both fulfil :class:`Source`.

The driver owns SIGINT/SIGTERM (``tuner.fit()`` runs off the main thread, so Tune installs no
handler): setting ``stop`` ends the loop, the dispatcher is closed, a ``Stopper`` ends Tune, and
the source decides what the items in flight become (the search records them ``interrupted``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import queue
import shutil
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, TextIO

from fairsearch.executor.contract import Item, Source, Work
from fairsearch.executor.lane_loop import lane_loop, lane_trainable
from fairsearch.executor.scaling import LaneScaling, LaneStats, stall_message

__all__ = ["LanePool", "run_lanes"]


def _plain_job() -> bool:
    """Whether this job's workers run the driver's own code: no runtime environment beyond
    environment variables (a ``working_dir`` or ``py_modules`` would differ from a warm lane's)."""
    import ray

    try:
        env = dict(ray.get_runtime_context().runtime_env or {})
    except Exception:  # noqa: BLE001 - unknown: not plain
        return False
    return not (set(env) - {"env_vars"})


def _work_key(work: Work) -> Any:
    """What makes two work functions the same (a ``functools.partial`` compares by identity)."""
    if isinstance(work, functools.partial):
        return (work.func, work.args, repr(sorted(work.keywords.items())))
    return work


class LanePool:
    """Lanes started before their work's data is known: Tune places each lane and its process
    imports and builds its Train run while the driver still checks its spec and data. The
    lanes wait in the dispatcher for the data (:meth:`run` hands it over) or for
    :meth:`close`.

    ``scratch``: a folder made for Tune's files (``storage``) that :meth:`close` removes.
    """

    def __init__(self, work: Work, *, lanes: int, scaling: LaneScaling, storage: str,
                 name: str = "lanes", scratch: str | None = None) -> None:  # fmt: skip
        from fairsearch.executor.dispatcher import take_dispatcher

        self.work, self.lanes, self.scaling, self.scratch = work, lanes, scaling, scratch
        self.stats = LaneStats()
        self.dispatcher = take_dispatcher(scaling.max_failures)
        self.events: queue.Queue[tuple[str, int, str]] = queue.Queue()
        self.ending = threading.Event()  # the driver is done: Tune stops what is left of the lanes
        self.stop_events = [self.ending]  # any set: Tune stops its lanes (run adds its stop)
        self.outcome: dict[str, Any] = {}
        self.used = False
        self.hosts: list[Any] = []  # warm lanes this pool claimed (lanes 0 .. len - 1)
        self.host_runs: dict[Any, int] = {}  # their lane loops' ObjectRefs -> lane
        self.host_results: list[dict[str, Any]] = []
        self.reservation: Any = None  # the placement group holding the warm lanes' CPUs
        if scaling.local and _plain_job():
            self._start_warm(work)
        tune_lanes = list(range(len(self.hosts), lanes))
        self.thread: threading.Thread | None = None
        if tune_lanes:
            import ray.tune

            from fairsearch.executor.tune_hooks import LaneEvents, StopAll

            setup = {"dispatcher": self.dispatcher, "work": work, "scaling": scaling,
                     "storage": storage, "name": name}  # fmt: skip
            trial_resources = {"cpu": scaling.cpus_per_worker if scaling.local else scaling.LANE_CPU}
            self.tuner = ray.tune.Tuner(
                ray.tune.with_resources(ray.tune.with_parameters(lane_trainable, setup=setup),
                                        trial_resources),
                param_space={"lane": ray.tune.grid_search(tune_lanes)},
                tune_config=ray.tune.TuneConfig(max_concurrent_trials=len(tune_lanes),
                                                reuse_actors=False),
                run_config=ray.tune.RunConfig(
                    name=name, storage_path=storage, verbose=0, stop=StopAll(self.stop_events),
                    callbacks=[LaneEvents(self.events)], failure_config=ray.tune.FailureConfig(
                        max_failures=scaling.max_failures if scaling.local else 0)),
            )  # fmt: skip
            self.thread = threading.Thread(target=self._fit, name="fairsearch-tune", daemon=True)
            self.thread.start()  # off the main thread: Tune installs no signal handler

    def _start_warm(self, work: Work) -> None:
        """Claim free warm lanes (:mod:`fairsearch.executor.warm`), reserve their CPUs and start
        the lane loop in each; none if there are none or their CPUs are not free now."""
        import cloudpickle
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group

        from fairsearch.executor import warm

        token = warm.new_token()
        hosts = warm.claim_hosts(self.lanes, token)
        if not hosts:
            return
        group = placement_group([{"CPU": self.scaling.cpus_per_worker}] * len(hosts))
        ready, _ = ray.wait([group.ready()], timeout=2.0)
        if not ready:  # the CPUs are taken: Tune's lanes wait for them in Ray's queue instead
            remove_placement_group(group)
            for host in hosts:
                host.release.remote(token)
            return
        self.hosts, self.reservation = hosts, group
        pickled = cloudpickle.dumps((lane_loop, work))
        here = [os.path.abspath(p or os.curdir) for p in sys.path]
        self._host_call = (token, pickled, here)
        for lane in range(len(hosts)):
            self._start_host_lane(lane)
            self.events.put(("start", lane, ""))  # placed already: it is starting, not pending

    def _start_host_lane(self, lane: int) -> None:
        """The lane loop on warm lane ``lane``'s host. Ray restarts a host whose process died and
        calls the loop again there; the loop then asks the dispatcher for its item again, which
        retries it up to ``trial.max_failures`` times and then records it failed."""
        token, pickled, here = self._host_call
        cfg = {"dispatcher": self.dispatcher, "lane": lane, "threads": self.scaling.threads,
               "local": True}  # fmt: skip
        ref = self.hosts[lane].run_lane.options(max_task_retries=-1).remote(token, cfg, pickled, here)
        self.host_runs[ref] = lane

    def _warm_events(self, timeout: float = 0.0) -> None:
        """Warm lanes whose loop returned (their summary) or failed for good (the host could not
        be restarted: an ``error`` event, as for a Tune lane past its retries)."""
        import ray

        if not self.host_runs:
            return
        done, _ = ray.wait(list(self.host_runs), num_returns=len(self.host_runs), timeout=timeout)
        for ref in done:
            lane = self.host_runs.pop(ref)
            try:
                self.host_results.append(dict(ray.get(ref) or {}))
            except Exception as exc:  # noqa: BLE001 - the lane's process is gone
                text = str(exc).strip().splitlines()
                self.events.put(("error", lane, (text[-1] if text else "the process died")[-500:]))

    def _end_warm(self, stopped: bool) -> None:
        """Wait for the warm lanes' loops (not when stopped), then end those processes, start as
        many fresh ones and free their CPUs."""
        from ray.util.placement_group import remove_placement_group

        from fairsearch.executor import warm

        if self.host_runs and not stopped:
            self._warm_events(timeout=15.0)
        hosts, self.hosts = self.hosts, []
        self.host_runs.clear()
        warm.release_hosts(hosts)
        if self.reservation is not None:
            with contextlib.suppress(Exception):
                remove_placement_group(self.reservation)
            self.reservation = None

    def _lanes_running(self) -> bool:
        return bool(self.host_runs) or (self.thread is not None and self.thread.is_alive())

    def _fit(self) -> None:
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                self.outcome["grid"] = self.tuner.fit()
        except BaseException as exc:  # noqa: BLE001 - surfaced by the driver loop
            self.outcome["error"] = exc

    def matches(self, work: Work, lanes: int, scaling: LaneScaling) -> bool:
        """Whether this pool can train ``work`` as ``run_lanes`` was asked to."""
        return (not self.used and lanes == self.lanes and scaling == self.scaling
                and _work_key(work) == _work_key(self.work))  # fmt: skip

    def close(self, timeout_s: float = 60.0) -> None:
        """End the lanes (a pool never run: they end without training) and remove ``scratch``."""
        import ray

        self.used = True
        with contextlib.suppress(Exception):
            ray.get(self.dispatcher.close.remote(), timeout=10)
        self._end_warm(stopped=False)
        if self.thread is not None:
            self.thread.join(timeout=15.0)
            if self.thread.is_alive():
                self.ending.set()
                self.thread.join(timeout=timeout_s)
        self._remove_scratch()

    def _remove_scratch(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def run(self, source: Source, data: Any, *, stop: threading.Event,
            stall_timeout_s: float = 0.0, poll_s: float = 0.2,
            stream: TextIO | None = None) -> LaneStats:  # fmt: skip
        """Hand the lanes ``data`` and train the source's items (see :func:`run_lanes`)."""
        import ray

        if self.used:
            raise RuntimeError("a LanePool runs once")
        self.used = True
        self.stop_events.append(stop)
        self.stats.warm = len(self.hosts)
        data_ref = ray.put(data)  # held here: the lanes read it while this driver runs
        self.dispatcher.set_data.remote([data_ref])
        stream = stream if stream is not None else sys.stderr
        loop = _Loop(alive=set(range(self.lanes)))
        try:
            while not stop.is_set():
                if self._step(source, stop, loop, poll_s):
                    break
                self._warn_if_stalled(loop, stall_timeout_s, stream)
        finally:
            self._wind_down(stop)
        return self._summary()

    def _step(self, source: Source, stop: threading.Event, loop: _Loop, poll_s: float) -> bool:
        """One round of the driver loop: tell the results, follow the lanes' events, give the
        waiting lanes their items. True when the work is done or no lane is left to do it."""
        import ray

        results, waiting = ray.get(self.dispatcher.poll.remote(poll_s))
        self._warm_events()
        self._tell(source, results, loop)
        self._follow_events(source, loop)
        self._assign(source, waiting, stop)
        source.flush()
        if source.finished():
            return True
        if not self._lanes_running() or not loop.alive:
            results, _ = ray.get(self.dispatcher.poll.remote(0.0))  # anything sent last
            self._tell(source, results, loop, progress=False)
            return True
        return False

    def _tell(self, source: Source, results: list[tuple[int, dict[str, Any]]], loop: _Loop,
              progress: bool = True) -> None:  # fmt: skip
        for lane, result in results:
            source.tell(lane, result)
            self.stats.told += 1
            if progress:
                loop.last_progress = time.monotonic()

    def _follow_events(self, source: Source, loop: _Loop) -> None:
        """Lanes Ray placed (``start``), restarted (``recover``) or lost for good (``error``: the
        item it held fails)."""
        import ray

        while not self.events.empty():
            kind, lane, reason = self.events.get_nowait()
            if kind == "start":
                loop.granted.add(lane)
                continue
            loop.granted.discard(lane)  # restarted (placed again, and said so) or gone
            self.stats.lane_errors.append(f"lane {lane} {'restarted' if kind == 'recover' else 'died'}: {reason}")
            if kind == "error":
                loop.alive.discard(lane)
                item = ray.get(self.dispatcher.drop.remote(lane))
                if item is not None:
                    source.fail(item["key"], f"the lane died: {reason}")
                    loop.last_progress = time.monotonic()

    def _assign(self, source: Source, waiting: list[int], stop: threading.Event) -> None:
        """Ask the source for an item for each waiting lane and hand them over."""
        stats = self.stats
        assignments: dict[int, Item | None] = {}
        for lane in waiting:
            item = None if stop.is_set() else source.ask(lane)
            assignments[lane] = item
            if item is not None and stats.first_pull_s is None:
                stats.first_pull_s = time.perf_counter() - stats.started_at
        if assignments:
            self.dispatcher.deliver.remote(assignments)  # same caller: runs after this poll

    def _warn_if_stalled(self, loop: _Loop, stall_timeout_s: float, stream: TextIO) -> None:
        now = time.monotonic()
        if stall_timeout_s and now - max(loop.last_progress, loop.last_warning) > stall_timeout_s:
            loop.last_warning = now
            print(stall_message(self.dispatcher, self.scaling, self.lanes, self.stats,
                                now - loop.last_progress, loop.granted),
                  file=stream, flush=True)  # fmt: skip

    def _wind_down(self, stop: threading.Event) -> None:
        """Record the lanes' start marks, close the dispatcher, end the warm lanes and Tune's
        (stopped: at once, else once they end on their own) and remove the scratch folder."""
        import ray

        stats = self.stats
        stats.stopped = stop.is_set()
        with contextlib.suppress(Exception):
            marks = ray.get(self.dispatcher.start_marks.remote(), timeout=10)
            stats.start_marks = {
                lane: {k.removesuffix("_at"): round(v - stats.started_epoch, 4)
                       for k, v in m.items()} for lane, m in marks.items()}  # fmt: skip
        with contextlib.suppress(Exception):
            ray.get(self.dispatcher.close.remote(), timeout=10)
        self._end_warm(stats.stopped)
        if self.thread is not None:
            self.thread.join(timeout=0.0 if stats.stopped else 15.0)  # lanes end on their own
            if self.thread.is_alive():
                self.ending.set()  # lanes that are still training are stopped by Tune
                self.thread.join(timeout=60)
        self._remove_scratch()

    def _summary(self) -> LaneStats:
        """The stats with every lane's summary; Tune's error, unless the run was stopped."""
        stats = self.stats
        grid = self.outcome.get("grid")
        stats.lanes = list(self.host_results)
        if grid is not None:
            stats.lanes += [dict(r.metrics or {}) for r in grid]
        stats.wall_s = time.perf_counter() - stats.started_at
        if "error" in self.outcome and not stats.stopped:
            error = self.outcome["error"]
            raise RuntimeError(f"Ray Tune stopped with an error: {error}") from error
        return stats


@dataclass
class _Loop:
    """What the driver loop tracks between rounds: lanes not lost, lanes Ray placed, and when a
    result last came in or the last stall warning was printed (``time.monotonic()``)."""

    alive: set[int]
    granted: set[int] = field(default_factory=set)
    last_progress: float = field(default_factory=time.monotonic)
    last_warning: float = field(default_factory=time.monotonic)


def run_lanes(
    source: Source,
    work: Work,
    data: Any,
    *,
    lanes: int,
    scaling: LaneScaling,
    storage: str,
    stop: threading.Event,
    name: str = "lanes",
    stall_timeout_s: float = 0.0,
    poll_s: float = 0.2,
    stream: TextIO | None = None,
    pool: LanePool | None = None,
) -> LaneStats:
    """Train the source's items on ``lanes`` lanes until it is finished or ``stop`` is set.

    Items still in flight when ``stop`` is set are left to the caller (the source still holds
    them as asked and untold). A lane that dies past its retries has its item failed through
    :meth:`Source.fail`; the other lanes go on. ``pool``: lanes started earlier for this work
    (:class:`LanePool`), used when they match, else closed.
    """
    if pool is not None and not pool.matches(work, lanes, scaling):
        pool.close()
        pool = None
    if pool is None:
        pool = LanePool(work, lanes=lanes, scaling=scaling, storage=storage, name=name)
    return pool.run(source, data, stop=stop, stall_timeout_s=stall_timeout_s, poll_s=poll_s,
                    stream=stream)  # fmt: skip


