"""Balanced accuracy of cross-fitted predictions, and its bootstrap interval over rows and fold
seeds."""

from __future__ import annotations

from typing import Any

import numpy as np

from fairsearch.probes.interval import Interval
from fairsearch.probes.ladder._inputs import check_positive, encode

__all__ = ["balanced_accuracy", "bootstrap_ci"]


def balanced_accuracy(q: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Balanced accuracy over the classes present in ``q`` (codes 0..k-1)."""
    support = np.bincount(q, minlength=k)
    correct = np.bincount(q, weights=(q == pred), minlength=k)
    present = support > 0
    return float(np.mean(correct[present] / support[present]))


def _bacc_resampled(q: np.ndarray, pred: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Balanced accuracy of each resample (row of ``idx``), vectorised."""
    b = idx.shape[0]
    qi = q[idx]
    key = (np.arange(b)[:, None] * k + qi).ravel()
    support = np.bincount(key, minlength=b * k).reshape(b, k)
    hits = (qi == pred[idx]).ravel()
    correct = np.bincount(key, weights=hits, minlength=b * k).reshape(b, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(np.where(support > 0, correct / support, np.nan), axis=1)


def bootstrap_ci(
    q: Any, predictions: Any, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Balanced accuracy of out-of-fold ``predictions`` with a percentile interval.

    ``predictions`` is one array of ``n`` predicted labels or ``R`` of them (``R x n``: the same
    rows cross-fitted with ``R`` different fold seeds). The point estimate is the mean over the
    ``R`` repeats. The interval is a percentile bootstrap of the pooled *mixture*: resample ``b``
    uses repeat ``b mod R`` and draws ``n`` rows with replacement, so the spread of the pooled
    statistics is the within-repeat row-sampling variance plus the between-repeat (probe-fit /
    fold-seed) variance, by the law of total variance. ``n_boot >= 1000`` is recommended.
    """
    preds = np.atleast_2d(np.asarray(predictions))
    codes, k = encode(q, "q")
    if preds.ndim != 2 or preds.shape[1] != codes.size:
        raise ValueError(f"predictions must be (n,) or (R, n) with n={codes.size}, "
                         f"got shape {preds.shape}")
    check_positive("n_boot", n_boot)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    classes = np.unique(np.asarray(q))
    pos = np.searchsorted(classes, preds).clip(0, k - 1)
    preds = np.where(classes[pos] == preds, pos, -1)  # labels q never takes are never right
    rng, n, r = np.random.default_rng(seed), codes.size, preds.shape[0]
    chunk = max(1, 2_000_000 // n)
    stats = []
    for start in range(0, n_boot, chunk):
        reps = np.arange(start, min(start + chunk, n_boot)) % r
        idx = rng.integers(0, n, size=(reps.size, n))
        for rep in np.unique(reps):
            stats.append(_bacc_resampled(codes, preds[rep], idx[reps == rep], k))
    pooled = np.concatenate(stats)
    value = float(np.mean([balanced_accuracy(codes, p, k) for p in preds]))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(pooled, [alpha, 1.0 - alpha])
    return Interval(value, float(low), float(high))
