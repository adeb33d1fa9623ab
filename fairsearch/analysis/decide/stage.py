"""The decide stage: the recommendation, computed once and written to ``verdict.json``.

It reads the run's tables (``trials.parquet``, ``pareto.json``, ``retrain.parquet``,
``retrain_summary.parquet``, ``retrain/reference.json``, ``audit.parquet``): the choice is made
on the validation split with every seed of each retrained candidate
(:func:`fairsearch.analysis.decide.compute.decide_on_validation`), then the test split and the audit
verify it (:func:`fairsearch.analysis.decide.verify.verify`). The report, the terminal and
``fairsearch run`` read ``verdict.json``; ``fairsearch decide RUN`` re-runs this stage alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from fairsearch.analysis.decide.compute import compute_verdict
from fairsearch.analysis.decide.text import render_text
from fairsearch.analysis.decide.verdict import Verdict, verdict_to_json
from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.lineage import LINEAGE_FILE, lineage_with
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.runfolder.reader import VERDICT_FILE, load_run

__all__ = ["run_decide"]


def run_decide(run_dir: str | Path) -> Verdict:
    """Decide on ``run_dir`` and write ``verdict.json``; returns the verdict. Holds the run
    folder's lock; ``verdict.json`` and the lineage are staged and swapped in together."""
    run = Path(run_dir)
    note = f"the previous verdict.json is unchanged; `fairsearch decide {run}` runs it again"
    with signals.interruptible(note), stage_lock(run):
        for name in ("spec.yaml", "trials.parquet", "pareto.json", "retrain.parquet"):
            if not (run / name).is_file():
                raise ValueError(f"RUN_DIR {str(run)!r} has no {name}; run the stages before "
                                 f"decide first (`fairsearch run {run} --from retrain`)")
        verdict = compute_verdict(load_run(run))
        text = json.dumps(verdict_to_json(verdict), indent=2)
        staged = run / "decide.partial"
        shutil.rmtree(staged, ignore_errors=True)
        write_atomic(staged / VERDICT_FILE, lambda p: p.write_text(text + "\n"))
        lineage = lineage_with(run, "decide")
        write_atomic(staged / LINEAGE_FILE, lambda p: p.write_text(lineage))
        signals.check(note)
        commit(run, "decide", [(f"{staged.name}/{VERDICT_FILE}", VERDICT_FILE),
                               (f"{staged.name}/{LINEAGE_FILE}", LINEAGE_FILE)],
               remove=[staged.name])  # fmt: skip
    return verdict


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder with retrain.parquet")


def main(args: argparse.Namespace) -> int:
    print(render_text(run_decide(args.run_dir)))
    print(f"wrote {Path(args.run_dir) / VERDICT_FILE}")
    return 0
