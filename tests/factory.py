"""Run folders for tests, made by the real stages on tiny data.

:func:`build_runs` runs search → pareto → retrain → audit on a seeded synthetic regression
(a few trials of one or two epochs, two retrain seeds, one cheap probe), all in this process and
without Ray, and keeps a copy of the folder after each stage. ``conftest.py`` builds them once
per session; a test copies the stage it needs (:func:`copy_run`) and, where it needs special
numbers, edits that copy's tables (:func:`edit_table`) instead of writing a folder by hand.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fairsearch.io.lineage import record_stage

__all__ = ["RULE", "SPEC", "STAGES", "build_runs", "copy_run", "edit_retrain", "edit_table",
           "tiny_data"]

#: The selection rule of :data:`SPEC`, as the report and the decision read it.
RULE = "cka <= 0.45"

#: A tiny seeded wrapper search: 4 trials of 3 epochs on 600 rows of :func:`tiny_data`, in this
#: process (``search.executor: inprocess``); ``data.path`` is filled in by :func:`build_runs`.
SPEC: dict[str, Any] = {
    "name": "tiny",
    "data": {"path": None},
    "model": "wrapper",
    "objectives": [{"metric": "mse", "direction": "minimize"},
                   {"metric": "cka", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0.0, "high": 10.0},
              "lr": {"type": "float", "low": 2.0e-2, "high": 3.0e-2, "log": True}},
    "search": {"algorithm": "random", "trials": 4, "max_concurrent": 1, "seed": 0,
               "executor": "inprocess"},
    "trial": {"epochs": 3, "batch_size": 32},
    "post": {"select": {"minimize": "mse", "subject_to": [RULE]}, "top_k": 2, "seeds": [0, 1],
             "probes": ["logistic"]},
}


def tiny_data(path: Path, *, n: int = 600, seed: int = 0) -> Path:
    """A regression problem with a categorical protected group, written as Parquet: the
    embeddings of :func:`fairsearch.data.synthetic_embeddings` (they leak a binary group ``q``),
    and as target their binary control label plus a little noise. A regression keeps the
    decision cheap (no classifier baselines) while the audit probes a categorical ``q``."""
    from fairsearch.data import save_parquet, synthetic_embeddings

    data = synthetic_embeddings(n=n, d=8, seed=seed)
    noise = np.random.default_rng(seed).normal(0.0, 0.1, n)
    y = (data.y + noise).astype("float32")
    save_parquet(dataclasses.replace(data, name="tiny", y=y, task="regression", classes={
        k: v for k, v in data.classes.items() if k != "y"}), path)
    return path


#: The copies :func:`build_runs` keeps, in stage order: each holds the files of the stages up
#: to its name.
STAGES = ("search", "pareto", "retrain", "audit")


def build_runs(root: Path, spec: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Run the stages on ``spec`` (default :data:`SPEC`) under ``root``; returns a read-only
    copy of the run folder after each stage of :data:`STAGES`, by stage name."""
    from fairsearch.analysis.audit.stage import run_stage as run_audit_stage
    from fairsearch.analysis.pareto.stage import run_pareto
    from fairsearch.analysis.retrain.runners import InProcess
    from fairsearch.analysis.retrain.stage import run_retrain
    from fairsearch.search.engine import search_inprocess
    from fairsearch.spec import load_spec

    root.mkdir(parents=True, exist_ok=True)
    raw = dict(spec or SPEC)
    if raw["data"].get("path", "") is None:
        raw["data"] = {"path": str(tiny_data(root / "tiny.parquet"))}
    spec_file = root / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    run = search_inprocess(load_spec(spec_file), storage=root / "work", quiet=True)
    snapshots = {"search": _snapshot(run, root / "search")}
    run_pareto(run)
    snapshots["pareto"] = _snapshot(run, root / "pareto")
    run_retrain(run, quiet=True, runner=InProcess())
    snapshots["retrain"] = _snapshot(run, root / "retrain")
    run_audit_stage(run, n_boot=50, quiet=True)
    snapshots["audit"] = _snapshot(run, root / "audit")
    return snapshots


def copy_run(source: Path, dest: Path) -> Path:
    """A writable copy of the run folder ``source`` at ``dest`` (made; must not exist)."""
    shutil.copytree(source, dest)
    return dest


def edit_table(run: Path, name: str, edit: Callable[[pd.DataFrame], pd.DataFrame | None],
               *, stage: str | None = None) -> pd.DataFrame:
    """Rewrite ``run/name`` (a parquet table) with ``edit`` (which may change the frame in place
    and return None); ``stage`` records that stage again, so the edit does not read as stale."""
    table = pd.read_parquet(run / name)
    out = edit(table)
    table = out if out is not None else table
    table.to_parquet(run / name, index=False)
    if stage is not None:
        record_stage(run, stage)
    return table


def edit_retrain(run: Path, edit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> pd.DataFrame:
    """Rewrite ``retrain.parquet`` with ``edit`` and ``retrain_summary.parquet`` from it, as the
    retrain stage summarises (the search's spread of each objective flags unstable seeds), and
    record the stage; returns the new summary."""
    from fairsearch.analysis.retrain.summary import search_spreads, summarise_seeds
    from fairsearch.spec import load_spec

    spec = load_spec(run / "spec.yaml")
    table = edit_table(run, "retrain.parquet", edit)
    objectives = [(o.metric, o.direction) for o in spec.objectives]
    spreads = search_spreads(pd.read_parquet(run / "trials.parquet"), objectives)
    rule = tuple((json.loads((run / "pareto.json").read_text()).get("select") or {})
                 .get("subject_to") or ())
    summary = summarise_seeds(table, objectives, rule, spreads)
    summary.to_parquet(run / "retrain_summary.parquet", index=False)
    record_stage(run, "retrain")
    return summary


def _snapshot(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("ray", "*.lock", "*.partial"))
    return dest
