"""The worst case over probe kinds, by nested selection (no winner's curse).

In each outer fold the kind with the best inner-CV score on that fold's training rows is
selected, and its predictions on the outer fold (never seen by the selection) are kept. The
headline is the balanced accuracy of these stitched predictions, so picking the luckiest kind on
the scored rows (the winner's curse of "max over kinds") cannot inflate it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fairsearch.probes.ladder._crossfit import CrossFit, fit_kinds
from fairsearch.probes.ladder._inputs import (
    Engine,
    check_engine,
    check_kinds,
    encode,
    validate_inputs,
)
from fairsearch.probes.ladder._scoring import balanced_accuracy, bootstrap_ci
from fairsearch.probes.registry import PROBE_KINDS

__all__ = ["WorstCase", "nested_selection", "refined_kinds", "select_worst", "worst_case"]


@dataclass(frozen=True)
class WorstCase:
    """Nested-selection worst case: each outer fold scored by the kind its inner CV chose."""

    value: float
    selected: tuple[str, ...]  # kind chosen in each outer fold
    predictions: np.ndarray
    kind_scores: dict[str, float]  # each kind's own cross-fitted score (for comparison)

    @property
    def naive_max(self) -> float:
        """Max over kinds of their own scores: optimistic (the winner's curse)."""
        return max(self.kind_scores.values())


def nested_selection(fits: dict[str, CrossFit], codes: np.ndarray, k: int) -> WorstCase:
    """Per outer fold, keep the kind with the best inner-CV score on that fold's train rows."""
    names = list(fits)
    fold = fits[names[0]].fold
    inner = np.stack([fits[f].inner_scores for f in names])  # (kinds, folds)
    chosen = np.argmax(inner, axis=0)  # first max: ties go to the weaker kind
    pred = np.empty_like(codes)
    for j, f in enumerate(chosen):
        pred[fold == j] = fits[names[f]].predictions[fold == j]
    scores = {f: fit.score for f, fit in fits.items()}
    return WorstCase(balanced_accuracy(codes, pred, k), tuple(names[f] for f in chosen), pred,
                     scores)


def worst_case(Z: Any, q: Any, *, kinds: Sequence[str] = PROBE_KINDS, folds: int = 5,
               seed: int = 0, n_threads: int | None = 1, engine: Engine = "auto",
               device: Any = None) -> WorstCase:
    """Nested-selection worst case over ``kinds`` (no winner's curse).

    All kinds are cross-fitted on the same outer folds. In outer fold ``j`` the kind with the
    highest inner-CV balanced accuracy on the training rows of ``j`` (each probe's own
    ``best_score_``) is selected, and its predictions on fold ``j`` are kept; the headline is the
    balanced accuracy of those stitched predictions. ``kind_scores`` / ``naive_max`` give each
    kind's own score and their (optimistic) maximum for comparison.
    """
    Z, codes, k = validate_inputs(Z, q, folds)
    names = check_kinds(kinds)
    check_engine(engine)
    run = fit_kinds(Z, codes, k, names, folds, 1, seed, engine=engine, device=device,
                    n_threads=n_threads)[0]
    return nested_selection(run, codes, k)


def select_worst(fits: Sequence[CrossFit], q: Any) -> WorstCase:
    """The nested selection of :func:`worst_case` over cross-fits already made, one per kind
    (e.g. by :func:`~fairsearch.probes.ladder.cross_fit` with a different ``engine`` per kind).
    They must share their outer folds (the same ``folds`` and ``seed``); ties go to the earlier
    fit."""
    codes, k = encode(q, "q")
    fits = list(fits)
    names = check_kinds([f.kind for f in fits])
    if any(f.predictions.shape != codes.shape for f in fits):
        raise ValueError(f"every cross-fit must score the {codes.size} rows of q")
    if any(not np.array_equal(f.fold, fits[0].fold) for f in fits):
        raise ValueError("the cross-fits must share their outer folds (same folds and seed)")
    return nested_selection(dict(zip(names, fits, strict=True)), codes, k)


def refined_kinds(run: dict[str, CrossFit], codes: np.ndarray, k: int, *,
                  n_boot: int = 1000, seed: int = 0) -> tuple[str, ...]:
    """Successive halving across kinds, from one repeat's cross-fits: the kinds worth another
    fold seed. A kind is dropped only when its upper interval lies below the lower interval of
    that repeat's nested worst case (a leak that strong is already found by another kind, so
    this one could only be selected by a fluke) *and* that repeat's selection chose it in no
    outer fold. The second rule keeps the selection pool the same on every fold seed: a kind
    never chosen can leave an argmax without changing it, so the first repeat's worst case is
    the one it would be among the kept kinds alone, and every later repeat selects among those
    same kinds. The others, in order, are kept."""
    wc = nested_selection(run, codes, k)
    head = bootstrap_ci(codes, wc.predictions, n_boot=n_boot, seed=seed)
    chosen = set(wc.selected)
    return tuple(f for f, fit in run.items()
                 if f in chosen
                 or bootstrap_ci(codes, fit.predictions, n_boot=n_boot, seed=seed).ci_high
                 >= head.ci_low)
