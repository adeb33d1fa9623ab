"""The search stage: Optuna samples on demand, Ray Tune runs lanes, Ray Train trains.

Design (docs/cluster.md for the Ray side, docs/schemas.md for the tables):

* The driver owns the Optuna study (the journal ``study.journal``, ask/tell through
  :class:`~fairsearch.search.recorder.Recorder`).
* ``search.max_concurrent`` lanes (:mod:`fairsearch.executor.lanes`): each is one Ray Tune
  function trainable running ONE Ray Train ``TorchTrainer`` for its whole life, with the spec's
  ``ScalingConfig`` (``trial.workers``, ``cpus_per_worker``, ``gpus_per_worker``). A 1-worker
  CPU lane uses Train's local mode: configurations train in the Tune trial's process, with
  ``cpus_per_worker`` torch threads. A lane pulls one configuration at a time from a dispatcher
  actor; the driver asks Optuna only for a lane that waits, so asks and results interleave and
  never more than ``max_concurrent`` configurations are asked and untold.
* Failures: a diverged or crashed configuration is an outcome (told ``FAIL`` with its reason);
  a lane whose process dies is restarted (``trial.max_failures``) and gets its configuration
  again, or, past its retries, the configuration is told failed; the other lanes go on.
* SIGINT/SIGTERM stop the search: the configurations in flight are recorded ``interrupted``
  (not counted against ``search.trials``), Ray is shut down, the exit code is 130/143.
  ``fairsearch resume RUN_DIR`` re-runs exactly those configurations and meets the budget.
* A search where nothing finishes for ``search.stall_timeout_s`` says why on stderr.

Ray is configured quietly: ``log_to_driver=False``, Tune ``verbose=0``, no Tune result loggers.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from fairsearch.executor.ray_start import init_ray, shutdown_ray, stop_on_signals
from fairsearch.io.storage import RunStorage, new_run, open_run
from fairsearch.search.halving import halving_rule
from fairsearch.search.options import configure_resume, configure_search
from fairsearch.search.progress import Progress
from fairsearch.search.recorder import Recorder, write_spec
from fairsearch.search.study import STUDY_FILE, open_study, study_file
from fairsearch.search.trial import train_configuration
from fairsearch.spec.schema import load_spec, metrics_for
from fairsearch.spec.validated import Spec

__all__ = ["SearchInterrupted", "configure_resume", "configure_search", "init_ray",
           "main_resume", "main_search", "run_search", "search_inprocess"]  # fmt: skip

_LOG = logging.getLogger("fairsearch")


class SearchInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the search; its run folder is consistent and resumable."""

    def __init__(self, signum: int, run_dir: Path) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum, self.run_dir = signum, run_dir

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _load_data(spec: Spec):  # noqa: ANN202 - a Dataset
    from fairsearch.data import load_from_spec

    data = load_from_spec(spec.data)
    task = getattr(data, "task", None)
    allowed = metrics_for(spec.model, task, spec.criterion)
    for i, o in enumerate(spec.objectives):
        if o.metric not in allowed:
            raise ValueError(
                f"`objectives[{i}].metric` must be one of {', '.join(allowed)} for a {task} "
                f"dataset, but got {o.metric!r}"
            )
    return data


def hardening(spec: Spec, run: RunStorage, *, resume: bool,
              address: str | None) -> contextlib.ExitStack:  # fmt: skip
    """What must hold before a search touches its run folder; entered by :func:`run_search`
    before anything else: one driver per run folder (``run.lock``; re-entrant, so ``fairsearch
    run`` may hold it around every stage), and on resume a readable study (a corrupt one is named
    with the ``fairsearch repair`` command). Spec, data and resources were checked by the caller
    (:func:`fairsearch.spec.validate.preflight`) before the run folder existed."""
    from fairsearch.io.lock import RunLock
    from fairsearch.search.repair import check_study

    guards = contextlib.ExitStack()
    guards.enter_context(RunLock(run.local))
    if resume:
        try:
            check_study(run.local)
        except BaseException:
            guards.close()
            raise
    return guards


