"""The audit probe ladder: could any network recover a protected attribute ``q`` from ``Z``?

``Z`` is a representation of held-out rows (translated embeddings, or a model's predictions) and
``q`` holds integer class codes of a protected attribute (``K >= 2`` classes, possibly
imbalanced). The metric is balanced accuracy, whose chance level is ``1/K``.

* **Probe families** (:data:`PROBE_FAMILIES`, built only by :func:`make_probe`): majority,
  logistic, mlp, gbt, knn and svm. Every probe is a :class:`~sklearn.model_selection.GridSearchCV`
  over a small grid with a seeded stratified inner CV (``TUNE_FOLDS`` folds) scored by balanced
  accuracy, so every fitted probe carries its *inner-CV* score (``best_score_``) computed on its
  own training rows only. Imbalance: logistic and svm use ``class_weight="balanced"``, mlp
  class-balanced sample weights (so its early stopping tracks balanced accuracy); gbt and knn
  predict ``argmax_k p(k|z) / p(k)``, the balanced-accuracy Bayes rule.
  The svm fits on a stratified subsample of at most ``SVM_MAX_ROWS`` rows (exact RBF kernel, no
  Nystroem approximation); it is scored on every held-out row.
* **Cross-fitting** (:func:`cross_fit`): stratified K-fold over all held-out rows; every row is
  scored exactly once by a probe fitted on the other ``(k-1)/k`` of the rows.
* **Worst case** (:func:`worst_case`): nested selection. In each outer fold the family with the
  best inner-CV score on that fold's training rows is selected, and its predictions on the outer
  fold (never seen by the selection) are kept. The headline is the balanced accuracy of these
  stitched predictions, so picking the luckiest family on the scored rows (the winner's curse of
  "max over families") cannot inflate it.
* **Intervals** (:func:`bootstrap_ci`): see its docstring (row bootstrap pooled over fold seeds).
* **Floor** (:func:`floor_from_labels`): cross-fitted balanced accuracy of predicting ``q`` from a
  categorical control label (or a model's control prediction) alone. Leakage is judged against
  this floor, not against chance.
* **MDL** (:func:`online_code_length`): online (prequential) code length of ``q`` given ``Z``.
* **Engines**: ``engine="sklearn"`` is the reference: every probe fitted on its own with
  scikit-learn. ``engine="batched"`` fits the logistic, mlp and knn families with every fold
  seed x outer fold x inner fold x grid point as one torch model
  (:mod:`fairsearch.probes.batched`); ``engine="auto"`` (the default) batches the
  families whose batched form is the faster on the device (:func:`batched_families`: all three
  on a GPU, none on a CPU, where scikit-learn is the faster), the others stay scikit-learn.
  Majority, gbt and svm are scikit-learn everywhere; gbt always boosts its ``GBT_ROUNDS``
  rounds (its own early stopping, tried, stopped a weakly leaking representation's gbt about
  0.02 balanced accuracy short of the full 60 rounds). Folds, grids, selection and every
  statistic are the same in all engines.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils import resample
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

from fairsearch.probes.names import PROBE_FAMILIES  # the ladder, weakest first

#: Inner folds used to tune each probe's hyper-parameters (and to score it for selection);
#: 2 keeps the whole ladder on n=2000, d=64 well under a minute on 2 cores.
TUNE_FOLDS = 2
#: The svm fits on a stratified subsample of at most this many rows.
SVM_MAX_ROWS = 3000
#: Block ends of the online code, as fractions of the rows (Voita & Titov 2020).
MDL_BLOCKS: tuple[float, ...] = (
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0,
)
#: Weight of the uniform distribution mixed into online-code probabilities (no infinite codes).
MDL_EPS = 1e-4
COLUMNS = ["probe", "metric", "value", "ci_low", "ci_high", "chance", "floor", "selected"]
#: Boosting rounds of the gbt family.
GBT_ROUNDS = 60
Engine = Literal["auto", "batched", "sklearn"]
#: How probes are fitted: ``auto`` (batched in torch where that is faster on the device),
#: ``batched`` (torch for every family with a batched form) or ``sklearn`` (every fit on its own,
#: the reference).
ENGINES: tuple[str, ...] = ("auto", "batched", "sklearn")

__all__ = [
    "COLUMNS", "ENGINES", "GBT_ROUNDS", "MDL_BLOCKS", "PROBE_FAMILIES",
    "SVM_MAX_ROWS", "TUNE_FOLDS", "CrossFit", "Engine", "Interval", "LadderResult", "MDLResult",
    "WorstCase", "batched_families", "bootstrap_ci", "cross_fit", "family_grid", "fit_families",
    "floor_from_labels", "make_probe", "refined_families", "online_code_length", "run_ladder",
    "select_worst", "summarise", "validate_inputs", "worst_case",
]


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile interval (``low``, ``high``)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold output of one family: every row scored once, by a probe that never saw it."""

    family: str
    predictions: np.ndarray  # (n,) class codes 0..K-1
    proba: np.ndarray | None  # (n, K) or None when the probe has no predict_proba
    fold: np.ndarray  # (n,) outer fold of each row
    inner_scores: np.ndarray  # (folds,) inner-CV balanced accuracy on each outer training set
    score: float  # balanced accuracy of ``predictions``


