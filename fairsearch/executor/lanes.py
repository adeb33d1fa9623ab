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
import math
import os
import queue
import shutil
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from fairsearch.executor.dispatcher import Item

__all__ = ["ItemList", "LaneContext", "LanePool", "LaneScaling", "LaneStats", "Source", "Work", "run_lanes"]


@dataclass(frozen=True)
class LaneScaling:
    """The spec's ``trial`` section as one lane's Ray Train ``ScalingConfig``."""

    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_failures: int = 1

    @classmethod
    def from_trial(cls, trial: Any) -> LaneScaling:
        return cls(workers=int(trial.workers), cpus_per_worker=float(trial.cpus_per_worker),
                   gpus_per_worker=float(trial.gpus_per_worker),
                   max_failures=int(trial.max_failures))  # fmt: skip

    @property
    def local(self) -> bool:
        """One CPU worker: Train's local mode, the item trains in the Tune trial's process."""
        return self.workers == 1 and self.gpus_per_worker == 0

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus_per_worker))

    #: CPU of a worker-group lane's own Tune trial (it only runs Train's controller). Ray
    #: places no bundle without a resource, so it takes this much out of the workers' share:
    #: a lane holds exactly ``workers x cpus_per_worker`` (2 workers of 1 CPU fit 2 CPUs).
    LANE_CPU = 0.01

    def worker_resources(self) -> dict[str, float]:
        """``resources_per_worker`` of a worker-group lane (see :attr:`LANE_CPU`)."""
        share = math.ceil(self.LANE_CPU / self.workers * 1e4) / 1e4  # Ray counts 1e-4 units
        out = {"CPU": max(self.cpus_per_worker - share, share)}
        if self.gpus_per_worker:
            out["GPU"] = self.gpus_per_worker
        return out

    def needs(self) -> dict[str, float]:
        """What one lane holds from Ray while it runs (for the stall message)."""
        if self.local:
            return {"CPU": self.cpus_per_worker}
        worker = self.worker_resources()
        out = {"CPU": self.LANE_CPU + self.workers * worker["CPU"]}
        if self.gpus_per_worker:
            out["GPU"] = self.workers * self.gpus_per_worker
        return out


@dataclass(frozen=True)
class LaneContext:
    """What a work function gets besides the item: the lane's place in its Train run."""

    data: Any
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    prepare_module: Callable[[Any], Any] | None = None
    lane: int = 0


#: ``work(item, ctx) -> result dict``; runs on every rank, rank 0's result is kept. Exceptions
#: are caught by the lane and become ``{"status": "failed", "error": ...}``.
Work = Callable[[Item, LaneContext], dict[str, Any]]


class Source(Protocol):
    """What the driver loop needs from the owner of the work."""

    def ask(self, lane: int) -> Item | None:
        """The next item for ``lane`` (None: no more work for it)."""

    def tell(self, lane: int, result: Mapping[str, Any]) -> None:
        """Record one item's result (``result["key"]`` is the item's key)."""

    def fail(self, key: Any, reason: str) -> None:
        """The item ``key`` can no longer finish (its lane is gone)."""

    def finished(self) -> bool:
        """Nothing left to ask and nothing untold."""

    def flush(self) -> None:
        """Slow bookkeeping (tables, progress), called once the waiting lanes have their work."""