def run_search(
    spec: Spec,
    *,
    storage: str | Path = "runs",
    address: str | None = None,
    quiet: bool = False,
    run_dir: Path | RunStorage | None = None,
    resume: bool = False,
    stop: threading.Event | None = None,
) -> Path:
    """Run (or, with ``resume``, finish) the search of ``spec``; returns the (local) run folder.

    ``storage`` is a path or a URI (see :mod:`fairsearch.io.storage`); for a URI the returned
    folder is the local staging copy, uploaded as the search goes and at its end. ``stop``
    (set by SIGINT/SIGTERM on the main thread, or by the caller) ends the search early:
    :class:`SearchInterrupted` is raised after the run folder is consistent and Ray is down.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if run_dir is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run = new_run(storage, f"{spec.name}-{stamp}")
        write_spec(spec, run.local / "spec.yaml")
    else:
        run = run_dir if isinstance(run_dir, RunStorage) else open_run(run_dir)
    try:
        guards = hardening(spec, run, resume=resume, address=address)
    except BaseException:
        discard_prestarted()
        raise
    with guards:
        stop = stop if stop is not None else threading.Event()
        received: list[int] = []
        try:
            _search(spec, run, resume=resume, address=address, quiet=quiet, stop=stop,
                    received=received)  # fmt: skip
        finally:
            discard_prestarted()  # lanes started early that this search did not take
        if stop.is_set():
            shutdown_ray()
            raise SearchInterrupted(received[0] if received else signal.SIGINT, run.local)
    return run.local


def search_inprocess(spec: Spec, *, storage: str | Path = "runs", quiet: bool = True,
                     stop: threading.Event | None = None) -> Path:  # fmt: skip
    """:func:`run_search` on the in-process executor (``search.executor: inprocess``): the same
    study, recorder and tables, no Ray."""
    import dataclasses

    here = dataclasses.replace(spec, search=dataclasses.replace(spec.search, executor="inprocess"))
    return run_search(here, storage=storage, quiet=quiet, stop=stop)


def _search(spec: Spec, run: RunStorage, *, resume: bool, address: str | None, quiet: bool,
            stop: threading.Event, received: list[int]) -> None:  # fmt: skip
    study = open_study(spec, run.local, resume=resume)
    progress = Progress(spec.search.trials, quiet=quiet)

    def show(rec: Recorder, final: bool = False) -> None:
        progress.update(rec.done(), len(rec.pending), rec.counts["failed"],
                        rec.counts["diverged"], rec.front_size, final=final,
                        pruned=rec.counts["pruned"])  # fmt: skip
        run.sync(force=final)

    recorder = Recorder(study, spec, run.local, on_change=show, background=True)
    if resume:
        recorder.recover()
    recorder.write_tables()
    if recorder.finished():
        show(recorder, final=True)
        return
    data = _load_data(spec)
    work = search_work(spec)
    try:
        if spec.search.executor == "inprocess":  # this process, one item at a time, no Ray
            from fairsearch.executor.inprocess import run_inprocess
            from fairsearch.executor.scaling import LaneScaling

            threads = LaneScaling.from_trial(spec.trial).threads
            with stop_on_signals(stop, received):
                run_inprocess(recorder, work, data, stop=stop, threads=threads)
            return
        from fairsearch.executor.lanes import run_lanes
        from fairsearch.executor.scaling import LaneScaling

        init_ray(address)
        with stop_on_signals(stop, received):
            stats = run_lanes(recorder, work, data, lanes=spec.search.max_concurrent,
                              scaling=LaneScaling.from_trial(spec.trial), storage=run.ray_storage,
                              stop=stop, name="tune", stall_timeout_s=spec.search.stall_timeout_s,
                              pool=take_prestarted())  # fmt: skip
        write_lane_stats(run.local / LANES_FILE, stats)
    finally:
        if stop.is_set():
            recorder.interrupt_pending()
        else:  # the lanes ended (all died, or Tune failed) with configurations untold
            for number in sorted(recorder.pending):
                recorder.fail(number, "the search's lanes ended before this configuration finished")
        recorder.close()
        show(recorder, final=True)


LANES_FILE = "lanes.json"

#: Lanes started while the command checked its spec and data (:func:`prestart_lanes`).
_PRESTARTED: list[object] = []


def search_work(spec: Spec) -> functools.partial:
    """What each lane runs for one search item: the spec's training settings bound in."""
    settings = {"model": spec.model, "model_args": dict(spec.model_args),
                "epochs": spec.trial.epochs, "batch_size": spec.trial.batch_size,
                "split_seed": spec.search.seed, **spec.criterion_setting()}  # fmt: skip
    rule = halving_rule(spec)
    if rule is not None:
        settings["halving"] = rule.as_dict()
    return functools.partial(train_configuration, settings=settings)