@dataclass(frozen=True)
class WorstCase:
    """Nested-selection worst case: each outer fold scored by the family its inner CV chose."""

    value: float
    selected: tuple[str, ...]  # family chosen in each outer fold
    predictions: np.ndarray
    family_scores: dict[str, float]  # each family's own cross-fitted score (for comparison)

    @property
    def naive_max(self) -> float:
        """Max over families of their own scores: optimistic (the winner's curse)."""
        return max(self.family_scores.values())


@dataclass(frozen=True)
class MDLResult:
    """Online code length of ``q`` given ``Z``, in bits; larger means less information."""

    online_bits: float
    uniform_bits: float
    block_ends: tuple[int, ...]

    @property
    def compression(self) -> float:
        """``uniform_bits / online_bits``; 1 means no information about ``q`` in ``Z``."""
        return self.uniform_bits / self.online_bits


@dataclass(frozen=True)
class LadderResult:
    """Everything :func:`run_ladder` measured; :meth:`to_frame` gives the tidy table."""

    n_rows: int
    n_classes: int
    chance: float
    families: dict[str, Interval]
    worst_case: Interval
    selected: str  # family chosen most often across outer folds and repeats
    selections: tuple[str, ...]
    naive_max: float
    floors: dict[str, Interval]
    mdl: MDLResult | None

    @property
    def floor(self) -> float:
        """Strongest label-only predictor (NaN without a control label)."""
        return max((iv.value for iv in self.floors.values()), default=float("nan"))

    def to_frame(self) -> pd.DataFrame:
        """One row per family, then ``worst_case``, the floors and ``mdl_bits``."""
        ba, rows = "balanced_accuracy", []
        for name, iv in self.families.items():
            rows.append([name, ba, iv.value, iv.low, iv.high, self.chance, self.floor, ""])
        wc = self.worst_case
        rows.append(["worst_case", ba, wc.value, wc.low, wc.high, self.chance, self.floor,
                     self.selected])
        for name, iv in self.floors.items():
            rows.append([name, ba, iv.value, iv.low, iv.high, self.chance, np.nan, ""])
        if self.mdl is not None:
            m, nan = self.mdl, np.nan
            rows.append(["mdl", "mdl_bits", m.online_bits, nan, nan, m.uniform_bits, nan, ""])
            rows.append(["mdl", "compression", m.compression, nan, nan, 1.0, nan, ""])
        return pd.DataFrame(rows, columns=COLUMNS)


# ---------------------------------------------------------------------------- validation
def _encode(q: Any, name: str, n: int | None = None) -> tuple[np.ndarray, int]:
    q = np.asarray(q)
    if q.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class codes, got shape {q.shape}")
    if n is not None and q.shape[0] != n:
        raise ValueError(f"{name} must have one label per row of Z ({n} rows), got {q.shape[0]}")
    if q.dtype.kind == "f" and not np.all(np.isfinite(q) & (q == np.round(q))):
        raise ValueError(f"{name} must hold integer class codes, got non-integer floats")
    if q.dtype.kind not in "iubf":
        raise ValueError(f"{name} must hold integer class codes, got dtype {q.dtype}")
    classes, codes = np.unique(q, return_inverse=True)
    return codes.astype(np.int64), classes.size


