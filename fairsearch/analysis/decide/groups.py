"""Per-group rates of the deployed seed's decisions on the test rows, the rates the run's
criterion equalises: each group's rate of positive decisions (independence: demographic parity),
true-positive rate (opportunity) or true- and false-positive rates (separation), from fairlearn's
``MetricFrame``, a row-bootstrap interval on each, and the worst-off group (the lowest rate of
the first kind). Read from the retrain's ``test_pred.npy`` and ``test_y.npy``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["group_rates", "groups_sentence"]

RATES = {"selection_rate": "rate of positive decisions", "true_positive_rate": "true-positive rate",
         "false_positive_rate": "false-positive rate"}


def group_rates(y: np.ndarray, pred: np.ndarray, q: np.ndarray, names: Sequence[str], *,
                criterion: str, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """``{"rates": {rate: {group: [value, ci_low, ci_high]}}, "worst": group}`` for binary
    decisions ``pred`` of labels ``y`` (class 1 positive) and group codes ``q`` into ``names``."""
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    y, pred, q = (np.asarray(a).reshape(-1).astype(np.int64) for a in (y, pred, q))
    fns: dict[str, Any] = ({"selection_rate": selection_rate} if criterion == "independence"
                           else {"true_positive_rate": true_positive_rate})  # fmt: skip
    if criterion == "separation":
        fns["false_positive_rate"] = false_positive_rate
    frame = MetricFrame(metrics=fns, y_true=y, y_pred=pred, sensitive_features=q)
    lo, hi = _bootstrap(y, pred, q, len(names), list(fns), n_boot, seed)
    rates: dict[str, dict[str, list[float]]] = {}
    for j, rate in enumerate(fns):
        rates[rate] = {names[int(g)]: [float(v), float(lo[j, int(g)]), float(hi[j, int(g)])]
                       for g, v in frame.by_group[rate].items()}  # fmt: skip
    first = rates[next(iter(fns))]
    return {"rates": rates, "worst": min(first, key=lambda g: first[g][0])}


def _bootstrap(y: np.ndarray, pred: np.ndarray, q: np.ndarray, groups: int, rates: list[str],
               n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Percentile intervals (rate x group) of each rate over ``n_boot`` resamples of the rows."""
    rng = np.random.default_rng(seed)
    stats = np.full((n_boot, len(rates), groups), np.nan)
    for b in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        for j, rate in enumerate(rates):
            rows = (np.ones(len(i), bool) if rate == "selection_rate"
                    else y[i] == (1 if rate == "true_positive_rate" else 0))
            count = np.bincount(q[i][rows], minlength=groups)
            hits = np.bincount(q[i][rows], weights=pred[i][rows] == 1, minlength=groups)
            with np.errstate(invalid="ignore", divide="ignore"):
                stats[b, j] = np.where(count > 0, hits / count, np.nan)
    lo, hi = np.nanquantile(stats, [0.025, 0.975], axis=0)
    return lo, hi


def groups_sentence(groups: dict[str, Any]) -> str:
    """The worst-off group, then every group's rates, as the verdict says them."""
    parts = []
    for rate, by in groups["rates"].items():
        cells = ", ".join(f"{g} {v:.3f} [{lo:.3f}, {hi:.3f}]" for g, (v, lo, hi) in by.items())
        parts.append(f"{RATES[rate]}: {cells}")
    rate = next(iter(groups["rates"]))
    first, worst = groups["rates"][rate], groups["worst"]
    overlap = any(g != worst and first[g][1] <= first[worst][2] for g in first)
    note = " (its interval overlaps another group's: the order is not resolved)" if overlap else ""
    return (f"worst-off group (lowest {RATES[rate]} on test): {worst}{note}; "
            + "; ".join(parts))
