"""Group metrics of a control task's predictions across the groups of ``q`` (fairlearn's),
with row-bootstrap intervals."""

from __future__ import annotations

from typing import Any

import numpy as np

from fairsearch.analysis.audit.metrics import bootstrap_ci, codes_of
from fairsearch.measures.fairness import rate_gap

__all__ = ["group_metrics"]


def _gap(name: str, y: np.ndarray, pred: np.ndarray, g: np.ndarray) -> float:
    """fairlearn's between-groups, worst-case gaps for 0/1 arrays and group codes ``g``."""
    if name == "demographic_parity_difference":
        return rate_gap(pred, g)
    return max(rate_gap(pred, g, y == 1), rate_gap(pred, g, y == 0))


def group_metrics(y_true: np.ndarray, y_pred: np.ndarray, q: np.ndarray, *, model: str,
                  probe: str = "model", n_boot: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """fairlearn group metrics of a control task's predictions (categorical ``q``).

    Demographic-parity and equalized-odds differences (binary tasks; row-bootstrap CIs) and the
    per-group accuracy (MSE for a regression task, e.g. the wrapper's predictions) from
    ``MetricFrame`` with its own bootstrap intervals.
    """
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
    )
    from sklearn.metrics import accuracy_score, mean_squared_error

    y_true, y_pred, q = np.asarray(y_true), np.asarray(y_pred), np.asarray(q).reshape(-1)
    rows: list[dict[str, Any]] = []
    base = dict(model=model, target="control", probe=probe)
    if len(np.unique(np.concatenate([y_true, y_pred]))) <= 2:
        exact = {"demographic_parity_difference": demographic_parity_difference,
                 "equalized_odds_difference": equalized_odds_difference}
        g, _ = codes_of(q)
        yt, yp = (y_true == y_true.max()).astype(float), (y_pred == y_true.max()).astype(float)
        for name, fn in exact.items():
            # the value from fairlearn; its bootstrap from the same formula on numpy arrays
            def stat(i: np.ndarray, name: str = name) -> float:
                return _gap(name, yt[i], yp[i], g[i])
            lo, hi = bootstrap_ci(stat, len(q), n_boot=n_boot, seed=seed)
            value = float(fn(y_true, y_pred, sensitive_features=q))
            rows.append(dict(base, metric=name, value=value, ci_low=lo, ci_high=hi, chance=0.0))
    regression = y_true.dtype.kind == "f" and len(np.unique(y_true)) > 10
    name, fn = ("mse", mean_squared_error) if regression else ("accuracy", accuracy_score)
    # the values from fairlearn's MetricFrame; its row bootstrap (resample all rows, the metric
    # per group, percentile interval) vectorised here: MetricFrame's own took ~25 s per model
    mf = MetricFrame(metrics=fn, y_true=y_true, y_pred=y_pred, sensitive_features=q)
    levels = list(mf.by_group.index)
    lo_ci, hi_ci = _group_bootstrap(y_true, y_pred, q, levels, regression, n_boot, seed)
    for i, (g, v) in enumerate(mf.by_group.items()):
        rows.append(dict(base, metric=f"{name}[q={g}]", value=float(v), ci_low=float(lo_ci[i]),
                         ci_high=float(hi_ci[i]), chance=float("nan")))
    return rows


def _group_bootstrap(y_true: np.ndarray, y_pred: np.ndarray, q: np.ndarray, levels: list[Any],
                     regression: bool, n_boot: int, seed: int, level: float = 0.95
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each group's accuracy (or MSE) over ``n_boot`` resamples of all
    rows (a group absent from a resample is left out of that resample)."""
    err = ((y_true.astype(float) - y_pred.astype(float)) ** 2 if regression
           else (y_true == y_pred).astype(float))
    pos = {v: i for i, v in enumerate(levels)}
    g = np.array([pos[v] for v in q.tolist()], dtype=np.int64)
    m, n = len(levels), len(q)
    rng = np.random.default_rng(seed)
    stats = []
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, (b, n))
        key = (np.arange(b)[:, None] * m + g[idx]).ravel()
        count = np.bincount(key, minlength=b * m).reshape(b, m)
        total = np.bincount(key, weights=err[idx].ravel(), minlength=b * m).reshape(b, m)
        with np.errstate(invalid="ignore", divide="ignore"):
            stats.append(np.where(count > 0, total / count, np.nan))
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(np.concatenate(stats), [alpha, 1 - alpha], axis=0)
    return lo, hi