def _validate(Z: Any, q: Any, folds: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Check ``Z``/``q``/``folds``; return float ``Z``, codes ``0..K-1`` of ``q`` and ``K``."""
    if not isinstance(folds, int | np.integer) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0 or Z.shape[1] == 0:
        raise ValueError(f"Z must be a non-empty 2-D array of shape (n, d), got shape {Z.shape}")
    bad = int(np.size(Z) - np.count_nonzero(np.isfinite(Z)))
    if bad:
        raise ValueError(f"Z must be finite, got {bad} NaN/inf entries; allowed: finite floats")
    codes, k = _encode(q, "q", Z.shape[0])
    if k < 2:
        raise ValueError(f"q must hold at least 2 classes, got 1 class ({np.unique(q)[0]!r})")
    n = Z.shape[0]
    if n < folds * k:
        raise ValueError(
            f"Z has {n} rows, fewer than folds x classes = {folds} x {k} = {folds * k}; "
            "need at least that many rows (or fewer folds)"
        )
    counts = np.bincount(codes, minlength=k)
    if counts.min() < folds:
        raise ValueError(
            f"every class of q needs at least folds={folds} rows; the smallest has "
            f"{int(counts.min())}"
        )
    return Z, codes, k


def validate_inputs(Z: Any, q: Any, folds: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The checks of :func:`run_ladder` on ``Z``, ``q`` and ``folds``: float ``Z``, the codes
    ``0..K-1`` of ``q`` and ``K`` (for :func:`fit_families` and :func:`summarise`)."""
    return _validate(Z, q, folds)


def _check_families(families: Sequence[str]) -> tuple[str, ...]:
    fams = tuple(families)
    unknown = [f for f in fams if f not in PROBE_FAMILIES]
    if not fams or unknown or len(set(fams)) != len(fams):
        raise ValueError(
            f"families must be distinct names from {list(PROBE_FAMILIES)}, got {list(fams)}"
        )
    return fams


def _check_engine(engine: Any) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")


def _check_positive(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# ---------------------------------------------------------------------------- meta-estimators
class _Balanced(ClassifierMixin, BaseEstimator):
    """Make a classifier target balanced accuracy. ``mode="prior"``: predict
    ``argmax_k p(k|x) / p(k)`` (the balanced-accuracy Bayes rule); ``mode="weights"``: fit with
    class-balanced sample weights (passed as ``weight_key``); ``mode="none"``: plain. Also caps
    a ``n_neighbors`` parameter at the number of training rows."""

    def __init__(self, estimator: Any, mode: str = "prior",
                 weight_key: str = "sample_weight") -> None:
        self.estimator = estimator
        self.mode = mode
        self.weight_key = weight_key

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Balanced:
        est = clone(self.estimator)
        params = est.get_params()
        for key in [k for k in params if k.endswith("n_neighbors")]:
            est.set_params(**{key: min(params[key], len(y))})
        fit_params = {}
        if self.mode == "weights":
            fit_params[self.weight_key] = compute_sample_weight("balanced", y)
        self.estimator_ = est.fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        counts = np.array([np.sum(y == c) for c in self.classes_], dtype=float)
        self.prior_ = counts / counts.sum()
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.mode != "prior":
            return self.estimator_.predict(X)
        proba = self.estimator_.predict_proba(X) / self.prior_
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict_proba(X)


class _Subsampled(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on a stratified random subsample of at most ``max_rows`` rows."""

    def __init__(self, estimator: Any, max_rows: int = SVM_MAX_ROWS, random_state: int = 0):
        self.estimator = estimator
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Subsampled:
        if len(y) > self.max_rows:
            X, y = resample(X, y, replace=False, n_samples=self.max_rows, stratify=y,
                            random_state=self.random_state)
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict_proba(X)


# ---------------------------------------------------------------------------- probes
def _family(name: str, seed: int, balanced: bool) -> tuple[Any, dict[str, list[Any]]]:
    """Untuned estimator of a family (default = first grid point) and its small grid."""
    cw = "balanced" if balanced else None
    if name == "majority":
        return DummyClassifier(strategy="most_frequent"), {}
    if name == "logistic":
        est = LogisticRegression(C=0.05, class_weight=cw, max_iter=1000)
        return make_pipeline(StandardScaler(), est), {"logisticregression__C": [0.05, 1.0]}
    if name == "mlp":
        mlp = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-4, early_stopping=True,
                            max_iter=200, n_iter_no_change=8, learning_rate_init=3e-3,
                            random_state=seed)
        # Balanced sample weights: early stopping then scores (weighted) balanced accuracy.
        est = _Balanced(make_pipeline(StandardScaler(), mlp), "weights" if balanced else "none",
                        weight_key="mlpclassifier__sample_weight")
        return est, {"estimator__mlpclassifier__hidden_layer_sizes": [(64,), (128,), (64, 64)],
                     "estimator__mlpclassifier__alpha": [1e-4, 1e-1]}
    if name == "gbt":
        # No class_weight: sample weights make sklearn's histogram binning ~20x slower.
        hgb = HistGradientBoostingClassifier(max_iter=GBT_ROUNDS, learning_rate=0.15,
                                             max_leaf_nodes=15, early_stopping=False,
                                             random_state=seed)
        return _Balanced(hgb, "prior" if balanced else "none"), {}
    if name == "knn":
        est = _Balanced(make_pipeline(StandardScaler(), KNeighborsClassifier(15)),
                        "prior" if balanced else "none")
        return est, {"estimator__kneighborsclassifier__n_neighbors": [15, 5, 45]}
    if name == "svm":
        svc = make_pipeline(StandardScaler(), SVC(C=1.0, class_weight=cw))
        est = _Subsampled(svc, max_rows=SVM_MAX_ROWS, random_state=seed)
        return est, {"estimator__svc__C": [1.0, 0.1, 10.0]}
    raise ValueError(f"probe family must be one of {list(PROBE_FAMILIES)}, got {name!r}")


def family_grid(name: str) -> list[dict[str, Any]]:
    """The candidates of ``name``'s grid, in ``GridSearchCV``'s order (``[{}]`` for a family
    with a single point)."""
    return list(ParameterGrid(_family(name, 0, True)[1]))


def make_probe(name: str, seed: int = 0, *, balanced: bool = True, tune: bool = True) -> Any:
    """The only probe factory: an unfitted sklearn classifier of family ``name``.

    With ``tune`` (default) it is a ``GridSearchCV`` over the family's small grid (mlp: hidden
    layers (64,), (128,), (64, 64) x weight decay 1e-4, 0.1; knn: k in 5, 15, 45; svm: C in 0.1,
    1, 10; logistic: C in 0.05, 1; majority and gbt: a single point), stratified
    ``TUNE_FOLDS``-fold inner CV seeded by ``seed``, scored by balanced accuracy and refit on all
    its rows; ``best_score_`` is then the inner-CV score used for family selection. Without
    ``tune`` the family's default estimator is returned. ``balanced=False`` drops the class
    weighting / prior correction (for calibrated code lengths).
    """
    est, grid = _family(name, seed, balanced)
    if not tune:
        return est
    cv = StratifiedKFold(TUNE_FOLDS, shuffle=True, random_state=seed)
    return GridSearchCV(est, grid, cv=cv, scoring="balanced_accuracy", refit=True)


# ---------------------------------------------------------------------------- scoring
def _bacc(q: np.ndarray, pred: np.ndarray, k: int) -> float:
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
    codes, k = _encode(q, "q")
    if preds.ndim != 2 or preds.shape[1] != codes.size:
        raise ValueError(f"predictions must be (n,) or (R, n) with n={codes.size}, "
                         f"got shape {preds.shape}")
    _check_positive("n_boot", n_boot)
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
    value = float(np.mean([_bacc(codes, p, k) for p in preds]))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(pooled, [alpha, 1.0 - alpha])
    return Interval(value, float(low), float(high))


# ---------------------------------------------------------------------------- cross-fitting
def _folds(codes: np.ndarray, folds: int, seed: int) -> np.ndarray:
    fold = np.empty(codes.size, dtype=np.int64)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for j, (_, test) in enumerate(splitter.split(np.zeros(codes.size), codes)):
        fold[test] = j
    return fold


def _fit_fold(Z: np.ndarray, codes: np.ndarray, train: np.ndarray, family: str,
              seed: int) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / tiny-class notices of the inner CV
        return make_probe(family, seed).fit(Z[train], codes[train])


def _cross_fit(Z: np.ndarray, codes: np.ndarray, k: int, family: str, fold: np.ndarray,
               seed: int) -> CrossFit:
    n, folds = codes.size, int(fold.max()) + 1
    pred = np.empty(n, dtype=np.int64)
    proba: np.ndarray | None = np.zeros((n, k))
    inner = np.empty(folds)
    for j in range(folds):
        test = fold == j
        probe = _fit_fold(Z, codes, ~test, family, seed)
        inner[j] = probe.best_score_
        pred[test] = probe.predict(Z[test])
        if proba is not None and hasattr(probe, "predict_proba"):
            proba[np.ix_(test, probe.classes_)] = probe.predict_proba(Z[test])
        else:
            proba = None
    return CrossFit(family, pred, proba, fold, inner, _bacc(codes, pred, k))


def _batched(Z: np.ndarray, codes: np.ndarray, k: int, family: str,
             folds: Sequence[np.ndarray], seeds: Sequence[int], device: Any,
             n_threads: int | None) -> list[CrossFit]:
    """:func:`_cross_fit` for every fold assignment at once, the fits batched in torch."""
    from fairsearch.probes.batched import batched_cross_fits

    fits = batched_cross_fits(Z, codes, k, family, folds, seeds, family_grid(family),
                              tune_folds=TUNE_FOLDS, device=device, n_threads=n_threads)
    return [CrossFit(family, f.predictions, f.proba, fold, f.inner_scores,
                     _bacc(codes, f.predictions, k)) for f, fold in zip(fits, folds, strict=True)]


def batched_families(engine: Engine = "auto", device: Any = None) -> tuple[str, ...]:
    """The families ``engine`` fits as batched torch models on ``device`` (default: a GPU when
    there is one). ``auto`` batches on a GPU only: on a CPU scikit-learn is the faster for all
    three (measured on the main job, one thread per unit: lbfgs logistic 0.7 s against 6.2 s
    for one batched Newton-CG, tree-searched kNN 1.1 s against 3.1 s for all-pairs distances,
    per representation; the mlp 5.3 s against 8.9 s per fold seed, now that the batched mlp
    replays scikit-learn's float64 trajectory), and both give the same fits."""
    from fairsearch.probes.batched import BATCHED_FAMILIES, default_device

    if engine == "sklearn":
        return ()
    if engine == "batched":
        return BATCHED_FAMILIES
    dev = _torch_device(device) if device is not None else default_device()
    return BATCHED_FAMILIES if dev.type == "cuda" else ()


def _torch_device(device: Any) -> Any:
    import torch

    return torch.device(device)


def _uses_batch(family: str, engine: str, device: Any = None) -> bool:
    return family in batched_families(engine, device)  # type: ignore[arg-type]


def cross_fit(Z: Any, q: Any, family: str, *, folds: int = 5, seed: int = 0,
              n_threads: int | None = 1, engine: Engine = "auto",
              device: Any = None) -> CrossFit:
    """Out-of-fold predictions of ``family`` for every row (stratified ``folds``-fold, seeded).

    Each row is predicted exactly once, by a probe fitted on the other ``(folds-1)/folds`` rows.
    Predictions are the codes ``0..K-1`` of ``np.unique(q)``.
    """
    Z, codes, k = _validate(Z, q, folds)
    _check_families([family])
    _check_engine(engine)
    fold = _folds(codes, folds, seed)
    if _uses_batch(family, engine, device):
        return _batched(Z, codes, k, family, [fold], [seed], device, n_threads)[0]
    with threadpool_limits(n_threads):
        return _cross_fit(Z, codes, k, family, fold, seed)


# ---------------------------------------------------------------------------- worst case
def _select(fits: dict[str, CrossFit], codes: np.ndarray, k: int) -> WorstCase:
    """Per outer fold, keep the family with the best inner-CV score on that fold's train rows."""
    names = list(fits)
    fold = fits[names[0]].fold
    inner = np.stack([fits[f].inner_scores for f in names])  # (families, folds)
    chosen = np.argmax(inner, axis=0)  # first max: ties go to the weaker family
    pred = np.empty_like(codes)
    for j, f in enumerate(chosen):
        pred[fold == j] = fits[names[f]].predictions[fold == j]
    scores = {f: fit.score for f, fit in fits.items()}
    return WorstCase(_bacc(codes, pred, k), tuple(names[f] for f in chosen), pred, scores)


def worst_case(Z: Any, q: Any, *, families: Sequence[str] = PROBE_FAMILIES, folds: int = 5,
               seed: int = 0, n_threads: int | None = 1, engine: Engine = "auto",
               device: Any = None) -> WorstCase:
    """Nested-selection worst case over ``families`` (no winner's curse).

    All families are cross-fitted on the same outer folds. In outer fold ``j`` the family with
    the highest inner-CV balanced accuracy on the training rows of ``j`` (each probe's own
    ``best_score_``) is selected, and its predictions on fold ``j`` are kept; the headline is the
    balanced accuracy of those stitched predictions. ``family_scores`` / ``naive_max`` give each
    family's own score and their (optimistic) maximum for comparison.
    """
    Z, codes, k = _validate(Z, q, folds)
    fams = _check_families(families)
    _check_engine(engine)
    run = fit_families(Z, codes, k, fams, folds, 1, seed, engine=engine, device=device,
                       n_threads=n_threads)[0]
    return _select(run, codes, k)


def select_worst(fits: Sequence[CrossFit], q: Any) -> WorstCase:
    """The nested selection of :func:`worst_case` over cross-fits already made, one per family
    (e.g. by :func:`cross_fit` with a different ``engine`` per family). They must share their
    outer folds (the same ``folds`` and ``seed``); ties go to the earlier fit."""
    codes, k = _encode(q, "q")
    fits = list(fits)
    names = _check_families([f.family for f in fits])
    if any(f.predictions.shape != codes.shape for f in fits):
        raise ValueError(f"every cross-fit must score the {codes.size} rows of q")
    if any(not np.array_equal(f.fold, fits[0].fold) for f in fits):
        raise ValueError("the cross-fits must share their outer folds (same folds and seed)")
    return _select(dict(zip(names, fits, strict=True)), codes, k)


# ---------------------------------------------------------------------------- floor
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


def _floor(codes: np.ndarray, y: Any, k: int, name: str, folds: int, repeats: int,
           n_boot: int, seed: int) -> Interval:
    ycodes, _ = _encode(y, name, codes.size)
    preds = [_floor_predictions(codes, ycodes, k, _folds(codes, folds, seed + r))
             for r in range(repeats)]
    return bootstrap_ci(codes, np.stack(preds), n_boot=n_boot, seed=seed)


def floor_from_labels(q: Any, y: Any, *, folds: int = 5, repeats: int = 3, n_boot: int = 1000,
                      seed: int = 0) -> Interval:
    """Balanced accuracy of predicting ``q`` from the categorical ``y`` alone (the floor).

    ``y`` is a control label or a model's control prediction (integer codes). The rule (per-``y``
    argmax of ``p(y|k)``) is cross-fitted on stratified folds, repeated over ``repeats`` fold
    seeds, with the interval of :func:`bootstrap_ci`. Leakage is judged against this floor.
    """
    codes, k = _encode(q, "q")
    _validate(np.zeros((codes.size, 1)), codes, folds)
    _check_positive("repeats", repeats)
    return _floor(codes, y, k, "y", folds, repeats, n_boot, seed)


# ---------------------------------------------------------------------------- MDL
def _block_bits(Zt: np.ndarray, qt: np.ndarray, Zb: np.ndarray, qb: np.ndarray, k: int,
                seed: int) -> float:
    """Bits to send ``qb`` given ``Zb`` with a probe fitted on the previous rows ``(Zt, qt)``."""
    if np.unique(qt).size < 2:  # no probe can be fitted: Laplace-smoothed class frequencies
        p = (np.bincount(qt, minlength=k) + 1.0) / (qt.size + k)
        return float(-np.sum(np.log2(p[qb])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = make_probe("logistic", seed, balanced=False, tune=False).fit(Zt, qt)
    proba = np.zeros((qb.size, k))
    proba[:, probe.classes_] = probe.predict_proba(Zb)
    proba = (1.0 - MDL_EPS) * proba + MDL_EPS / k
    return float(-np.sum(np.log2(proba[np.arange(qb.size), qb])))


def online_code_length(Z: Any, q: Any, *, seed: int = 0, blocks: Sequence[float] = MDL_BLOCKS,
                       n_threads: int | None = 1) -> MDLResult:
    """Online (prequential) code length of ``q`` given ``Z`` in bits (Voita & Titov, 2020).

    Rows are put in a seeded random order and cut at ``ceil(f * n)`` for each fraction ``f`` of
    ``blocks`` (default 0.1%, 0.2%, ..., 6.25%, 12.5%, 25%, 50%, 100%). The first block is sent
    with the uniform code (``n1 log2 K`` bits); each later block is sent with ``-log2 p(q|z)``
    of an unweighted logistic probe fitted on all earlier rows (probabilities mixed with
    ``MDL_EPS`` of uniform). ``compression = uniform_bits / online_bits``.
    """
    Z, codes, k = _validate(Z, q, 2)
    fr = np.asarray(blocks, dtype=float)
    if fr.ndim != 1 or fr.size == 0 or np.any((fr <= 0) | (fr > 1)) or np.any(np.diff(fr) <= 0):
        raise ValueError(f"blocks must be increasing fractions in (0, 1], got {list(blocks)}")
    n = codes.size
    ends = sorted({max(1, int(np.ceil(f * n))) for f in fr} | {n})
    order = np.random.default_rng(seed).permutation(n)
    Z, codes = Z[order], codes[order]
    bits = ends[0] * np.log2(k)
    with threadpool_limits(n_threads):
        for a, b in pairwise(ends):
            bits += _block_bits(Z[:a], codes[:a], Z[a:b], codes[a:b], k, seed)
    return MDLResult(float(bits), float(n * np.log2(k)), tuple(ends))


# ---------------------------------------------------------------------------- entry point
def _task(Z: np.ndarray, codes: np.ndarray, k: int, family: str, folds: int, seed: int,
          n_threads: int | None) -> CrossFit:
    with threadpool_limits(n_threads):
        return _cross_fit(Z, codes, k, family, _folds(codes, folds, seed), seed)


def fit_families(Z: np.ndarray, codes: np.ndarray, k: int, fams: Sequence[str], folds: int,
                 repeats: int, seed: int, *, n_jobs: int = 1, n_threads: int | None = 1,
                 engine: Engine = "auto", device: Any = None
                 ) -> list[dict[str, CrossFit]]:
    """Cross-fit every family for every repeat ``r`` (fold seed ``seed + r``) on validated
    inputs (``codes`` 0..k-1). Batched families fit all repeats as one model; the others run in
    ``n_jobs`` processes of ``n_threads`` BLAS/OpenMP threads each. Families come back in the
    order of ``fams``."""
    runs: list[dict[str, CrossFit]] = [{} for _ in range(repeats)]
    done: dict[tuple[int, str], CrossFit] = {}
    batched = batched_families(engine, device)
    jobs = [(r, f) for r in range(repeats) for f in fams if f not in batched]
    fits = Parallel(n_jobs=n_jobs)(
        delayed(_task)(Z, codes, k, f, folds, seed + r, n_threads) for r, f in jobs
    )
    done.update(zip(jobs, fits, strict=True))
    for f in fams:
        if f in batched:
            fold_sets = [_folds(codes, folds, seed + r) for r in range(repeats)]
            seeds = [seed + r for r in range(repeats)]
            for r, fit in enumerate(_batched(Z, codes, k, f, fold_sets, seeds, device,
                                             n_threads)):
                done[(r, f)] = fit
    for r in range(repeats):
        for f in fams:
            runs[r][f] = done[(r, f)]
    return runs


def run_ladder(
    Z: Any, q: Any, *, y: Any = None, y_pred: Any = None,
    families: Sequence[str] = PROBE_FAMILIES, folds: int = 5, repeats: int = 3,
    n_boot: int = 1000, seed: int = 0, mdl: bool = True, n_jobs: int = 1,
    n_threads: int | None = 1, engine: Engine = "auto", device: Any = None,
) -> LadderResult:
    """Run the whole ladder: every family cross-fitted ``repeats`` times (fold seeds ``seed + r``),
    the nested worst case per repeat, pooled bootstrap intervals (:func:`bootstrap_ci`), the
    floors from ``y`` / ``y_pred`` and the online code length. scikit-learn fits run in
    ``n_jobs`` processes, each limited to ``n_threads`` BLAS/OpenMP threads; the families of
    :func:`batched_families` (``engine`` on ``device``, default a GPU when there is one) run as
    batched torch models."""
    Z, codes, k = _validate(Z, q, folds)
    fams = _check_families(families)
    _check_positive("repeats", repeats)
    _check_positive("n_boot", n_boot)
    _check_positive("n_jobs", n_jobs)
    _check_engine(engine)
    runs = fit_families(Z, codes, k, fams, folds, repeats, seed, n_jobs=n_jobs,
                        n_threads=n_threads, engine=engine, device=device)
    return summarise(Z, codes, k, runs, y=y, y_pred=y_pred, folds=folds, n_boot=n_boot,
                     seed=seed, mdl=mdl, n_threads=n_threads)


def refined_families(run: dict[str, CrossFit], codes: np.ndarray, k: int, *,
                     n_boot: int = 1000, seed: int = 0) -> tuple[str, ...]:
    """Successive halving across families, from one repeat's cross-fits: the families worth
    another fold seed. A family is dropped only when its upper interval lies below the lower
    interval of that repeat's nested worst case (a leak that strong is already found by another
    family, so this one could only be selected by a fluke) *and* that repeat's selection chose
    it in no outer fold. The second rule keeps the selection pool the same on every fold seed:
    a family never chosen can leave an argmax without changing it, so the first repeat's worst
    case is the one it would be among the kept families alone, and every later repeat selects
    among those same families. The others, in order, are kept."""
    wc = _select(run, codes, k)
    head = bootstrap_ci(codes, wc.predictions, n_boot=n_boot, seed=seed)
    chosen = set(wc.selected)
    return tuple(f for f, fit in run.items()
                 if f in chosen
                 or bootstrap_ci(codes, fit.predictions, n_boot=n_boot, seed=seed).high
                 >= head.low)


def summarise(Z: np.ndarray, codes: np.ndarray, k: int, runs: Sequence[dict[str, CrossFit]], *,
              y: Any = None, y_pred: Any = None, folds: int = 5, n_boot: int = 1000,
              seed: int = 0, mdl: bool = True, n_threads: int | None = 1) -> LadderResult:
    """The ladder's statistics from cross-fits already made (one dict of families per repeat):
    intervals, the nested worst case, floors and MDL, exactly as :func:`run_ladder`. A later
    repeat may lack families (:func:`refined_families` dropped them): a family's interval then
    pools the repeats it has, and that repeat's worst case selects among the families it has."""
    fams = tuple(runs[0])
    repeats = len(runs)
    code_length = online_code_length(Z, codes, seed=seed, n_threads=n_threads) if mdl else None
    ci = {f: bootstrap_ci(codes, np.stack([run[f].predictions for run in runs if f in run]),
                          n_boot=n_boot, seed=seed) for f in fams}
    wcs = [_select(run, codes, k) for run in runs]
    head = bootstrap_ci(codes, np.stack([wc.predictions for wc in wcs]), n_boot=n_boot, seed=seed)
    selections = tuple(s for wc in wcs for s in wc.selected)
    floors = {f"floor_{name}": _floor(codes, lab, k, name, folds, repeats, n_boot, seed)
              for name, lab in (("y", y), ("y_pred", y_pred)) if lab is not None}
    naive = float(np.mean([wc.naive_max for wc in wcs]))
    return LadderResult(codes.size, k, 1.0 / k, ci, head, Counter(selections).most_common(1)[0][0],
                        selections, naive, floors, code_length)
