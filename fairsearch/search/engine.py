"""The search stage: Optuna samples on demand, Ray Tune runs lanes, Ray Train trains.

Design (docs/cluster.md for the Ray side, docs/schemas.md for the tables):

* The driver owns the Optuna study (the journal ``study.journal``, ask/tell through
  :class:`~fairsearch.search.recorder.Recorder`).
* ``search.max_concurrent`` lanes (:mod:`fairsearch.search.lanes`): each is one Ray Tune
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
import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fairsearch.executor.local import CLUSTERS_OFF, RAY_ENV, prepare_environment, private_auth_token
from fairsearch.io.storage import RunStorage, new_run, open_run
from fairsearch.search.progress import Progress
from fairsearch.search.recorder import STUDY_FILE, Recorder, open_study, study_file, write_spec
from fairsearch.search.trial import train_configuration
from fairsearch.spec.schema import Spec, load_spec, metrics_for

__all__ = ["SearchInterrupted", "configure_resume", "configure_search", "init_ray",
           "main_resume", "main_search", "run_search"]  # fmt: skip

_LOG = logging.getLogger("fairsearch")


class SearchInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the search; its run folder is consistent and resumable."""

    def __init__(self, signum: int, run_dir: Path) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum, self.run_dir = signum, run_dir

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_STARTED_LOCAL_RAY = False


def init_ray(address: str | None = None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``), else the local Ray ``fairsearch up`` started
    (:mod:`fairsearch.executor.local`), else start a quiet local Ray with all CPUs.

    A local Ray listens on 127.0.0.1 only and its auth token file is private (0600): see
    :func:`_start_local_ray`.
    """
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS")
    # the head `fairsearch up` started; Ray reads the auth mode this sets when first imported
    # (the CLI calls prepare_environment before anything imports Ray)
    local = prepare_environment() if not address else None
    import ray

    if ray.is_initialized():
        return
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                  configure_logging=True)  # fmt: skip
    if local is not None:  # the head `fairsearch up` started: its nodes are on 127.0.0.1
        from ray._private import ray_constants

        private_auth_token()
        # The head's workers have RAY_ENV and the PYTHONPATH of `fairsearch up`; a runtime_env
        # only where this command's PYTHONPATH differs (it would keep Ray's idle workers unused)
        runtime = {}
        if os.environ.get("PYTHONPATH", "") != local.get("pythonpath", ""):
            runtime = {"runtime_env": {"env_vars": {
                k: os.environ[k] for k in (*RAY_ENV, "PYTHONPATH") if k in os.environ}}}
        previous = ray_constants.ENABLE_RAY_CLUSTER
        ray_constants.ENABLE_RAY_CLUSTER = CLUSTERS_OFF["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] != "0"
        try:
            ray.init(address=local.address, **runtime, **common)
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = previous
    elif address:
        env_vars = {k: os.environ[k] for k in RAY_ENV}  # the cluster's processes lack ours
        ray.init(address=address, runtime_env={"env_vars": env_vars}, **common)
    else:
        # no runtime_env: the local processes inherit os.environ, and a runtime_env would
        # keep the workers Ray starts up front from being used (about 1 s per first task)
        _start_local_ray(ray, **common)
    for name in ("ray", "ray.tune", "ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _start_local_ray(ray: Any, **init_args: Any) -> None:
    """Start a one-machine Ray that nobody else on the network can reach.

    * Ray resolves ``127.0.0.1`` given to ``ray.init`` to the machine's address, and its
      servers listen on every interface unless their node address is the loopback one. Ray
      uses the loopback address where clusters are off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``,
      read once into ``ray_constants.ENABLE_RAY_CLUSTER``): it is turned off while this Ray
      starts, so GCS, raylet, agents and workers bind 127.0.0.1.
    * Ray writes a missing ``~/.ray/auth_token`` world-readable: one is created 0600 first
      (a loose existing one is made 0600).
    """
    from ray._private import ray_constants

    global _STARTED_LOCAL_RAY
    private_auth_token()
    previous = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", num_cpus=os.cpu_count(), **init_args)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous
    _STARTED_LOCAL_RAY = True


def shutdown_ray() -> None:
    """Stop Ray (the local one this process started, or this driver's connection)."""
    import ray

    global _STARTED_LOCAL_RAY
    if ray.is_initialized():
        ray.shutdown()
    _STARTED_LOCAL_RAY = False


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, received: list[int]) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (a second one raises KeyboardInterrupt) and are appended to
    ``received``. Only on the main thread (elsewhere Python cannot install handlers). Enter it
    after ``ray.init``: Ray's core worker installs its own SIGTERM handler (a stack dump)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():  # None: a handler installed from C (Ray's)
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def _load_data(spec: Spec):  # noqa: ANN202 - a Dataset
    from fairsearch.data import load_from_spec

    data = load_from_spec(spec.data)
    task = getattr(data, "task", None)
    allowed = metrics_for(spec.model, task)
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
    with hardening(spec, run, resume=resume, address=address):
        stop = stop if stop is not None else threading.Event()
        received: list[int] = []
        _search(spec, run, resume=resume, address=address, quiet=quiet, stop=stop,
                received=received)  # fmt: skip
        if stop.is_set():
            shutdown_ray()
            raise SearchInterrupted(received[0] if received else signal.SIGINT, run.local)
    return run.local


def _search(spec: Spec, run: RunStorage, *, resume: bool, address: str | None, quiet: bool,
            stop: threading.Event, received: list[int]) -> None:  # fmt: skip
    from fairsearch.search.lanes import LaneScaling, run_lanes

    study = open_study(spec, run.local, resume=resume)
    progress = Progress(spec.search.trials, quiet=quiet)

    def show(rec: Recorder, final: bool = False) -> None:
        progress.update(rec.done(), len(rec.pending), rec.counts["failed"],
                        rec.counts["diverged"], rec.front_size, final=final)  # fmt: skip
        run.sync(force=final)

    recorder = Recorder(study, spec, run.local, on_change=show, background=True)
    if resume:
        recorder.recover()
    recorder.write_tables()
    if recorder.finished():
        show(recorder, final=True)
        return
    data = _load_data(spec)
    init_ray(address)
    settings = {"model": spec.model, "model_args": dict(spec.model_args),
                "epochs": spec.trial.epochs, "batch_size": spec.trial.batch_size,
                "split_seed": spec.search.seed}  # fmt: skip
    try:
        with stop_on_signals(stop, received):
            run_lanes(recorder, functools.partial(train_configuration, settings=settings), data,
                      lanes=spec.search.max_concurrent,
                      scaling=LaneScaling.from_trial(spec.trial), storage=run.ray_storage,
                      stop=stop, name="tune",
                      stall_timeout_s=spec.search.stall_timeout_s)  # fmt: skip
    finally:
        if stop.is_set():
            recorder.interrupt_pending()
        else:  # the lanes ended (all died, or Tune failed) with configurations untold
            for number in sorted(recorder.pending):
                recorder.fail(number, "the search's lanes ended before this configuration finished")
        recorder.close()
        show(recorder, final=True)


# ----------------------------------------------------------------------------- CLI
def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no live progress line")  # fmt: skip


def configure_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="run spec (YAML)")
    parser.add_argument("--storage", default="runs",
                        help="parent of run folders: a path (shared by all nodes on a cluster) "
                             "or a URI such as s3://bucket/prefix")  # fmt: skip
    _common(parser)


def configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder of an interrupted search")
    _common(parser)


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


if __name__ == "__main__":  # pragma: no cover
    from fairsearch.cli import main

    sys.exit(main(["search", *sys.argv[1:]]))
