"""Group-fairness gaps of a model's predictions: one implementation, fast enough to bootstrap.

Each gap is fairlearn's between-groups difference (``max - min`` over groups of a rate); a test
checks they equal ``fairlearn.metrics.demographic_parity_difference`` /
``equalized_odds_difference`` / ``equal_opportunity_difference``, any number of groups. Here they
run on integer codes with ``np.bincount`` so the audit can recompute them on a thousand bootstrap
resamples, and they extend to multi-class predictions (the worst class).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["CRITERIA", "Criterion", "criterion_problem", "criterion_sentence", "demographic_parity_gap",
           "equal_opportunity_gap", "equalized_odds_gap", "group_codes", "rate_gap"]  # fmt: skip

#: What fairness means for a run (``fairness.criterion``; the penalties in
#: :mod:`fairsearch.measures.conditional`): ``independence`` (demographic parity), ``separation``
#: (equalized odds), ``opportunity`` (equal opportunity).
Criterion = Literal["independence", "separation", "opportunity"]
CRITERIA: tuple[str, ...] = ("independence", "separation", "opportunity")
_MEANS = {
    "independence": "q is not recoverable from the prediction (demographic parity)",
    "separation": "q is not recoverable from the prediction given the true label (equalized odds)",
    "opportunity": "q is not recoverable from the prediction given the positive label (equal "
                   "opportunity)",
}  # fmt: skip


def criterion_sentence(criterion: str) -> str:
    """The criterion and what it asks for, as the verdict and the report say it."""
    return f"{criterion}: {_MEANS[criterion]}" if criterion in _MEANS else criterion


def group_codes(q: np.ndarray) -> np.ndarray:
    """Integer group codes ``0..G-1`` of a 1-D or (n, k) protected attribute."""
    q = np.asarray(q)
    _, g = np.unique(q.reshape(len(q), -1), axis=0, return_inverse=True)
    return g.reshape(-1)


def rate_gap(hit: np.ndarray, g: np.ndarray, mask: np.ndarray | None = None) -> float:
    """``max - min`` over groups (among rows in ``mask``) of the mean of the 0/1 array ``hit``."""
    if mask is None:
        mask = np.ones(len(g), dtype=bool)
    tot = np.bincount(g[mask], minlength=g.max() + 1)
    rate = np.bincount(g[mask], weights=hit[mask], minlength=g.max() + 1)[tot > 0] / tot[tot > 0]
    return float(rate.max() - rate.min()) if len(rate) else float("nan")


def _classes(pred: np.ndarray, n_classes: int | None) -> list[int]:
    k = int(n_classes if n_classes is not None else max(2, int(np.max(pred)) + 1))
    return [1] if k == 2 else list(range(k))


def demographic_parity_gap(pred: np.ndarray, q: np.ndarray, *, n_classes: int | None = None) -> float:
    """Largest spread over groups of ``P(pred = c | group)``: class 1 when binary, else every class."""
    pred, g = np.asarray(pred).reshape(-1), group_codes(q)
    return max(rate_gap((pred == c).astype(float), g) for c in _classes(pred, n_classes))


def equalized_odds_gap(y: np.ndarray, pred: np.ndarray, q: np.ndarray, *,
                       n_classes: int | None = None) -> float:  # fmt: skip
    """The larger of the true-positive-rate and false-positive-rate gaps between groups
    (fairlearn's ``equalized_odds_difference``); multi-class: the worst class, one against rest."""
    y, pred, g = np.asarray(y).reshape(-1), np.asarray(pred).reshape(-1), group_codes(q)
    k = n_classes if n_classes is not None else max(2, int(max(np.max(y), np.max(pred))) + 1)
    gaps = []
    for c in _classes(pred, k):
        hit = (pred == c).astype(float)
        gaps += [rate_gap(hit, g, y == c), rate_gap(hit, g, y != c)]
    return max(gaps)


def equal_opportunity_gap(y: np.ndarray, pred: np.ndarray, q: np.ndarray, *,
                          n_classes: int | None = None) -> float:  # fmt: skip
    """The true-positive-rate gap between groups (equal opportunity: fairlearn's
    ``equal_opportunity_difference``); multi-class: the worst class's recall gap."""
    y, pred, g = np.asarray(y).reshape(-1), np.asarray(pred).reshape(-1), group_codes(q)
    k = n_classes if n_classes is not None else max(2, int(max(np.max(y), np.max(pred))) + 1)
    return max(rate_gap((pred == c).astype(float), g, y == c) for c in _classes(pred, k))


def criterion_problem(criterion: str, task: str | None, n_classes: int | None = None) -> str | None:
    """Why ``criterion`` does not suit a dataset of ``task`` with ``n_classes`` target classes
    (``None`` where unknown), or None when it does."""
    if criterion == "independence" or task is None:
        return None
    if task != "classification":
        return (f"`fairness.criterion: {criterion}` conditions on the true label, which needs a "
                f"classification task, but the data's task is {task!r}")  # fmt: skip
    if criterion == "opportunity" and n_classes is not None and n_classes != 2:
        return (f"`fairness.criterion: opportunity` looks within the positive class of a binary "
                f"target, but the target has {n_classes} classes; use `separation`")  # fmt: skip
    return None
