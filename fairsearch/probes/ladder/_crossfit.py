"""Cross-fitting: every row scored once, by a probe of a kind fitted on the other rows.

Stratified K-fold over all held-out rows (the *outer* folds of a fold seed). A kind's fits run
in scikit-learn, or, for the kinds :func:`batched_kinds` names, as one batched torch model for
every fold seed x outer fold x inner fold x grid point (:mod:`fairsearch.probes.batched`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

from fairsearch.probes.ladder._factory import TUNE_FOLDS, kind_grid, make_probe
from fairsearch.probes.ladder._inputs import (
    Engine,
    check_engine,
    check_kinds,
    validate_inputs,
)
from fairsearch.probes.ladder._scoring import balanced_accuracy

__all__ = ["CrossFit", "batched_kinds", "cross_fit", "fit_kinds", "outer_folds"]

#: A smaller tuning grid than a kind's own (``kind_grid``'s ``values``), or None: its own.
Grid = Mapping[str, Sequence[Any]] | None


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold output of one kind: every row scored once, by a probe that never saw it."""

    kind: str
    predictions: np.ndarray  # (n,) class codes 0..K-1
    proba: np.ndarray | None  # (n, K) or None when the probe has no predict_proba
    fold: np.ndarray  # (n,) outer fold of each row
    inner_scores: np.ndarray  # (folds,) inner-CV balanced accuracy on each outer training set
    score: float  # balanced accuracy of ``predictions``


def outer_folds(codes: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The outer fold of each row: stratified ``folds``-fold, shuffled by fold seed ``seed``."""
    fold = np.empty(codes.size, dtype=np.int64)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for j, (_, test) in enumerate(splitter.split(np.zeros(codes.size), codes)):
        fold[test] = j
    return fold


def _fit_fold(Z: np.ndarray, codes: np.ndarray, train: np.ndarray, kind: str,
              seed: int, grid: Grid = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / tiny-class notices of the inner CV
        return make_probe(kind, seed, grid=grid).fit(Z[train], codes[train])


def _cross_fit(Z: np.ndarray, codes: np.ndarray, k: int, kind: str, fold: np.ndarray,
               seed: int, grid: Grid = None) -> CrossFit:
    n, folds = codes.size, int(fold.max()) + 1
    pred = np.empty(n, dtype=np.int64)
    proba: np.ndarray | None = np.zeros((n, k))
    inner = np.empty(folds)
    for j in range(folds):
        test = fold == j
        probe = _fit_fold(Z, codes, ~test, kind, seed, grid)
        inner[j] = probe.best_score_
        pred[test] = probe.predict(Z[test])
        if proba is not None and hasattr(probe, "predict_proba"):
            proba[np.ix_(test, probe.classes_)] = probe.predict_proba(Z[test])
        else:
            proba = None
    return CrossFit(kind, pred, proba, fold, inner, balanced_accuracy(codes, pred, k))


def _batched(Z: np.ndarray, codes: np.ndarray, k: int, kind: str,
             folds: Sequence[np.ndarray], seeds: Sequence[int], device: Any,
             n_threads: int | None, grid: Grid = None) -> list[CrossFit]:
    """:func:`_cross_fit` for every fold assignment at once, the fits batched in torch."""
    from fairsearch.probes.batched import batched_cross_fits

    fits = batched_cross_fits(Z, codes, k, kind, folds, seeds, kind_grid(kind, grid),
                              tune_folds=TUNE_FOLDS, device=device, n_threads=n_threads)
    return [CrossFit(kind, f.predictions, f.proba, fold, f.inner_scores,
                     balanced_accuracy(codes, f.predictions, k))
            for f, fold in zip(fits, folds, strict=True)]


def batched_kinds(engine: Engine = "auto", device: Any = None) -> tuple[str, ...]:
    """The kinds ``engine`` fits as batched torch models on ``device`` (default: a GPU when
    there is one). ``auto`` batches on a GPU only: on a CPU scikit-learn is the faster for all
    three (measured on the main job, one thread per unit: lbfgs logistic 0.7 s against 6.2 s
    for one batched Newton-CG, tree-searched kNN 1.1 s against 3.1 s for all-pairs distances,
    per representation; the mlp 5.3 s against 8.9 s per fold seed, now that the batched mlp
    replays scikit-learn's float64 trajectory), and both give the same fits."""
    from fairsearch.probes.batched import BATCHED_KINDS, default_device

    if engine == "sklearn":
        return ()
    if engine == "batched":
        return BATCHED_KINDS
    dev = _torch_device(device) if device is not None else default_device()
    return BATCHED_KINDS if dev.type == "cuda" else ()


def _torch_device(device: Any) -> Any:
    import torch

    return torch.device(device)


def cross_fit(Z: Any, q: Any, kind: str, *, folds: int = 5, seed: int = 0,
              n_threads: int | None = 1, engine: Engine = "auto",
              device: Any = None, grid: Grid = None) -> CrossFit:
    """Out-of-fold predictions of ``kind`` for every row (stratified ``folds``-fold, seeded).

    Each row is predicted exactly once, by a probe fitted on the other ``(folds-1)/folds`` rows.
    Predictions are the codes ``0..K-1`` of ``np.unique(q)``. ``grid``: a smaller tuning grid
    than the kind's own (:func:`~fairsearch.probes.ladder.kind_grid`'s ``values``).
    """
    Z, codes, k = validate_inputs(Z, q, folds)
    check_kinds([kind])
    check_engine(engine)
    fold = outer_folds(codes, folds, seed)
    if kind in batched_kinds(engine, device):
        return _batched(Z, codes, k, kind, [fold], [seed], device, n_threads, grid)[0]
    with threadpool_limits(n_threads):
        return _cross_fit(Z, codes, k, kind, fold, seed, grid)


def _task(Z: np.ndarray, codes: np.ndarray, k: int, kind: str, folds: int, seed: int,
          n_threads: int | None) -> CrossFit:
    with threadpool_limits(n_threads):
        return _cross_fit(Z, codes, k, kind, outer_folds(codes, folds, seed), seed)


def fit_kinds(Z: np.ndarray, codes: np.ndarray, k: int, kinds: Sequence[str], folds: int,
              repeats: int, seed: int, *, n_jobs: int = 1, n_threads: int | None = 1,
              engine: Engine = "auto", device: Any = None) -> list[dict[str, CrossFit]]:
    """Cross-fit every kind for every repeat ``r`` (fold seed ``seed + r``) on validated
    inputs (``codes`` 0..k-1). Batched kinds fit all repeats as one model; the others run in
    ``n_jobs`` processes of ``n_threads`` BLAS/OpenMP threads each. Kinds come back in the
    order of ``kinds``."""
    done: dict[tuple[int, str], CrossFit] = {}
    batched = batched_kinds(engine, device)
    jobs = [(r, f) for r in range(repeats) for f in kinds if f not in batched]
    fits = Parallel(n_jobs=n_jobs)(
        delayed(_task)(Z, codes, k, f, folds, seed + r, n_threads) for r, f in jobs
    )
    done.update(zip(jobs, fits, strict=True))
    seeds = [seed + r for r in range(repeats)]
    for f in (f for f in kinds if f in batched):
        fold_sets = [outer_folds(codes, folds, s) for s in seeds]
        for r, fit in enumerate(_batched(Z, codes, k, f, fold_sets, seeds, device, n_threads)):
            done[(r, f)] = fit
    return [{f: done[(r, f)] for f in kinds} for r in range(repeats)]
