"""The audit's classification metrics on held-out rows, with their bootstrap intervals: F1,
balanced accuracy and ROC-AUC of one probe's predictions, against their chance levels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import rankdata

__all__ = ["bootstrap_ci", "classification_chance", "codes_of", "rows_classification"]


def _confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def _f1(cm: np.ndarray) -> float:
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[1]) if len(cm) == 2 else float(f1.mean())


def _bacc(cm: np.ndarray) -> float:
    support = cm.sum(1)
    return float((np.diag(cm)[support > 0] / support[support > 0]).mean())


def _binary_auc(pos: np.ndarray, score: np.ndarray) -> float:
    n1 = int(pos.sum())
    n0 = len(pos) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)  # Mann-Whitney U with average ranks for ties
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _auc(y: np.ndarray, proba: np.ndarray) -> float:
    """ROC-AUC (binary: class 1; multi-class: macro one-vs-rest, as scikit-learn's ``ovr``)."""
    if proba.shape[1] == 2:
        return _binary_auc(y == 1, proba[:, 1])
    return float(np.mean([_binary_auc(y == c, proba[:, c]) for c in range(proba.shape[1])]))


def classification_chance(y: np.ndarray, k: int) -> dict[str, float]:
    """Chance levels on labels ``y`` (codes 0..k-1): balanced accuracy ``1/K``, ROC-AUC 0.5, F1 of
    the better trivial guess: always-positive (``2p/(1+p)``) for binary, a frequency-matched
    random guess (``1/K`` macro) for multi-class."""
    p = np.bincount(y, minlength=k) / len(y)
    f1 = 2 * p[1] / (1 + p[1]) if k == 2 else 1.0 / k
    return {"f1": float(f1), "balanced_accuracy": 1.0 / k, "roc_auc": 0.5}


def bootstrap_ci(stat: Callable[[np.ndarray], float], n: int, *, n_boot: int = 200,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``stat(idx)`` over ``n_boot`` resamples of ``range(n)``."""
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=float)
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _binary_auc_counts(pos: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`_binary_auc` of each resample given as ``counts`` (resamples x rows: how often
    each row was drawn), vectorised: ``U`` counts every (positive, negative) pair of drawn rows
    with the positive scored higher, ties a half, as the average ranks of the drawn rows do."""
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of tied scores
    c = counts[:, order]
    p = np.add.reduceat(c * pos[order], starts, axis=1)
    m = np.add.reduceat(c * ~pos[order], starts, axis=1)
    below = np.cumsum(m, axis=1) - m
    u = (p * (below + 0.5 * m)).sum(1)
    n1, n0 = p.sum(1), m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n1 > 0) & (n0 > 0), u / (n1 * n0), np.nan)


def _auc_bootstrap(y: np.ndarray, proba: np.ndarray, *, n_boot: int, seed: int,
                   level: float = 0.95) -> tuple[float, float]:
    """``bootstrap_ci(lambda i: _auc(y[i], proba[i]), ...)``: the same resamples (drawn in the
    same order from the same seed) and the same statistic, computed for many resamples at once
    instead of ranking each one (which took about half of the audit outside its probe units)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    idx = np.stack([rng.integers(0, n, n) for _ in range(n_boot)])
    vals = []
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        part = idx[start:start + chunk]
        b = len(part)
        counts = np.bincount((np.arange(b)[:, None] * n + part).ravel(),
                             minlength=b * n).reshape(b, n).astype(float)
        if proba.shape[1] == 2:
            vals.append(_binary_auc_counts(y == 1, proba[:, 1], counts))
        else:
            vals.append(np.mean([_binary_auc_counts(y == c, proba[:, c], counts)
                                 for c in range(proba.shape[1])], axis=0))
    v = np.concatenate(vals)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def rows_classification(model: str, target: str, probe: str, y: np.ndarray, pred: np.ndarray,
                         proba: np.ndarray, k: int, n_boot: int, seed: int) -> list[dict[str, Any]]:
    chance = classification_chance(y, k)
    fns: dict[str, Callable[[np.ndarray], float]] = {
        "f1": lambda i: _f1(_confusion(y[i], pred[i], k)),
        "balanced_accuracy": lambda i: _bacc(_confusion(y[i], pred[i], k)),
        "roc_auc": lambda i: _auc(y[i], proba[i]),
    }
    rows = []
    for metric, fn in fns.items():
        if metric == "roc_auc":
            lo, hi = _auc_bootstrap(y, proba, n_boot=n_boot, seed=seed)
        else:
            lo, hi = bootstrap_ci(fn, len(y), n_boot=n_boot, seed=seed)
        rows.append(dict(model=model, target=target, probe=probe, metric=metric,
                         value=fn(np.arange(len(y))), ci_low=lo, ci_high=hi, chance=chance[metric]))
    return rows


def codes_of(v: np.ndarray) -> tuple[np.ndarray, int]:
    levels, codes = np.unique(np.asarray(v), return_inverse=True)
    return codes.reshape(-1).astype(np.int64), len(levels)
