"""``fairsearch run``: search -> pareto -> retrain -> audit -> decide -> report, one run folder.

Each stage reads only the files of the stages before it, so ``fairsearch run RUN_DIR --from
STAGE`` (or the stage's own command) re-runs a stage and everything after it, and ``fairsearch run
RUN_DIR`` finishes an interrupted search in the folder (no trial lost or repeated), then the rest. Ray is started once
(locally with this machine's CPUs, or joining ``--address`` / ``RAY_ADDRESS``) and shared by the
search, the retrain stage and the audit (its units run as Ray tasks). Stage timings go to ``stages.json`` in the run folder.

Before anything runs (and before a run folder is created) the spec, its data, one model and the
resources are checked (:func:`fairsearch.spec.validate.preflight`, and on a joined cluster
:func:`fairsearch.search.cluster.check_joined_cluster`); a run folder's study is checked with
:func:`fairsearch.search.repair.check_study`. The whole run holds the folder's
:class:`~fairsearch.io.lock.RunLock`. ``fairsearch search`` and ``fairsearch resume`` come through
here too, for the same checks, then hand over to :mod:`fairsearch.search.engine`. Each stage
records the fingerprints of the files it read in ``lineage.json``, so outputs of later stages
that no longer follow from a re-run stage are known stale (the report flags them). The verdict
(what to deploy, where, how sure) is printed at the end.

Resuming checks that the folder's ``spec.yaml`` agrees with its study (:func:`check_agreement`).
SIGINT/SIGTERM in any stage ends the run with 130/143 and one line saying what is kept and the
command that continues (:mod:`fairsearch.io.signals`); each later stage is transactional, so an
interrupted stage keeps its previous outputs (:mod:`fairsearch.io.transaction`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fairsearch.io import signals
from fairsearch.io.atomic import match_umask, write_atomic
from fairsearch.io.lock import RunLock
from fairsearch.io.storage import (
    RunStorage,
    check_not_in_job_copy,
    check_storage_path,
    is_uri,
    new_run,
    open_run,
)

STAGES = ("search", "pareto", "retrain", "audit", "decide", "report")

__all__ = ["STAGES", "check_agreement", "run_pipeline"]


def _stage_functions(address: str | None, quiet: bool) -> dict[str, Callable[[Path], object]]:
    from fairsearch.analysis.audit.stage import run_stage as audit_stage
    from fairsearch.analysis.decide.stage import run_decide
    from fairsearch.analysis.pareto.stage import run_pareto
    from fairsearch.analysis.retrain.stage import run_retrain
    from fairsearch.report.writer import write_report

    return {
        "pareto": run_pareto,
        "retrain": lambda run: run_retrain(run, address=address, quiet=quiet),
        "audit": lambda run: audit_stage(run, quiet=quiet, executor=_audit_executor(run, address)),
        "decide": run_decide,
        "report": write_report,
    }


def _audit_executor(run: Path, address: str | None) -> Any:
    """Where the audit's units run: in this process for ``search.executor: inprocess``, else as
    tasks on the run's Ray (the one the search started or joined)."""
    from fairsearch.analysis.audit.on_ray import RayExecutor
    from fairsearch.spec.schema import load_run_spec

    return None if load_run_spec(run).search.executor == "inprocess" else RayExecutor(address=address)


