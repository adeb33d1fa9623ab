"""``fairsearch run``: search -> pareto -> retrain -> audit -> report, one run folder.

Each stage reads only the files of the stages before it, so ``fairsearch run RUN_DIR --from
STAGE`` (or the stage's own command) re-runs a stage and everything after it. Ray is started once
(locally with this machine's CPUs, or joining ``--address`` / ``RAY_ADDRESS``) and shared by the
search and the retrain stage. Stage timings go to ``stages.json`` in the run folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fairsearch._io import write_atomic
from fairsearch.storage import open_run

STAGES = ("search", "pareto", "retrain", "audit", "report")

__all__ = ["STAGES", "run_pipeline"]


def _stage_functions(address: str | None, quiet: bool) -> dict[str, Callable[[Path], object]]:
    from fairsearch.audit import run_stage as audit_stage
    from fairsearch.pareto import run_pareto
    from fairsearch.report import write_report
    from fairsearch.retrain import run_retrain

    return {
        "pareto": run_pareto,
        "retrain": lambda run: run_retrain(run, address=address, quiet=quiet),
        "audit": audit_stage,
        "report": write_report,
    }


def run_pipeline(target: str | Path, *, start: str = "search", storage: str = "runs",
                 address: str | None = None, quiet: bool = False) -> Path:  # fmt: skip
    """Run the stages from ``start`` on; ``target`` is a spec (for ``search``) or a run folder."""
    if start not in STAGES:
        raise ValueError(f"--from must be one of {', '.join(STAGES)}, but got {start!r}")
    timings: dict[str, float] = {}

    def log(stage: str, seconds: float) -> None:
        timings[stage] = round(seconds, 2)
        print(f"[{stage}] done in {seconds:.1f}s", file=sys.stderr)

    if start == "search":
        from fairsearch.search import run_search
        from fairsearch.spec import load_spec

        t = time.perf_counter()
        spec = load_spec(target)
        run = Path(run_search(spec, storage=storage, address=address, quiet=quiet))
        log("search", time.perf_counter() - t)
    else:
        run = open_run(target).local  # a URI is staged locally first
        if not (run / "spec.yaml").is_file():
            raise ValueError(f"RUN_DIR must be a run folder with spec.yaml, but got {str(target)!r}")
    storage_of_run = open_run(run)  # uploads a staged folder to its URI; no-op for a path
    stages = _stage_functions(address, quiet)
    for name in STAGES[max(1, STAGES.index(start)) :]:
        t = time.perf_counter()
        stages[name](run)
        log(name, time.perf_counter() - t)
        storage_of_run.sync()
    previous = json.loads((run / "stages.json").read_text()) if (run / "stages.json").is_file() else {}
    text = json.dumps({**previous, **timings}, indent=2)
    write_atomic(run / "stages.json", lambda p: p.write_text(text + "\n"))
    storage_of_run.sync()
    return run


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SPEC|RUN_DIR",
                        help="a run spec, or with --from a run folder to continue")  # fmt: skip
    parser.add_argument("--from", dest="start", default="search", choices=STAGES,
                        help="first stage to run (default: search, which needs a SPEC)")  # fmt: skip
    parser.add_argument("--storage", default="runs",
                        help="parent of run folders: a path (shared by all nodes on a cluster) "
                             "or a URI such as s3://bucket/prefix")  # fmt: skip
    parser.add_argument("--address", default=None, help="Ray cluster to join")
    parser.add_argument("--quiet", action="store_true", help="no live progress")


def main(args: argparse.Namespace) -> int:
    run = run_pipeline(args.target, start=args.start, storage=args.storage, address=args.address,
                       quiet=args.quiet)  # fmt: skip
    print(f"{open_run(run).location.rstrip('/')}/report/report.html")
    return 0