class ItemList:
    """A fixed list of items as a :class:`Source` (the retrain plan: (configuration, seed)).

    Each item is a dict with a unique ``key``; ``on_result(item, result)`` is called as each
    result comes in (a failed lane's item gets ``status: failed`` and the reason).
    """

    def __init__(self, items: list[Item],
                 on_result: Callable[[Item, Mapping[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.todo = list(items)
        self.pending: dict[Any, Item] = {}
        self.on_result = on_result

    def ask(self, lane: int) -> Item | None:
        if not self.todo:
            return None
        item = {**self.todo.pop(0), "attempt": 0}
        self.pending[item["key"]] = item
        return item

    def tell(self, lane: int, result: Mapping[str, Any]) -> None:
        item = self.pending.pop(result["key"], None)
        if item is not None and self.on_result is not None:
            self.on_result(item, result)

    def fail(self, key: Any, reason: str) -> None:
        self.tell(-1, {"key": key, "status": "failed", "error": reason})

    def finished(self) -> bool:
        return not self.todo and not self.pending

    def flush(self) -> None:
        return None


@dataclass
class LaneStats:
    """What one driver loop saw (timings in seconds)."""

    started_at: float = field(default_factory=time.perf_counter)
    started_epoch: float = field(default_factory=time.time)
    first_pull_s: float | None = None
    wall_s: float = 0.0
    told: int = 0
    stopped: bool = False
    lane_errors: list[str] = field(default_factory=list)
    #: lanes that ran on warm lanes of ``fairsearch up`` (the rest were Tune trials)
    warm: int = 0
    lanes: list[dict[str, Any]] = field(default_factory=list)
    #: per lane, seconds after ``run_lanes`` began: ``trainable`` (Tune placed the lane and its
    #: function started), ``loop`` (Train's loop started), ``ready`` (imports and data done),
    #: ``pulled`` (the dispatcher got its first pull)
    start_marks: dict[int, dict[str, float]] = field(default_factory=dict)


# ----------------------------------------------------------------------------- lane side
def _lane_loop(cfg: dict[str, Any]) -> dict[str, Any]:
    """The Train function of one lane (local mode, or every worker of its group)."""
    loop_at = time.time()
    import ray
    import torch

    torch.set_num_threads(int(cfg["threads"]))
    if cfg["local"]:  # ray.train.get_context()/report raise in local mode under Tune
        rank, world, device, prepare = 0, 1, "cpu", None
    else:
        import ray.train
        import ray.train.torch
        from ray.train.collective import broadcast_from_rank_zero

        ctx = ray.train.get_context()
        rank, world = ctx.get_world_rank(), ctx.get_world_size()
        device = str(ray.train.torch.get_device())
        prepare = ray.train.torch.prepare_model if world > 1 or device != "cpu" else None
    lane, dispatcher, work = cfg["lane"], cfg["dispatcher"], cfg["work"]
    refs = ray.get(dispatcher.data.remote())  # waits while the driver still checks its data
    if refs is None:  # closed before the data was known (the checks failed, or a signal)
        return {"lane": lane, "items": 0, "lane_s": 0.0, "train_s": 0.0,
                "threads": torch.get_num_threads(), "world_size": world}  # fmt: skip
    data = ray.get(refs[0])
    context = LaneContext(data=data, rank=rank, world_size=world, device=device,
                          prepare_module=prepare, lane=lane)  # fmt: skip
    node, node_id = socket.gethostname(), ray.get_runtime_context().get_node_id()
    result: dict[str, Any] | None = None
    count, train_total, started = 0, 0.0, time.perf_counter()
    mark = started
    hello: dict[str, float] | None = {"trainable_at": cfg.get("trainable_at", loop_at),
                                      "loop_at": loop_at, "ready_at": time.time()}  # fmt: skip
    while True:
        item = ray.get(dispatcher.next.remote(lane, result, hello)) if rank == 0 else None
        hello = None
        if world > 1:
            item = broadcast_from_rank_zero(item)
        if item is None:
            break
        t0 = time.perf_counter()
        try:
            out = dict(work(item, context))
        except Exception as exc:  # noqa: BLE001 - one bad item must not end the lane
            tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            out = {"status": "failed", "error": tail[-2000:]}
        now = time.perf_counter()
        train_s = now - t0
        out.update(key=item["key"], attempt=item["attempt"], lane=lane, node=node,
                   node_id=node_id, train_s=train_s, overhead_s=max(0.0, (now - mark) - train_s))  # fmt: skip
        mark = now
        count += 1
        train_total += train_s
        result = out
    return {"lane": lane, "items": count, "lane_s": time.perf_counter() - started,
            "train_s": train_total, "threads": torch.get_num_threads(), "world_size": world}


def _lane_trainable(config: dict[str, Any], setup: dict[str, Any]) -> None:
    """Tune function trainable: one lane = one TorchTrainer for the lane's whole life."""
    entered = time.time()
    import ray
    import ray.train
    import ray.tune
    from ray.train.torch import TorchTrainer

    scaling: LaneScaling = setup["scaling"]
    loop = {"dispatcher": setup["dispatcher"], "work": setup["work"], "lane": config["lane"],
            "threads": scaling.threads, "local": scaling.local, "trainable_at": entered}  # fmt: skip
    if scaling.local:
        scaling_config = ray.train.ScalingConfig(num_workers=0)
    else:
        scaling_config = ray.train.ScalingConfig(
            num_workers=scaling.workers, use_gpu=scaling.gpus_per_worker > 0,
            resources_per_worker=scaling.worker_resources())  # fmt: skip
    trainer = TorchTrainer(
        _lane_loop, train_loop_config=loop, scaling_config=scaling_config,
        run_config=ray.train.RunConfig(
            name=f"{setup['name']}-lane{config['lane']}", storage_path=setup["storage"],
            failure_config=ray.train.FailureConfig(max_failures=scaling.max_failures)),
    )  # fmt: skip
    result = trainer.fit()
    ray.tune.report(dict(result.return_value or {}))


# ----------------------------------------------------------------------------- driver side
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
                ray.tune.with_resources(ray.tune.with_parameters(_lane_trainable, setup=setup),
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
        pickled = cloudpickle.dumps((_lane_loop, work))
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
        stream = stream if stream is not None else sys.stderr
        stats, dispatcher, lanes = self.stats, self.dispatcher, self.lanes
        stats.warm = len(self.hosts)
        data_ref = ray.put(data)  # held here: the lanes read it while this driver runs
        dispatcher.set_data.remote([data_ref])
        last_progress = time.monotonic()
        last_warning = last_progress
        alive = set(range(lanes))
        granted: set[int] = set()  # lanes whose Tune trial Ray has placed
        try:
            while not stop.is_set():
                results, waiting = ray.get(dispatcher.poll.remote(poll_s))
                self._warm_events()
                for lane, result in results:
                    source.tell(lane, result)
                    stats.told += 1
                    last_progress = time.monotonic()
                while not self.events.empty():
                    kind, lane, reason = self.events.get_nowait()
                    if kind == "start":
                        granted.add(lane)
                        continue
                    granted.discard(lane)  # restarted (placed again, and said so) or gone
                    stats.lane_errors.append(f"lane {lane} {'restarted' if kind == 'recover' else 'died'}: {reason}")
                    if kind == "error":
                        alive.discard(lane)
                        item = ray.get(dispatcher.drop.remote(lane))
                        if item is not None:
                            source.fail(item["key"], f"the lane died: {reason}")
                            last_progress = time.monotonic()
                assignments: dict[int, Item | None] = {}
                for lane in waiting:
                    item = None if stop.is_set() else source.ask(lane)
                    assignments[lane] = item
                    if item is not None and stats.first_pull_s is None:
                        stats.first_pull_s = time.perf_counter() - stats.started_at
                if assignments:
                    dispatcher.deliver.remote(assignments)  # same caller: runs after this poll
                source.flush()
                if source.finished():
                    break
                if not self._lanes_running() or not alive:
                    results, _ = ray.get(dispatcher.poll.remote(0.0))  # anything sent last
                    for lane, result in results:
                        source.tell(lane, result)
                        stats.told += 1
                    break
                now = time.monotonic()
                if stall_timeout_s and now - max(last_progress, last_warning) > stall_timeout_s:
                    last_warning = now
                    print(_stall_message(dispatcher, self.scaling, lanes, stats,
                                         now - last_progress, granted),
                          file=stream, flush=True)  # fmt: skip
        finally:
            stats.stopped = stop.is_set()
            with contextlib.suppress(Exception):
                marks = ray.get(dispatcher.start_marks.remote(), timeout=10)
                stats.start_marks = {
                    lane: {k.removesuffix("_at"): round(v - stats.started_epoch, 4)
                           for k, v in m.items()} for lane, m in marks.items()}  # fmt: skip
            with contextlib.suppress(Exception):
                ray.get(dispatcher.close.remote(), timeout=10)
            self._end_warm(stats.stopped)
            if self.thread is not None:
                self.thread.join(timeout=0.0 if stats.stopped else 15.0)  # lanes end on their own
                if self.thread.is_alive():
                    self.ending.set()  # lanes that are still training are stopped by Tune
                    self.thread.join(timeout=60)
            self._remove_scratch()
        grid = self.outcome.get("grid")
        stats.lanes = list(self.host_results)
        if grid is not None:
            stats.lanes += [dict(r.metrics or {}) for r in grid]
        stats.wall_s = time.perf_counter() - stats.started_at
        if "error" in self.outcome and not stats.stopped:
            error = self.outcome["error"]
            raise RuntimeError(f"Ray Tune stopped with an error: {error}") from error
        return stats


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


def _stall_message(dispatcher: Any, scaling: LaneScaling, lanes: int, stats: LaneStats,
                   idle_s: float, granted: set[int] | None = None) -> str:  # fmt: skip
    """Why nothing finished for ``idle_s`` seconds: lanes training, lanes still starting (Ray
    placed their trial; a worker-group lane may still wait for its workers), lanes waiting for
    resources no node has free, lane restarts and the last lane error."""
    import ray

    state = ray.get(dispatcher.state.remote())
    pulled = set(state["started"])
    starting = set(granted or ()) - pulled
    pending = lanes - len(pulled) - len(starting)
    available = ray.available_resources()
    needs = scaling.needs()
    parts = [f"search: no configuration finished for {idle_s:.0f}s; "
             f"{len(pulled)}/{lanes} lanes started, {len(state['in_flight'])} training"]
    if starting:
        parts.append(f", {len(starting)} starting")
    if pending > 0 or (starting and not scaling.local):
        need = ", ".join(f"{k} {v:g}" for k, v in needs.items())
        have = ", ".join(f"{k} {available.get(k, 0.0):g}" for k in needs)
        parts.append(f"; a lane needs {need} and Ray has {have} free")
        short = any(available.get(k, 0.0) + 1e-9 < v for k, v in needs.items())
        if pending > 0 and short:
            parts.append(f" ({pending} lane{'s' * (pending > 1)} waiting for resources: add "
                         f"nodes or lower trial.workers/cpus/gpus)")  # fmt: skip
    if state["restarts"] or stats.lane_errors:
        last = stats.lane_errors[-1] if stats.lane_errors else "no message"
        parts.append(f"; {state['restarts']} lane restarts, last: {last}")
    return "".join(parts)
