"""The retrain's staging folder ``retrain.partial/``: units as they finish, kept across an
interruption when the next run has the same settings and inputs, swapped in when all are done."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from fairsearch.analysis.retrain.units import jsonable, save_unit, unit_row
from fairsearch.analysis.retrain.weights import weights_load
from fairsearch.io.atomic import write_atomic

__all__ = ["PARTIAL", "UNIT_MARK", "StagedUnits", "finished_units", "staging"]

#: The retrain's staging folder (units as they finish; swapped in when all are done).
PARTIAL = "retrain.partial"
#: A finished unit's mark, written last in its folder: its row of ``retrain.parquet``.
UNIT_MARK = "row.json"


def staging(run: Path, settings: dict[str, Any]) -> Path:
    """``retrain.partial/`` for these settings: kept from an interrupted run with the same
    settings and inputs, else started afresh."""
    staged = run / PARTIAL
    want = json.dumps(jsonable(settings), sort_keys=True, default=str)
    plan = staged / "plan.json"
    if staged.exists():
        try:
            same = json.dumps(json.loads(plan.read_text()), sort_keys=True) == want
        except (OSError, ValueError):
            same = False
        if not same:
            print(f"[retrain] {staged} was left by a run with other settings or inputs: "
                  f"starting afresh", file=sys.stderr)  # fmt: skip
            shutil.rmtree(staged)
    (staged / "models").mkdir(parents=True, exist_ok=True)
    if not plan.is_file():
        write_atomic(plan, lambda p: p.write_text(want + "\n"))
    return staged


def finished_units(staged: Path, keys: set[str]) -> dict[str, dict[str, Any]]:
    """key -> row of each finished unit in the plan; an unfinished unit (no mark, a damaged
    mark) or one no longer planned is removed."""
    rows: dict[str, dict[str, Any]] = {}
    for unit in sorted((staged / "models").glob("*/seed-*")):
        key = f"{unit.parent.name}/{unit.name}"
        try:
            row = json.loads((unit / UNIT_MARK).read_text()) if key in keys else None
        except (OSError, ValueError):
            row = None
        if isinstance(row, dict) and (row.get("status") != "completed" or weights_load(unit)):
            rows[key] = row
        else:
            shutil.rmtree(unit)
    return rows


class StagedUnits:
    """The plan's units in ``staged``: those finished by an earlier run (kept), those to train
    (:attr:`todo`), and :meth:`record`, which saves each result as it comes in.

    ``items``: one per unit, ``{"key", "params", "seed", "plan"}``; ``config``: what every
    unit's ``config.json`` shares (``family``, ``model``, ``data``, ``epochs``, ``batch_size`` and,
    unless independence, ``criterion``)."""

    def __init__(self, run: Path, staged: Path, items: list[dict[str, Any]],
                 config: dict[str, Any], *, quiet: bool) -> None:  # fmt: skip
        self.run, self.staged, self.items, self.config, self.quiet = run, staged, items, config, quiet
        self.rows = finished_units(staged, {it["key"] for it in items})
        self.todo = [it for it in items if it["key"] not in self.rows]
        self.stop = threading.Event()
        if self.rows:  # said even with --quiet: what this run will not train again
            print(f"[retrain] {len(self.rows)} of {len(items)} (configuration, seed) units were "
                  f"finished by an earlier run and are kept; training the other {len(self.todo)}",
                  file=sys.stderr)  # fmt: skip

    def kept(self) -> str:
        """What an interruption keeps, and how to go on."""
        return (f"{len(self.rows)} of {len(self.items)} (configuration, seed) units are finished "
                f"and kept in {self.staged}; the previous retrain outputs are unchanged; "
                f"`fairsearch retrain {self.run}` trains the rest")  # fmt: skip

    def record(self, entry: dict[str, Any], out: Any) -> None:
        """Save one unit's result: its folder, then its mark (the unit is done)."""
        if self.stop.is_set():  # stopped in flight: not an outcome, trained again on the next run
            return
        item, seed = entry["plan"], entry["seed"]
        out = dict(out)
        out.setdefault("metrics", {})
        out.setdefault("test_metrics", {})
        out.setdefault("duration_s", float(out.get("train_s") or 0.0))
        unit = self.staged / "models" / item["config_id"] / f"seed-{seed}"
        c = self.config
        save_unit(unit, out, {"family": c["family"], "model": c["model"], "config": item["params"],
                              "data": c["data"], "seed": seed, "epochs": c["epochs"],
                              "batch_size": c["batch_size"], "trial_id": item["trial_id"],
                              **({"criterion": c["criterion"]} if "criterion" in c else {})})
        row = unit_row(item, seed, out)
        text = json.dumps(jsonable(row))
        write_atomic(unit / UNIT_MARK, lambda p: p.write_text(text + "\n"))  # the unit is done
        self.rows[entry["key"]] = row
        if not self.quiet:
            print(f"  retrain {len(self.rows)}/{len(self.items)}: {item['config_id']} seed {seed} "
                  f"{out['status']} in {out['duration_s']:.1f}s", file=sys.stderr)  # fmt: skip

    def table(self) -> pd.DataFrame:
        """``retrain.parquet``: every unit's row, by configuration and seed."""
        return pd.DataFrame([self.rows[it["key"]] for it in self.items]).sort_values(
            ["config_id", "seed"], kind="stable", ignore_index=True)
