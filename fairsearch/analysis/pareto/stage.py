"""The Pareto stage: reads ``trials.parquet`` and the run's spec, writes ``pareto.parquet`` and
``pareto.json`` (:func:`run_pareto`, ``fairsearch pareto RUN_DIR``).

The analysis itself is :func:`fairsearch.analysis.pareto.analysis.pareto_analysis`; the rule comes
from the validated spec (``post.select``), or from ``--select``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fairsearch.analysis.pareto.analysis import ParetoResult, pareto_analysis
from fairsearch.analysis.pareto.rule import (
    SelectionRule,
    metric_column,
    parse_select,
    rule_mapping,
)
from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.files import read_parquet
from fairsearch.io.lineage import LINEAGE_FILE, lineage_with, stale_stages
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.runfolder.tables import write_table
from fairsearch.spec.schema import load_spec

__all__ = ["run_pareto"]


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {o!r}")


def run_pareto(run_dir: str | Path, reference_point: Sequence[float] | None = None,
               rule: SelectionRule | None = None) -> ParetoResult:
    """Read ``trials.parquet`` + ``spec.yaml``; write ``pareto.parquet`` and ``pareto.json``.

    ``rule`` overrides the spec's ``post.select``; pareto.json records the rule used and where it
    came from (``rule_source``), and the stage's inputs go to ``lineage.json``.
    """
    run = Path(run_dir)
    with stage_lock(run):
        return _run_pareto(run, reference_point, rule)


def _run_pareto(run: Path, reference_point: Sequence[float] | None,
                rule: SelectionRule | None) -> ParetoResult:  # fmt: skip
    """:func:`run_pareto` under the run folder's lock: the validated spec's objectives and rule
    (``post.select`` was checked when the spec was), the analysis, then :func:`_write`."""
    for name in ("trials.parquet", "spec.yaml"):
        if not (run / name).is_file():
            raise ValueError(f"RUN_DIR {str(run)!r} has no {name}; run the search stage first")
    spec = load_spec(run / "spec.yaml")
    objectives = [(o.metric, o.direction) for o in spec.objectives]
    source = "spec.yaml post.select" if rule is None else "command line (--select)"
    rule = rule or SelectionRule.from_post(spec.post)
    trials = read_parquet(run / "trials.parquet")
    for c in rule.subject_to:  # an unknown metric fails before anything is written
        metric_column(trials, c.metric)
    result = pareto_analysis(trials, objectives, rule, reference_point)
    if not result.table["on_front"].any():
        print(f"[pareto] {result.notes[0]}", file=sys.stderr)
    _write(run, result, {"select": rule_mapping(rule), "rule_source": source})
    return result


def _write(run: Path, result: ParetoResult, rule: dict[str, Any]) -> None:
    """Both files and the lineage are written to ``pareto.partial/`` and swapped in together
    (an interrupted run changes nothing)."""
    staged = run / "pareto.partial"
    shutil.rmtree(staged, ignore_errors=True)
    write_table(result.table, staged / "pareto.parquet")
    summary = {**result.summary(), **rule}
    text = json.dumps(summary, indent=2, default=_json_default)
    write_atomic(staged / "pareto.json", lambda p: p.write_text(text + "\n"))
    lineage = lineage_with(run, "pareto")
    write_atomic(staged / LINEAGE_FILE, lambda p: p.write_text(lineage))
    signals.check(f"the previous pareto outputs are unchanged; `fairsearch pareto {run}` "
                  f"runs it again")  # fmt: skip
    commit(run, "pareto", [(f"{staged.name}/{name}", name)
                           for name in ("pareto.parquet", "pareto.json", LINEAGE_FILE)],
           remove=[staged.name])  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder holding trials.parquet")
    parser.add_argument("--reference-point", type=float, nargs="+", default=None, metavar="V",
                        help="hypervolume reference point, one value per objective "
                             "(default: worst observed + 10%% of the range)")
    parser.add_argument("--select", default=None, metavar="RULE",
                        help="selection rule overriding the spec's post.select, e.g. "
                             "\"maximize control_f1; adversary_bacc <= 0.55\" or \"knee\"; "
                             "recorded in pareto.json, and later stages become stale")


def main(args: argparse.Namespace) -> int:
    rule = parse_select(args.select) if args.select else None
    r = run_pareto(args.run_dir, args.reference_point, rule)
    print(f"front: {int(r.table['on_front'].sum())} of {len(r.table)} trials; "
          f"hypervolume {r.hypervolume:.6g} (reference {r.reference_point}, {r.reference_rule})")
    print(f"rule: {r.rule}; chosen trial: {r.chosen_trial_id}")
    for n in r.notes:
        print(f"note: {n}")
    for stage, why in stale_stages(args.run_dir).items():
        print(f"stale: {stage} ({why}); re-run `fairsearch run {args.run_dir} --from {stage}`")
    return 0