def _before_search(spec: object, address: str | None) -> Any:
    """Check data, model and resources while Ray starts (or is joined), then check the cluster.
    ``spec``: a spec, or a function that loads it (called once Ray is starting: loading a spec
    imports torch and the families, a second or so). Returns the spec."""
    from concurrent.futures import Future

    from threadpoolctl import threadpool_limits

    from fairsearch.executor.ray_start import RayStart

    # Ray once, for the search and the retrain stage, started while we check; on a Ray of this
    # machine the search's lanes start too (their processes import while the data is checked)
    loaded: Future[Any] = Future()
    refused = threading.Event()  # the checks failed: Ray comes up only to be shut down
    joined = bool(address or os.environ.get("RAY_ADDRESS"))
    early = None if joined else functools.partial(_prestart, loaded, refused)
    starting = RayStart(address, then=early)
    try:
        # Ray's start forks this process while the checks run. OpenBLAS shuts its thread pool
        # down before each fork, so a threaded BLAS call in flight then waits forever (a hang
        # in `np.dot` seen at random under load): the checks use one BLAS thread until Ray is up.
        with threadpool_limits(limits=1, user_api="blas"):
            spec = spec() if callable(spec) else spec
            loaded.set_result(spec)
            from fairsearch.spec.validate import preflight

            preflight(spec, address=address)  # type: ignore[arg-type]
            starting.wait()
    except BaseException as exc:  # bad input, a signal, or Ray failed to start
        refused.set()
        if not loaded.done():
            loaded.set_exception(exc)
        from fairsearch.search.engine import discard_prestarted

        starting.abandon(before_shutdown=discard_prestarted)
        raise
    signals.install()  # ray.init put its own SIGTERM handler (a stack dump) in place
    if address or os.environ.get("RAY_ADDRESS"):
        from fairsearch.search.cluster import check_joined_cluster

        check_joined_cluster(spec)  # type: ignore[arg-type]
    return spec


def _prestart(loaded: Any, refused: threading.Event) -> None:
    """In the Ray start-up thread: the lanes' dispatcher at once, the search's lanes once the
    spec is loaded; neither once the checks have failed (closing lanes that started for nothing
    took a refused run 25 s)."""
    if refused.is_set():
        return
    from fairsearch.executor.dispatcher import prepare_dispatcher

    prepare_dispatcher()
    from fairsearch.search.engine import prestart_lanes

    spec = loaded.result()
    if not refused.is_set():
        prestart_lanes(spec)


def check_agreement(spec: Any, run_dir: str | Path) -> None:
    """``ValueError`` naming each difference between ``spec.yaml`` and the study it resumes:
    objectives (their number, directions and which metric each value is), and parameters (each
    one the study's trials drew must be in the spec's space, drawn the same way; an
    unconditional one of the space must be in the trials). Resuming a study under another spec
    would tell the sampler values it cannot compare."""
    from fairsearch.search.study import load_run_study, study_file
    from fairsearch.search.tables import RECORD
    from fairsearch.spec.space import distribution

    run = Path(run_dir)
    study = load_run_study(run, spec.name)
    problems: list[str] = []
    want = [o.direction for o in spec.objectives]
    have = [d.name.lower() for d in study.directions]
    if want != have:
        problems.append(f"objective directions: spec.yaml has {want}, the study {have}")
    finished = [t for t in study.trials if t.state.is_finished()]
    for t in finished:
        if t.values is None:
            continue
        if len(t.values) != len(spec.objectives):
            problems.append(f"trial {t.number} has {len(t.values)} objective values, spec.yaml "
                            f"names {len(spec.objectives)} objectives "
                            f"({', '.join(o.metric for o in spec.objectives)})")  # fmt: skip
            break
        metrics = (t.user_attrs.get(RECORD) or {}).get("metrics") or {}
        moved = [o.metric for o, v in zip(spec.objectives, t.values, strict=True)
                 if o.metric in metrics and not math.isclose(float(metrics[o.metric]), v,
                                                             rel_tol=1e-9, abs_tol=1e-12)]  # fmt: skip
        if moved:
            problems.append(f"objectives {moved} of spec.yaml are not the values trial "
                            f"{t.number} was told (another objective order or metric)")  # fmt: skip
            break
    space = {p.name: p for p in spec.space}
    drawn: dict[str, Any] = {}
    for t in finished:
        drawn.update(t.distributions)
    for name, dist in sorted(drawn.items()):
        if name not in space:
            problems.append(f"parameter {name!r} is in the study but not in spec.yaml's space")
        elif distribution(space[name]) != dist:
            problems.append(f"parameter {name!r}: spec.yaml draws it from "
                            f"{distribution(space[name])}, the study drew it from {dist}")  # fmt: skip
    if drawn:
        absent = [p.name for p in spec.space if not p.when and p.name not in drawn]
        if absent:
            problems.append(f"parameters {absent} of spec.yaml's space are in no trial of the study")
    if problems:
        raise ValueError(
            f"{run / 'spec.yaml'} does not agree with the study it resumes "
            f"({study_file(run).name}): " + "; ".join(problems) + ". Restore the spec the run "
            "was started with, or start a new run with this spec"
        )