def prestart_lanes(spec: Spec) -> None:
    """Start the search's lanes now, on the Ray this process has joined, so that Tune places
    them and their processes import torch and the families while the command still checks
    the spec and data; the search takes them (:func:`take_prestarted`) and hands them the data.

    Only for a Ray on this machine (its lanes' files go to a scratch folder the pool removes;
    on a cluster they belong in the run folder, which does not exist yet) and the Ray executor.
    """
    import tempfile

    from fairsearch.executor.lanes import LanePool
    from fairsearch.executor.scaling import LaneScaling

    if spec.search.executor == "inprocess" or _PRESTARTED:
        return
    scratch = tempfile.mkdtemp(prefix="fairsearch-lanes-")
    _PRESTARTED.append(LanePool(search_work(spec), lanes=spec.search.max_concurrent,
                                scaling=LaneScaling.from_trial(spec.trial), storage=scratch,
                                name="tune", scratch=scratch))  # fmt: skip


def take_prestarted():  # noqa: ANN201 - a LanePool or None
    """The lanes :func:`prestart_lanes` started, once (None if there are none)."""
    return _PRESTARTED.pop() if _PRESTARTED else None


def discard_prestarted() -> None:
    """Close lanes started early that no search will use (the checks failed, nothing to do)."""
    while _PRESTARTED:
        _PRESTARTED.pop().close()  # type: ignore[attr-defined]
    # Only a command that started Ray can hold a spare dispatcher, and then the module is loaded:
    # an in-process search never imports it (nor Ray with it).
    dispatcher = sys.modules.get("fairsearch.executor.dispatcher")
    if dispatcher is not None:
        dispatcher.discard_dispatcher()


def write_lane_stats(path: Path, stats: object) -> None:
    """``lanes.json``: when the lanes started (epoch seconds), each lane's start-up marks (seconds
    after that: Tune placed it, Train's loop began, imports and data done, first pull), the first
    configuration's pull, the configurations told and the lanes' wall time."""
    import dataclasses
    import json

    from fairsearch.io.atomic import write_atomic

    keep = ("started_epoch", "first_pull_s", "wall_s", "told", "stopped", "start_marks", "warm")
    body = {k: v for k, v in dataclasses.asdict(stats).items() if k in keep}  # type: ignore[call-overload]
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(body, indent=1, default=str)))


# ----------------------------------------------------------------------------- CLI
def _interrupted(exc: SearchInterrupted, location: str) -> int:
    print(f"search {exc}: configurations in flight are recorded interrupted; "
          f"`fairsearch resume {location}` finishes it", file=sys.stderr)  # fmt: skip
    return exc.exit_code


def _ray_was_running() -> bool:
    import ray

    return ray.is_initialized()


def main_search(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    owned = not _ray_was_running()
    try:
        run_dir = run_search(spec, storage=args.storage, address=args.address, quiet=args.quiet)
    except SearchInterrupted as exc:
        return _interrupted(exc, open_run(exc.run_dir, storage=args.storage).location)
    finally:
        if owned:
            shutdown_ray()
    print(open_run(run_dir, storage=args.storage).location)
    return 0


def main_resume(args: argparse.Namespace) -> int:
    run = open_run(args.run_dir)  # a URI is copied to a local staging folder
    if not (run.local / "spec.yaml").is_file() or not study_file(run.local).is_file():
        raise ValueError(
            f"RUN_DIR must be a run folder with spec.yaml and {STUDY_FILE}, but got {args.run_dir!r}"
        )
    spec = load_spec(run.local / "spec.yaml")
    owned = not _ray_was_running()
    try:
        run_search(spec, address=args.address, quiet=args.quiet, run_dir=run, resume=True)
    except SearchInterrupted as exc:
        return _interrupted(exc, run.location)
    finally:
        if owned:
            shutdown_ray()
    print(run.location)
    return 0
