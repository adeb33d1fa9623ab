"""The audit stage of a run folder: collect the frozen outputs of its retrained seeds, audit
them, write ``audit.parquet`` (the ``fairsearch audit`` command).

The audit never sees training. It takes the outputs of each model on the held-out TEST split
(translated embeddings, or the wrapper's predictions) as named representations over the *same*
rows (:mod:`~fairsearch.analysis.audit.inputs`). For a categorical ``q`` every representation
climbs the probe ladder (:mod:`fairsearch.probes.ladder`): majority, logistic, a tuned MLP,
boosted trees, kNN and an RBF-SVM, each cross-fitted over all held-out rows (5 folds, 2 fold
seeds); the headline ``worst_case`` row is the kind picked on inner folds and scored on outer
ones (no winner's curse), with a 1,000-resample bootstrap interval that includes the probe-fit
variance across fold seeds; ``mdl_bits`` is the online code length of ``q`` given the
representation. The ``floor`` is what keeping the control task forces a representation to leak:
``q`` predicted from the control label (and from the original representation's control
prediction), on the same rows. Every row carries its ``chance`` level (balanced accuracy
``1/K``, ROC-AUC 0.5, the same-``q`` rate among random neighbours for the kNN mix, a permutation
mean for CKA/HSIC, 0 for R^2 and the group gaps). Fresh control probes, group metrics and
unseen-label transfer use one seeded, stratified audit-train / audit-test split. The baseline
("original") and LEACE are representations like any other
(:func:`~fairsearch.analysis.audit.representations.audit_representations`).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from fairsearch.analysis.audit.given_label import separation_rows
from fairsearch.analysis.audit.inputs import audit_inputs
from fairsearch.analysis.audit.progress import AuditProgress
from fairsearch.analysis.audit.representations import (
    audit_representations,
    audit_units,
    q_kind_of,
)
from fairsearch.analysis.audit.split_probes import TransferSource
from fairsearch.analysis.audit.units import Executor, UnitStore
from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.lineage import LINEAGE_FILE, lineage_with
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.probes.ladder import ENGINES, Engine
from fairsearch.probes.registry import PROBE_KINDS
from fairsearch.runfolder.tables import write_table

__all__ = ["UNITS_DIR", "configure", "main", "other_labels", "run_audit", "run_stage"]

#: Finished probe units of a run folder's audit
#: (:class:`~fairsearch.analysis.audit.units.UnitStore`).
UNITS_DIR = "audit_units"


def run_audit(run_dir: str | Path, table: pd.DataFrame) -> Path:
    """Write an audit table as ``RUN_DIR/audit.parquet``, with its lineage, in one commit
    (staged in ``audit.partial/``); an interrupt received meanwhile writes nothing."""
    run = Path(run_dir)
    signals.check(f"no audit.parquet is written from an interrupted audit; the previous one is "
                  f"unchanged; `fairsearch audit {run}` runs it again")  # fmt: skip
    staged = run / "audit.partial"
    try:
        write_table(table, staged / "audit.parquet")
        moves = [(f"{staged.name}/audit.parquet", "audit.parquet")]
        if (run / "retrain.parquet").is_file():
            lineage = lineage_with(run, "audit")
            write_atomic(staged / LINEAGE_FILE, lambda p: p.write_text(lineage))
            moves.append((f"{staged.name}/{LINEAGE_FILE}", LINEAGE_FILE))
        signals.check(f"the previous audit.parquet is unchanged; `fairsearch audit {run}` runs "
                      f"it again")  # fmt: skip
    except BaseException:  # e.g. a full disk: before the commit point, nothing is left behind
        shutil.rmtree(staged, ignore_errors=True)
        raise
    commit(run, "audit", moves, remove=[staged.name])
    return run / "audit.parquet"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder with retrained models")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="auto (default): probes batched in torch where that is faster on "
                             "this device (a GPU: logistic, mlp and knn; a CPU: none); "
                             "batched: the logistic, mlp and knn probes batched in torch; "
                             "sklearn: every probe fitted on its own (the reference)")
    parser.add_argument("--no-halving", dest="halving", action="store_false",
                        help="give every probe kind every fold seed (default: a kind far "
                             "below the worst case gets one)")
    parser.add_argument("--quiet", action="store_true", help="no live progress")
    parser.add_argument("--ray", action="store_true",
                        help="run the probe units as Ray tasks (a local Ray, or the cluster of "
                             "--address / RAY_ADDRESS)")
    parser.add_argument("--address", default=None, help="Ray address to join (implies --ray)")


def run_stage(run_dir: str | Path, *, n_boot: int = 1000, seed: int = 0,
              engine: Engine = "auto", quiet: bool = False,
              executor: Executor | None = None, halving: bool = True) -> pd.DataFrame:
    """:func:`_run_stage` holding the run folder's lock (one driver per folder); an interrupt
    (even one a probe's library swallowed) writes no ``audit.parquet``."""
    note = (f"no audit.parquet is written from an interrupted audit; the previous one is "
            f"unchanged; `fairsearch audit {run_dir}` runs it again")  # fmt: skip
    with signals.interruptible(note), stage_lock(run_dir):
        return _run_stage(run_dir, n_boot=n_boot, seed=seed, engine=engine, quiet=quiet,
                          executor=executor, halving=halving)


def _run_stage(run_dir: str | Path, *, n_boot: int = 1000, seed: int = 0,
               engine: Engine = "auto", quiet: bool = False,
               executor: Executor | None = None, halving: bool = True) -> pd.DataFrame:
    """The audit stage of a run folder: collect the frozen outputs, probe them, write the table.

    Each finished probe unit is written to ``RUN_DIR/audit_units/`` at once (keyed by its
    inputs), so an audit that was killed resumes without refitting the units it finished.

    The representations are those of :func:`audit_inputs` (``audit_inputs.npz``).
    """
    run = Path(run_dir)
    data = audit_inputs(run)
    probes = _spec_probes(run)
    reps = _named(data, "rep:")
    extras = other_labels(_named(data, "extra:"), np.asarray(data["q"]))
    transfer = None
    if "transfer_X" in data:
        transfer = TransferSource(data["transfer_X"], _named(data, "transfer:"))
    units = audit_units(len(reps), probes, q_kind_of(np.asarray(data["q"])))
    with AuditProgress(units, quiet=quiet) as progress:
        table = audit_representations(reps, data["q"], y=data.get("y"), extras=extras,
                                      probes=probes, transfer_source=transfer, n_boot=n_boot,
                                      seed=seed, engine=engine, progress=progress,
                                      executor=executor, store=UnitStore(run / UNITS_DIR),
                                      halving=halving)
    criterion = _spec_criterion(run)
    if criterion != "independence" and data.get("y") is not None \
            and q_kind_of(np.asarray(data["q"])) == "categorical":  # fmt: skip
        given = separation_rows(reps, data["q"], data["y"], criterion=criterion, probes=probes,
                                n_boot=n_boot, seed=seed)  # fmt: skip
        table = pd.concat([table, pd.DataFrame(given, columns=table.columns)], ignore_index=True)
    run_audit(run, table)
    return table


def _spec_criterion(run: Path) -> str:
    """The run's ``fairness.criterion`` (``spec.yaml``; independence without one)."""
    from fairsearch.spec.safe_yaml import read_yaml

    if not (run / "spec.yaml").is_file():
        return "independence"
    fairness = (read_yaml(run / "spec.yaml", "spec file") or {}).get("fairness") or {}
    return str(fairness.get("criterion", "independence"))


def _spec_probes(run: Path) -> tuple[str, ...]:
    """The probe kinds the run's ``spec.yaml`` names (``post.probes``), else every kind. Only
    this key is read: a folder of cached representations (``audit_inputs.npz``) is audited
    without the data or factories the whole spec names."""
    from fairsearch.spec.safe_yaml import read_yaml

    if not (run / "spec.yaml").is_file():
        return PROBE_KINDS
    post = (read_yaml(run / "spec.yaml", "spec file") or {}).get("post") or {}
    return tuple(post.get("probes") or PROBE_KINDS)


def other_labels(extras: dict[str, np.ndarray], q: np.ndarray) -> dict[str, np.ndarray]:
    """The extra labels that are not ``q`` under another name: a dataset's extras can include
    the attribute the run protects (Adult ships ``sex`` with its other attributes), and a
    leak of it is the audit's headline, not a caveat. An extra goes when it partitions the
    rows exactly as ``q`` does, whatever its codes."""
    def same(a: np.ndarray) -> bool:
        if a.shape != q.shape:
            return False
        pairs = pd.DataFrame({"a": a, "q": q}).drop_duplicates()
        return len(pairs) == pairs["a"].nunique() == pairs["q"].nunique()

    return {k: v for k, v in extras.items() if not same(np.asarray(v))}


def _named(data: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays of ``data`` whose key starts with ``prefix``, by the rest of the key."""
    return {k.removeprefix(prefix): data[k] for k in data if k.startswith(prefix)}


def main(args: argparse.Namespace) -> int:
    executor = None
    if args.ray or args.address:
        from fairsearch.analysis.audit.on_ray import RayExecutor  # the only Ray of the audit

        executor = RayExecutor(address=args.address)
    table = run_stage(args.run_dir, n_boot=args.n_boot, seed=args.seed, engine=args.engine,
                      quiet=args.quiet, executor=executor, halving=args.halving)
    print(f"wrote {Path(args.run_dir) / 'audit.parquet'} ({len(table)} rows)")
    return 0
