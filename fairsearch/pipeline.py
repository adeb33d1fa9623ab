"""``fairsearch run``: search -> pareto -> retrain -> audit -> report, one run folder.

Each stage reads only the files of the stages before it, so ``fairsearch run RUN_DIR --from
STAGE`` (or the stage's own command) re-runs a stage and everything after it, and ``fairsearch run
RUN_DIR`` finishes an interrupted search in the folder (no trial lost or repeated), then the rest. Ray is started once
(locally with this machine's CPUs, or joining ``--address`` / ``RAY_ADDRESS``) and shared by the
search and the retrain stage. Stage timings go to ``stages.json`` in the run folder; each stage
records the fingerprints of the files it read in ``lineage.json``, so outputs of later stages
that no longer follow from a re-run stage are known stale (the report flags them). The verdict
(what to deploy, where, how sure) is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fairsearch.io.atomic import write_atomic
from fairsearch.io.storage import is_uri, open_run

STAGES = ("search", "pareto", "retrain", "audit", "report")

__all__ = ["STAGES", "run_pipeline"]


def _stage_functions(address: str | None, quiet: bool) -> dict[str, Callable[[Path], object]]:
    from fairsearch.analysis.audit import run_stage as audit_stage
    from fairsearch.analysis.pareto import run_pareto
    from fairsearch.analysis.retrain import run_retrain
    from fairsearch.report.writer import write_report

    return {
        "pareto": run_pareto,
        "retrain": lambda run: run_retrain(run, address=address, quiet=quiet),
        "audit": audit_stage,
        "report": write_report,
    }


def run_pipeline(target: str | Path, *, start: str = "search", storage: str = "runs",
                 address: str | None = None, quiet: bool = False) -> Path:  # fmt: skip
    """Run the stages from ``start`` on; ``target`` is a spec or a run folder.

    With a run folder and ``start="search"`` the folder's search is resumed, then continued.
    Each stage prints one ``[stage] done in Ns`` line; the timings are merged into ``stages.json``.
    """
    from fairsearch.search.engine import init_ray, run_search
    from fairsearch.spec.schema import load_spec

    if start not in STAGES:
        raise ValueError(f"--from must be one of {', '.join(STAGES)}, but got {start!r}")
    if not is_uri(target) and not Path(target).exists():
        raise ValueError(f"SPEC|RUN_DIR must be a spec file or a run folder, but {str(target)!r} "
                         "does not exist")  # fmt: skip
    is_spec = not is_uri(target) and Path(target).is_file()
    if start != "search" and is_spec:
        raise ValueError(f"--from {start} continues a run folder, but got the spec {str(target)!r}")
    t = time.perf_counter()
    if is_spec:
        spec = load_spec(target)
        init_ray(address)  # once, for the search and the retrain stage
        run = Path(run_search(spec, storage=storage, address=address, quiet=quiet))
    else:
        opened = open_run(target)  # a URI is staged locally first
        run = opened.local
        if not (run / "spec.yaml").is_file():
            raise ValueError(
                f"RUN_DIR must be a run folder with spec.yaml, but got {str(target)!r}"
            )
        if start == "search":
            init_ray(address)
            run_search(load_spec(run / "spec.yaml"), address=address, quiet=quiet, run_dir=opened,
                       resume=True)  # fmt: skip
    storage_of_run = open_run(run)  # uploads a staged folder to its URI; no-op for a path
    if start == "search":
        _record(run, "search", time.perf_counter() - t)
        storage_of_run.sync()
    stages = _stage_functions(address, quiet)
    for name in STAGES[max(1, STAGES.index(start)) :]:
        t = time.perf_counter()
        stages[name](run)
        _record(run, name, time.perf_counter() - t)
        storage_of_run.sync()
    return run


def _record(run: Path, stage: str, seconds: float) -> None:
    """Print the stage's time and merge it into ``stages.json`` (kept when a later stage fails)."""
    print(f"[{stage}] done in {seconds:.1f}s", file=sys.stderr)
    path = run / "stages.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    text = json.dumps({**timings, stage: round(seconds, 2)}, indent=2)
    write_atomic(path, lambda p: p.write_text(text + "\n"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SPEC|RUN_DIR",
                        help="a run spec; or a run folder: resume its search (or, with --from, "
                             "re-run that stage and the ones after it)")  # fmt: skip
    parser.add_argument("--from", dest="start", default="search", choices=STAGES,
                        help="first stage to run (default: search)")  # fmt: skip
    parser.add_argument("--storage", default="runs",
                        help="parent of run folders: a path (shared by all nodes on a cluster) "
                             "or a URI such as s3://bucket/prefix")  # fmt: skip
    parser.add_argument("--address", default=None, help="Ray cluster to join")
    parser.add_argument("--quiet", action="store_true", help="no live progress")


def main(args: argparse.Namespace) -> int:
    from fairsearch.report.verdict import verdict_text

    run = run_pipeline(args.target, start=args.start, storage=args.storage, address=args.address,
                       quiet=args.quiet)  # fmt: skip
    print(verdict_text(run))
    print(f"{open_run(run).location.rstrip('/')}/report/report.html")
    return 0
