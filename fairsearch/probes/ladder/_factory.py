"""The only probe factory: each probe kind of the ladder as a scikit-learn classifier.

Every probe is a :class:`~sklearn.model_selection.GridSearchCV` over a small grid with a seeded
stratified inner CV (``TUNE_FOLDS`` folds) scored by balanced accuracy, so every fitted probe
carries its *inner-CV* score (``best_score_``) computed on its own training rows only.
Imbalance: logistic and svm use ``class_weight="balanced"``, mlp class-balanced sample weights
(so its early stopping tracks balanced accuracy); gbt and knn predict ``argmax_k p(k|z) / p(k)``,
the balanced-accuracy Bayes rule. The svm fits on a stratified subsample of at most
``SVM_MAX_ROWS`` rows (exact RBF kernel, no Nystroem approximation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
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

from fairsearch.probes.registry import PROBE_KINDS

__all__ = ["GBT_ROUNDS", "SVM_MAX_ROWS", "TUNE_FOLDS", "kind_grid", "make_probe", "rows_per_class"]

#: Inner folds used to tune each probe's hyper-parameters (and to score it for selection);
#: 2 keeps the whole ladder on n=2000, d=64 well under a minute on 2 cores.
TUNE_FOLDS = 2
#: The svm fits on a stratified subsample of at most this many rows.
SVM_MAX_ROWS = 3000
#: Boosting rounds of the gbt kind.
GBT_ROUNDS = 60


def rows_per_class(kinds: Sequence[str], folds: int) -> int:
    """Rows every class of ``q`` needs so that each probe of ``kinds`` can be cross-fitted over
    ``folds`` outer folds: inside them, each of the ``TUNE_FOLDS`` inner training sets must
    hold 2 rows of every class, 10 for the MLP (its early stopping holds out 10% of them,
    stratified, so at least one row of each class)."""
    innermost = 10 if "mlp" in kinds else 2
    return math.ceil(innermost * folds / (folds - 1) * TUNE_FOLDS / (TUNE_FOLDS - 1))


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


def _kind(name: str, seed: int, balanced: bool) -> tuple[Any, dict[str, list[Any]]]:
    """Untuned estimator of a probe kind (default = first grid point) and its small grid."""
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
    raise ValueError(f"probe kind must be one of {list(PROBE_KINDS)}, got {name!r}")


def kind_grid(name: str, values: Mapping[str, Sequence[Any]] | None = None) -> list[dict[str, Any]]:
    """The candidates of ``name``'s grid, in ``GridSearchCV``'s order (``[{}]`` for a kind
    with a single point). ``values``: a smaller grid, some of the kind's own keys (named as in
    its grid) with values of its own, the other keys at their first value; ``ValueError``
    naming a key or value that is not the kind's."""
    return list(ParameterGrid(_smaller(name, _kind(name, 0, True)[1], values)))


def _smaller(name: str, full: dict[str, list[Any]],
             values: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]]:  # fmt: skip
    """``full`` (a kind's grid), or the smaller grid ``values`` of :func:`kind_grid`, checked."""
    if values is None:
        return full
    for key, vals in values.items():
        if key not in full:
            raise ValueError(f"a {name} probe's grid has the keys {sorted(full)}, but got {key!r}")
        bad = [v for v in vals if v not in full[key]]
        if bad or not vals:
            raise ValueError(f"{key} of a {name} probe must take values from {full[key]}, but got "
                             f"{list(vals)!r}")  # fmt: skip
    return {k: list(values.get(k, v[:1])) for k, v in full.items()}


def make_probe(name: str, seed: int = 0, *, balanced: bool = True, tune: bool = True,
               grid: Mapping[str, Sequence[Any]] | None = None) -> Any:
    """The only probe factory: an unfitted sklearn classifier of probe kind ``name``.

    With ``tune`` (default) it is a ``GridSearchCV`` over the kind's small grid (mlp: hidden
    layers (64,), (128,), (64, 64) x weight decay 1e-4, 0.1; knn: k in 5, 15, 45; svm: C in 0.1,
    1, 10; logistic: C in 0.05, 1; majority and gbt: a single point), stratified
    ``TUNE_FOLDS``-fold inner CV seeded by ``seed``, scored by balanced accuracy and refit on all
    its rows; ``best_score_`` is then the inner-CV score used for the selection among kinds. Without
    ``tune`` the kind's default estimator is returned. ``balanced=False`` drops the class
    weighting / prior correction (for calibrated code lengths). ``grid``: a smaller grid
    (:func:`kind_grid`'s ``values``).
    """
    est, full = _kind(name, seed, balanced)
    if not tune:
        return est
    cv = StratifiedKFold(TUNE_FOLDS, shuffle=True, random_state=seed)
    return GridSearchCV(est, _smaller(name, full, grid), cv=cv, scoring="balanced_accuracy",
                        refit=True)  # fmt: skip
