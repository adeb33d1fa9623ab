"""The floor: how well ``q`` is predicted from a categorical control label (or a model's control
prediction) alone. Leakage is judged against this floor, not against chance."""

from __future__ import annotations

from typing import Any

import numpy as np

from fairsearch.probes.interval import Interval
from fairsearch.probes.ladder._crossfit import outer_folds
from fairsearch.probes.ladder._inputs import check_positive, encode, validate_inputs
from fairsearch.probes.ladder._scoring import bootstrap_ci

__all__ = ["floor_from_labels", "floor_interval"]


def _floor_predictions(codes: np.ndarray, ycodes: np.ndarray, k: int, fold: np.ndarray
                       ) -> np.ndarray:
    """Cross-fitted label-only rule: ``argmax_k p(y|k)`` (= ``argmax p(k|y)/p(k)``, the
    balanced-accuracy Bayes rule), tables counted on the training folds; unseen ``y`` values get
    the training majority class."""
    m = int(ycodes.max()) + 1
    pred = np.empty_like(codes)
    for j in range(int(fold.max()) + 1):
        train, test = fold != j, fold == j
        table = np.zeros((m, k))
        np.add.at(table, (ycodes[train], codes[train]), 1.0)
        per_class = table.sum(axis=0)
        rule = np.argmax(table / np.maximum(per_class, 1.0), axis=1)
        rule[table.sum(axis=1) == 0] = int(np.argmax(per_class))
        pred[test] = rule[ycodes[test]]
    return pred


def floor_interval(codes: np.ndarray, y: Any, k: int, name: str, folds: int, repeats: int,
                   n_boot: int, seed: int) -> Interval:
    """:func:`floor_from_labels` on validated codes ``0..k-1`` of ``q`` (``name``: the argument
    ``y`` came as, for errors)."""
    ycodes, _ = encode(y, name, codes.size)
    preds = [_floor_predictions(codes, ycodes, k, outer_folds(codes, folds, seed + r))
             for r in range(repeats)]
    return bootstrap_ci(codes, np.stack(preds), n_boot=n_boot, seed=seed)


def floor_from_labels(q: Any, y: Any, *, folds: int = 5, repeats: int = 3, n_boot: int = 1000,
                      seed: int = 0) -> Interval:
    """Balanced accuracy of predicting ``q`` from the categorical ``y`` alone (the floor).

    ``y`` is a control label or a model's control prediction (integer codes). The rule (per-``y``
    argmax of ``p(y|k)``) is cross-fitted on stratified folds, repeated over ``repeats`` fold
    seeds, with the interval of :func:`~fairsearch.probes.ladder.bootstrap_ci`. Leakage is judged
    against this floor.
    """
    codes, k = encode(q, "q")
    validate_inputs(np.zeros((codes.size, 1)), codes, folds)
    check_positive("repeats", repeats)
    return floor_interval(codes, y, k, "y", folds, repeats, n_boot, seed)