def _new_run_folder(spec: object, storage: str) -> RunStorage:
    from fairsearch.spec.schema import dump_spec

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run = new_run(storage, f"{spec.name}-{stamp}")  # type: ignore[attr-defined]
    text = dump_spec(spec)  # type: ignore[arg-type]
    write_atomic(run.local / "spec.yaml", lambda p: p.write_text(text))
    return run


def _load_checked(path: str | Path, storage: str) -> Any:
    """The spec at ``path``, and ``storage`` checked (a path must be a writable folder)."""
    from fairsearch.spec.schema import load_spec

    spec = load_spec(path)
    if not is_uri(storage):
        check_storage_path(storage)
    return spec


def _open_run_folder(target: str | Path, storage: str | None) -> RunStorage:
    run = open_run(target, storage=storage)  # a URI is staged locally first
    if not (run.local / "spec.yaml").is_file():
        raise ValueError(f"RUN_DIR must be a run folder with spec.yaml, but got {str(target)!r}")
    return run


def run_pipeline(target: str | Path, *, start: str = "search", storage: str = "runs",
                 address: str | None = None, quiet: bool = False) -> Path:  # fmt: skip
    """Run the stages from ``start`` on; ``target`` is a spec or a run folder.

    With a run folder and ``start="search"`` the folder's search is resumed, then continued.
    Each stage prints one ``[stage] done in Ns`` line; the timings are merged into ``stages.json``.
    Returns the local run folder (:func:`pipeline` also gives where it is kept).
    """
    return pipeline(target, start=start, storage=storage, address=address, quiet=quiet).local


def pipeline(target: str | Path, *, start: str = "search", storage: str = "runs",
             address: str | None = None, quiet: bool = False) -> RunStorage:  # fmt: skip
    """:func:`run_pipeline`, returning the run folder's :class:`RunStorage`."""
    if start not in STAGES:
        raise ValueError(f"--from must be one of {', '.join(STAGES)}, but got {start!r}")
    if not is_uri(target) and not Path(target).exists():
        raise ValueError(f"SPEC|RUN_DIR must be a spec file or a run folder, but {str(target)!r} "
                         "does not exist")  # fmt: skip
    is_spec = not is_uri(target) and Path(target).is_file()
    if start != "search" and is_spec:
        raise ValueError(f"--from {start} continues a run folder, but got the spec {str(target)!r}")
    t = time.perf_counter()
    if is_spec:  # every check before the run folder exists, while Ray starts
        check_not_in_job_copy(storage)  # inside a Ray job: not the copy Ray deletes with it
        spec = _before_search(functools.partial(_load_checked, target, storage), address)
        run = _new_run_folder(spec, storage)
    else:
        run = _open_run_folder(target, storage)
    # imported once Ray is starting: these import torch and Optuna
    from fairsearch.search.engine import SearchInterrupted, run_search
    from fairsearch.search.repair import check_study
    from fairsearch.search.study import study_file
    from fairsearch.spec.schema import load_spec

    with RunLock(run.local):
        if start == "search":
            if not is_spec:
                spec = load_spec(run.local / "spec.yaml")
                check_study(run.local)
                check_agreement(spec, run.local)
                _before_search(spec, address)
            try:
                run_search(spec, address=address, quiet=quiet, run_dir=run, resume=not is_spec)
            except SearchInterrupted as exc:
                run.sync()
                raise signals.Interrupted(exc.signum, (
                    f"the search's finished configurations are kept (those in flight are "
                    f"recorded interrupted); `fairsearch run {run.location}` resumes the search "
                    f"and runs the later stages")) from None  # fmt: skip
            match_umask(study_file(run.local))  # SQLite (older run folders) ignores the umask
            _record(run.local, "search", time.perf_counter() - t)
            run.sync()
        stages = _stage_functions(address, quiet)
        for name in STAGES[max(1, STAGES.index(start)) :]:
            t = time.perf_counter()
            note = (f"the stages before {name} are complete and kept, {name} keeps its previous "
                    f"outputs; `fairsearch run {run.location} --from {name}` continues")  # fmt: skip
            with signals.interruptible(note):
                signals.check(note)
                stages[name](run.local)
            _record(run.local, name, time.perf_counter() - t)
            run.sync()
    return run


