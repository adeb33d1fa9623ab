"""Non-dominated sets, hypervolume and the knee, on a plain ``(trials x objectives)`` loss array.

Every objective is flipped to "minimise" once (:func:`loss_matrix`), then all the work happens on a
plain array, as in Optuna's multi-objective code. Optuna 5 has no public hypervolume or
non-dominated-sort function (only ``optuna._hypervolume`` and private helpers in
``optuna.study``, which we do not import), so both are written here: dominance by a pairwise
comparison, ranks by peeling fronts, hypervolume exactly: a sweep in 2-D, a cumulative-maximum
grid in 3-D (O(n^2)) and the WFG recursion ("A fast way of calculating exact hypervolumes",
While et al. 2012) down to 3-D above that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["REFERENCE_MARGIN", "Direction", "default_reference_point", "hypervolume",
           "hypervolume_curve", "is_pareto_front", "knee_point", "loss_matrix",
           "non_dominated_ranks"]

Direction = Literal["minimize", "maximize"]

#: The default reference point sits this fraction of the observed range beyond the worst value.
REFERENCE_MARGIN = 0.1


def loss_matrix(values: np.ndarray, directions: Sequence[Direction]) -> np.ndarray:
    """``values`` (trials x objectives) with maximised columns negated: smaller is better."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(
            f"values must be (trials x {len(directions)}) for {len(directions)} directions, "
            f"but got shape {values.shape}"
        )
    sign = np.ones(len(directions))
    for i, d in enumerate(directions):
        if d not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', but got {d!r}")
        sign[i] = -1.0 if d == "maximize" else 1.0
    return values * sign


def _dominated(loss: np.ndarray) -> np.ndarray:
    """``True`` where some other row is <= everywhere and < somewhere (duplicates do not)."""
    le = (loss[:, None, :] <= loss[None, :, :]).all(-1)  # le[j, i]: j weakly dominates i
    lt = (loss[:, None, :] < loss[None, :, :]).any(-1)
    return (le & lt).any(0)


