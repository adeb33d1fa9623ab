"""The retrain stage: chosen configurations x seeds, in parallel on Ray, saved and summarised.

Reads ``spec.yaml``, ``trials.parquet`` and ``pareto.parquet``; retrains the Pareto members (the
chosen one first, at most ``post.top_k``) once per seed in ``post.seeds``; writes

* ``retrain/trial-<number>/seed-<s>/`` (``config_id`` = ``trial-<number>``, the Optuna number): ``model.pt`` (a state dict: loading never runs code),
  ``config.json`` (the exact flat config, model kind, data section, seed, epochs),
  ``test_repr.npy`` (what the audit probes see: predictions or class probabilities for the
  wrapper, translated embeddings for the translator) and ``test_pred.npy`` (control predictions);
* ``retrain.parquet``: one row per configuration and seed: ``metric.<name>`` on the validation
  split (as in the search), ``test.<name>`` on the test split, status, error, timing;
* ``retrain_summary.parquet``: mean and std per configuration and objective, the robust front on
  the seed means, and an ``unstable`` flag where the outcome flips between seeds.

All of them are written beside the previous ones and swapped in when every unit is done
(:func:`run_retrain`); a stopped or killed run leaves ``retrain.partial/``, which the next one
resumes.

The units run through a runner (:mod:`fairsearch.analysis.retrain.runners`): Ray lanes by default
(:mod:`fairsearch.analysis.retrain.on_ray`, the only Ray of this stage), or in this process.
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairsearch.analysis.pareto.analysis import outcomes
from fairsearch.analysis.retrain.plan import plan_retrain
from fairsearch.analysis.retrain.reference import REFERENCE, TEST_Y, trivial_reference
from fairsearch.analysis.retrain.runners import UnitRunner
from fairsearch.analysis.retrain.staging import PARTIAL, StagedUnits, staging
from fairsearch.analysis.retrain.summary import search_spreads, summarise_seeds
from fairsearch.analysis.retrain.units import jsonable, save_npy, unit_work
from fairsearch.analysis.retrain.weights import load_model
from fairsearch.families import get_family
from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.files import read_json, read_parquet
from fairsearch.io.lineage import LINEAGE_FILE, fingerprint, lineage_with
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.runfolder.tables import write_table
from fairsearch.spec.schema import load_spec
from fairsearch.spec.validated import Spec

#: ``load_model`` stays importable from here too (the package exports it).
__all__ = ["load_model", "run_retrain"]


def run_retrain(run_dir: str | Path, *, top_k: int | None = None, seeds: list[int] | None = None,
                epochs: int | None = None, address: str | None = None, quiet: bool = False,
                runner: UnitRunner | None = None) -> pd.DataFrame:  # fmt: skip
    """Retrain the chosen configurations of ``run_dir``; returns ``retrain.parquet``.

    The units run on ``runner``: by default Ray lanes on the Ray at ``address``
    (:class:`~fairsearch.analysis.retrain.on_ray.RayLanes`), or
    :class:`~fairsearch.analysis.retrain.runners.InProcess` for this process alone.

    Transactional, unit by unit (a unit is one configuration x seed): finished units go to
    ``retrain.partial/`` (``models/<config>/seed-<s>/``, with ``row.json`` written last as the
    unit's mark), while the previous ``retrain/``, ``retrain.parquet`` and
    ``retrain_summary.parquet`` stay as they are. When every unit is done the new outputs replace
    them in one commit (:mod:`fairsearch.io.transaction`), the audit's cache ``audit_inputs.npz``
    is dropped with them and ``lineage.json`` records the stage. Stopped by SIGINT/SIGTERM (or
    killed), the finished units are kept; the next run with the same plan and inputs trains only
    the others. Holds the run folder's lock throughout.
    """
    run = Path(run_dir)
    with stage_lock(run):
        return _retrain(run, top_k=top_k, seeds=seeds, epochs=epochs, address=address,
                        quiet=quiet, runner=runner)  # fmt: skip


def _retrain(run: Path, *, top_k: int | None, seeds: list[int] | None, epochs: int | None,
             address: str | None, quiet: bool, runner: UnitRunner | None) -> pd.DataFrame:  # fmt: skip
    from fairsearch.data import load_from_spec

    spec, trials, subject_to, plan = _read_inputs(run, top_k)
    seeds = _seeds(spec, seeds)
    settings = {"model": spec.model, "model_args": dict(spec.model_args),
                "epochs": epochs or spec.post.retrain_epochs or spec.trial.epochs,
                "batch_size": spec.trial.batch_size, "split_seed": spec.search.seed,
                **spec.criterion_setting()}  # fmt: skip
    staged = staging(run, {**settings, "data": dict(spec.data), "inputs": {
        name: fingerprint(run / name) for name in ("trials.parquet", "pareto.parquet")}})
    items = [{"key": f"{item['config_id']}/seed-{seed}", "params": item["params"], "seed": seed,
              "plan": item} for item in plan for seed in seeds]  # fmt: skip
    units = StagedUnits(run, staged, items, {
        "family": spec.model, "model": dict(spec.model_args), "data": dict(spec.data),
        "epochs": settings["epochs"], "batch_size": spec.trial.batch_size,
        **spec.criterion_setting()}, quiet=quiet)
    data = load_from_spec(spec.data)
    reference = trivial_reference(get_family(spec.model), data, spec.search.seed)
    if units.todo:
        _train(units, runner or _runner(run, spec, len(units.todo), address), settings, data)
    signals.check(units.kept())
    table = units.table()
    objectives = [(o.metric, o.direction) for o in spec.objectives]
    summary = summarise_seeds(table, objectives, subject_to, search_spreads(trials, objectives))
    _write_outputs(run, staged, table, summary, reference, data)
    signals.check(units.kept())
    _commit(run)
    return table


def _read_inputs(run: Path, top_k: int | None
                 ) -> tuple[Spec, pd.DataFrame, tuple[str, ...], list[dict[str, Any]]]:
    """The spec, the trials, the rule's constraints and the plan; every input is read (and a
    damaged one named) before anything trains."""
    for name in ("spec.yaml", "trials.parquet", "pareto.parquet"):
        if not (run / name).is_file():
            raise ValueError(
                f"RUN_DIR must hold {name} (run the earlier stages), but {run} has none"
            )
    spec = load_spec(run / "spec.yaml")
    trials = read_parquet(run / "trials.parquet")
    pareto = read_parquet(run / "pareto.parquet")
    subject_to = _subject_to(run, spec)  # pareto.json is read before anything trains
    plan = plan_retrain(trials, pareto, top_k or spec.post.top_k)
    if not plan:
        raise ValueError(f"nothing to retrain: the Pareto front of {str(run)!r} is empty, no "
                         f"trial completed ({outcomes(trials)})")  # fmt: skip
    return spec, trials, subject_to, plan


def _seeds(spec: Spec, seeds: list[int] | None) -> list[int]:
    """The retrain seeds: ``seeds``, else the spec's; each once."""
    seeds = list(seeds if seeds is not None else spec.retrain_seeds)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"retrain seeds must be distinct (a repeated seed only repeats its "
                         f"result), but got {seeds}")  # fmt: skip
    return seeds