def _record(run: Path, stage: str, seconds: float) -> None:
    """Print the stage's time and merge it into ``stages.json`` (kept when a later stage fails)."""
    print(f"[{stage}] done in {seconds:.1f}s", file=sys.stderr)
    path = run / "stages.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    text = json.dumps({**timings, stage: round(seconds, 2)}, indent=2)
    write_atomic(path, lambda p: p.write_text(text + "\n"))


def _storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default="runs",
                        help="parent of run folders: a path (shared by all nodes on a cluster) "
                             "or a URI such as s3://bucket/prefix; a staged run folder uploads "
                             "to its URI only when it lies under this URI")  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SPEC|RUN_DIR",
                        help="a run spec; or a run folder: resume its search (or, with --from, "
                             "re-run that stage and the ones after it)")  # fmt: skip
    parser.add_argument("--from", dest="start", default="search", choices=STAGES,
                        help="first stage to run (default: search)")  # fmt: skip
    _storage_option(parser)
    parser.add_argument("--address", default=None, help="Ray cluster to join")
    parser.add_argument("--quiet", action="store_true", help="no live progress")


def main(args: argparse.Namespace) -> int:
    from fairsearch.analysis.decide.text import verdict_text

    run = pipeline(args.target, start=args.start, storage=args.storage, address=args.address,
                   quiet=args.quiet)  # fmt: skip
    print(verdict_text(run.local))
    print(f"{run.location.rstrip('/')}/report/report.html")
    return 0


# ----------------------------------------------------------------------------- search, resume
def configure_search(parser: argparse.ArgumentParser) -> None:
    from fairsearch.search import options

    options.configure_search(parser)


def main_search(args: argparse.Namespace) -> int:
    """``fairsearch search SPEC``: the checks of ``run``, then the engine's search."""
    check_not_in_job_copy(args.storage)
    _before_search(functools.partial(_load_checked, args.spec, args.storage),
                   getattr(args, "address", None))  # fmt: skip
    from fairsearch.search import engine

    return engine.main_search(args)


def configure_resume(parser: argparse.ArgumentParser) -> None:
    from fairsearch.search import options

    options.configure_resume(parser)


def main_resume(args: argparse.Namespace) -> int:
    """``fairsearch resume RUN_DIR``: the study and the spec's checks, then the engine's resume."""
    from fairsearch.search import engine
    from fairsearch.search.repair import check_study
    from fairsearch.spec.schema import load_spec

    if not is_uri(args.run_dir):
        run = _open_run_folder(args.run_dir, None)
        check_study(run.local)
        with RunLock(run.local):
            spec = load_spec(run.local / "spec.yaml")
            check_agreement(spec, run.local)
            _before_search(spec, getattr(args, "address", None))
            return engine.main_resume(args)
    return engine.main_resume(args)
