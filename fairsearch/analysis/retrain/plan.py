"""The retrain plan: which configurations of the search are trained again, in which order."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plan_retrain"]


def plan_retrain(trials: pd.DataFrame, pareto: pd.DataFrame, top_k: int) -> list[dict[str, Any]]:
    """The configurations to retrain, at most ``top_k``: the Pareto stage's candidates in their
    order (``candidate``; the chosen one alone in run folders without that column), then the
    other front members by rank and number. None when no trial completed. A configuration whose
    parameters equal those of one already planned is skipped: samplers such as NSGA-II can
    propose an exact copy of an earlier configuration, and both copies sit on the front with
    the same objectives."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, but got {top_k}")
    if len(pareto) == 0 or not pareto["on_front"].astype(bool).any():
        return []
    table = pareto.copy()
    if "candidate" not in table:
        table["candidate"] = np.where(table["chosen"].astype(bool), 0, np.nan)
    table["_order"] = pd.to_numeric(table["candidate"], errors="coerce").astype(
        "float64").fillna(np.inf)
    table = table[np.isfinite(table["_order"]) | table["on_front"].astype(bool)]
    table = table.sort_values(["_order", "rank", "number"], kind="stable")
    rows = trials.set_index("trial_id")
    plan: list[dict[str, Any]] = []
    for tid in table["trial_id"]:
        if len(plan) == top_k:
            break
        row = rows.loc[tid]
        params = {
            c.removeprefix("param."): _plain(row[c])
            for c in rows.columns
            if c.startswith("param.") and not _missing(row[c])
        }
        if any(p["params"] == params for p in plan):
            continue
        plan.append({"config_id": f"trial-{int(row['number'])}", "number": int(row["number"]),
                     "trial_id": tid, "params": params})
    return plan


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