def _runner(run: Path, spec: Spec, units: int, address: str | None) -> UnitRunner:
    """The spec's executor: in this process for ``search.executor: inprocess``, else the same
    lanes and ScalingConfig as the search, on Ray."""
    if spec.search.executor == "inprocess":
        from fairsearch.analysis.retrain.runners import InProcess
        from fairsearch.executor.scaling import LaneScaling

        return InProcess(threads=LaneScaling.from_trial(spec.trial).threads)
    from fairsearch.analysis.retrain.on_ray import RayLanes

    return RayLanes.for_spec(spec, units, str((run / "ray").resolve()), address)


def _train(units: StagedUnits, runner: UnitRunner, settings: dict[str, Any], data: Any) -> None:
    """The units not finished yet, on ``runner``; an interruption says what was kept."""
    from fairsearch.executor.contract import ItemList

    with signals.interruptible(units.kept):
        runner(ItemList(units.todo, units.record),
               functools.partial(unit_work, settings=settings), data, stop=units.stop)
    if units.stop.is_set():
        raise signals.Interrupted(signal.SIGINT, units.kept())


def _write_outputs(run: Path, staged: Path, table: pd.DataFrame, summary: pd.DataFrame,
                   reference: dict[str, Any], data: Any) -> None:
    """The tables, the lineage, the trivial reference and the test labels, into ``staged``."""
    write_table(table, staged / "retrain.parquet")
    write_table(summary, staged / "retrain_summary.parquet")
    lineage = lineage_with(run, "retrain")
    write_atomic(staged / LINEAGE_FILE, lambda p: p.write_text(lineage))
    (staged / "models").mkdir(exist_ok=True)
    text = json.dumps(jsonable(reference), indent=2)
    write_atomic(staged / "models" / REFERENCE, lambda p: p.write_text(text + "\n"))
    test_y = np.asarray(data.subset("test").y).reshape(-1)
    write_atomic(staged / "models" / TEST_Y, lambda p: save_npy(p, test_y))


def _commit(run: Path) -> None:
    """The staged outputs replace the previous ones together; the audit's cache goes with them."""
    commit(run, "retrain", [(f"{PARTIAL}/models", "retrain"),
                            (f"{PARTIAL}/retrain.parquet", "retrain.parquet"),
                            (f"{PARTIAL}/retrain_summary.parquet", "retrain_summary.parquet"),
                            (f"{PARTIAL}/{LINEAGE_FILE}", LINEAGE_FILE)],
           remove=["audit_inputs.npz", PARTIAL])  # fmt: skip


def _subject_to(run: Path, spec: Spec) -> tuple[str, ...]:
    """The constraints of the rule the Pareto stage used (a ``--select`` override included)."""
    path = run / "pareto.json"
    meta = read_json(path) if path.is_file() else {}
    select = meta.get("select") if isinstance(meta, dict) else None
    if select is not None and not (isinstance(select, dict)
                                   and isinstance(select.get("subject_to", []), list)):
        raise ValueError(f"{path}: `select` must be a mapping with a `subject_to` list, but got "
                         f"{select!r}; to recover: `fairsearch pareto {run}`")  # fmt: skip
    return tuple(select.get("subject_to") or ()) if select else tuple(spec.post.subject_to)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder with pareto.parquet")
    parser.add_argument("--top-k", type=int, default=None, help="default: the spec's post.top_k")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--address", default=None)
    parser.add_argument("--quiet", action="store_true")


def main(args: argparse.Namespace) -> int:
    table = run_retrain(args.run_dir, top_k=args.top_k, seeds=args.seeds, epochs=args.epochs,
                        address=args.address, quiet=args.quiet)  # fmt: skip
    print(f"retrained {table['config_id'].nunique()} configurations x {table['seed'].nunique()} "
          f"seeds: {(table['status'] == 'completed').sum()} completed")  # fmt: skip
    return 0