def is_pareto_front(loss: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of a loss matrix (ties all stay on the front)."""
    loss = np.asarray(loss, dtype=np.float64)
    return ~_dominated(loss) if len(loss) else np.zeros(0, dtype=bool)


def non_dominated_ranks(loss: np.ndarray) -> np.ndarray:
    """0 for the Pareto front, 1 for the front once it is removed, and so on."""
    loss = np.asarray(loss, dtype=np.float64)
    ranks = np.full(len(loss), -1, dtype=np.int64)
    remaining = np.arange(len(loss))
    rank = 0
    while len(remaining):
        front = is_pareto_front(loss[remaining])
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
        rank += 1
    return ranks


def default_reference_point(loss: np.ndarray, margin: float = REFERENCE_MARGIN) -> np.ndarray:
    """Worst observed loss per objective plus ``margin`` of its range (of ``|worst|`` or 1 if flat)."""
    loss = np.asarray(loss, dtype=np.float64)
    if len(loss) == 0:
        raise ValueError("a reference point needs at least one completed trial, but got none")
    worst, best = loss.max(0), loss.min(0)
    span = worst - best
    span = np.where(span > 0, span, np.maximum(np.abs(worst), 1.0))
    return worst + margin * span


def _hv_2d(front: np.ndarray, ref: np.ndarray) -> float:
    pts = front[np.lexsort((front[:, 1], front[:, 0]))]
    hv, y_prev = 0.0, ref[1]
    for x, y in pts:
        if y < y_prev:
            hv += (ref[0] - x) * (y_prev - y)
            y_prev = y
    return float(hv)


def _hv_3d(front: np.ndarray, ref: np.ndarray) -> float:
    # Grid of cells (x-rank i, y-rank j); the height over a cell is the best z among points with
    # x-rank <= i and y-rank <= j: two cumulative maxima, O(n^2).
    pts = front[np.argsort(front[:, 0], kind="stable")]
    n = len(pts)
    y_rank = np.argsort(np.argsort(pts[:, 1], kind="stable"), kind="stable")
    height = np.zeros((n, n))
    height[np.arange(n), y_rank] = ref[2] - pts[:, 2]
    height = np.maximum.accumulate(np.maximum.accumulate(height, axis=0), axis=1)
    xs, ys = pts[:, 0], np.sort(pts[:, 1])
    dx = np.append(xs[1:], ref[0]) - xs
    dy = np.append(ys[1:], ref[1]) - ys
    return float(dx @ height @ dy)


def _wfg(front: np.ndarray, ref: np.ndarray) -> float:
    if len(front) == 0:
        return 0.0
    if front.shape[1] == 1:
        return float(ref[0] - front[:, 0].min())
    if front.shape[1] == 2:
        return _hv_2d(front, ref)
    if front.shape[1] == 3:
        return _hv_3d(front, ref)
    front = front[np.argsort(front[:, 0])]
    total = 0.0
    for i, p in enumerate(front):
        limited = np.maximum(front[i + 1 :], p)
        limited = np.unique(limited, axis=0)
        total += float(np.prod(ref - p)) - _wfg(limited[is_pareto_front(limited)], ref)
    return total


def hypervolume(loss: np.ndarray, reference_point: np.ndarray) -> float:
    """Volume dominated by ``loss`` rows and bounded by ``reference_point`` (all minimised).

    Rows not strictly better than the reference point in every objective add nothing.
    """
    loss = np.asarray(loss, dtype=np.float64).reshape(-1, len(reference_point))
    ref = np.asarray(reference_point, dtype=np.float64)
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference_point must be finite, but got {ref.tolist()}")
    loss = loss[np.all(loss < ref, axis=1) & np.all(np.isfinite(loss), axis=1)]
    if len(loss) == 0:
        return 0.0
    front = np.unique(loss[is_pareto_front(loss)], axis=0)
    return _wfg(front, ref)


def hypervolume_curve(loss: np.ndarray, reference_point: np.ndarray) -> np.ndarray:
    """Hypervolume of the first ``i + 1`` rows, for every ``i`` (rows in trial order)."""
    loss = np.asarray(loss, dtype=np.float64)
    out = np.zeros(len(loss))
    front = loss[:0]
    ref = np.asarray(reference_point, dtype=np.float64)
    hv = 0.0
    for i, row in enumerate(loss):
        if np.all(row < ref) and not (front <= row).all(1).any():
            # HV(S + p) = HV(S) + vol(box p) - HV(S limited to the box of p)
            hv += float(np.prod(ref - row)) - hypervolume(np.maximum(front, row), ref)
            cand = np.vstack([front, row[None, :]])
            front = cand[is_pareto_front(cand)]
        out[i] = hv
    return out


def knee_point(loss: np.ndarray) -> int:
    """Index of the knee of a front, after scaling each objective to [0, 1] over the front.

    2-D: the point farthest from the line through the two extremes. Otherwise (or with fewer
    than three distinct points): the point closest to the ideal point (the origin after scaling).
    """
    loss = np.asarray(loss, dtype=np.float64)
    if len(loss) == 0:
        raise ValueError("the knee point needs at least one point, but got none")
    lo, hi = loss.min(0), loss.max(0)
    z = (loss - lo) / np.where(hi > lo, hi - lo, 1.0)
    if z.shape[1] == 2 and len(np.unique(z, axis=0)) >= 3:
        a, b = z[np.argmin(z[:, 0])], z[np.argmin(z[:, 1])]
        d = b - a
        dist = np.abs(d[0] * (z[:, 1] - a[1]) - d[1] * (z[:, 0] - a[0])) / np.hypot(*d)
        return int(np.argmax(dist))
    return int(np.argmin(np.linalg.norm(z, axis=1)))

