"""Fresh probes on the audit's seeded, stratified audit-train / audit-test split: the control
probe (and its group metrics), probes of the other labels of the same rows, and the transfer of a
probe fitted on the original train embeddings."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fairsearch.analysis.audit.groups import group_metrics
from fairsearch.analysis.audit.metrics import codes_of, rows_classification
from fairsearch.probes.ladder import make_probe

__all__ = ["TransferSource", "fit_probe", "label_rows", "probe_rows", "transfer_probes"]


@dataclass(frozen=True)
class TransferSource:
    """Original TRAIN embeddings and their extra labels (never used by the translator)."""

    X: np.ndarray
    labels: Mapping[str, np.ndarray]


def _regression_probe(name: str, seed: int) -> tuple[BaseEstimator, dict[str, list[Any]]]:
    scaled = StandardScaler()
    if name == "ridge":
        return make_pipeline(scaled, Ridge()), {"ridge__alpha": [0.1, 1.0, 10.0, 100.0]}
    if name == "mlp":
        est = MLPRegressor(hidden_layer_sizes=(64,), max_iter=300, random_state=seed)
        return make_pipeline(scaled, est), {"mlpregressor__alpha": [1e-4, 1e-2]}
    raise ValueError(f"probe must be one of ridge, mlp for a continuous target, but got {name!r}")


def fit_probe(name: str, X: np.ndarray, target: np.ndarray, *, task: str = "classification",
              seed: int = 0) -> BaseEstimator:
    """A fresh probe, tuned on ``(X, target)`` by inner cross-validation.

    Classification probes come from the ladder's factory (:func:`make_probe`); a continuous
    target gets ridge or an MLP regressor tuned by a 3-fold grid search.
    """
    if task == "classification":
        counts = np.unique(target, return_counts=True)[1]
        if len(counts) < 2 or counts.min() < 2:
            raise ValueError(f"probe {name!r} needs >= 2 classes with >= 2 rows each in "
                             f"audit-train, but got class counts {counts.tolist()}")
        est: BaseEstimator = make_probe(name, seed)
    else:
        base, grid = _regression_probe(name, seed)
        est = GridSearchCV(base, grid, cv=3, n_jobs=1, scoring="r2")
    # One thread: the audit runs beside other jobs and OpenMP/BLAS oversubscription is
    # 10-100x slower than serial on these small problems.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, target)
    return est


def probe_rows(model: str, target: str, probes: Sequence[str], Xtr: np.ndarray, ttr: np.ndarray,
                Xte: np.ndarray, tte: np.ndarray, k: int, n_boot: int, seed: int,
                fitted: dict[str, BaseEstimator] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in probes:
        est = fit_probe(name, Xtr, ttr, seed=seed)
        if fitted is not None:
            fitted[name] = est
        proba = np.zeros((len(Xte), k))
        proba[:, est.classes_] = est.predict_proba(Xte)
        rows += rows_classification(model, target, name, tte, est.predict(Xte), proba, k,
                                     n_boot, seed)
    return rows


def transfer_probes(source: TransferSource | None, extras: Mapping[str, np.ndarray] | None,
                     seed: int) -> dict[str, tuple[BaseEstimator, np.ndarray]]:
    """Per extra label the source also carries: a logistic probe fitted on the source's rows
    (once; every representation is scored by the same fit) and the label's levels."""
    out: dict[str, tuple[BaseEstimator, np.ndarray]] = {}
    if source is None:
        return out
    for label in extras or {}:
        if label in source.labels:
            src = source.labels[label]
            levels = np.unique(np.asarray(src))
            out[label] = (fit_probe("logistic", np.asarray(source.X, np.float64),
                                    np.searchsorted(levels, src), seed=seed), levels)
    return out


def label_rows(model: str, X: np.ndarray, tr: np.ndarray, te: np.ndarray, *,
               y: np.ndarray | None, qc: np.ndarray | None,
               extras: Mapping[str, np.ndarray] | None,
               transfer: Mapping[str, tuple[BaseEstimator, np.ndarray]], n_boot: int, seed: int
               ) -> list[dict[str, Any]]:
    """The rows of ``model`` (its representation ``X``) on the labels other than ``q``: a fresh
    logistic control probe on ``y`` and, with the codes ``qc`` of a categorical ``q``, its group
    metrics; a fresh logistic probe of each extra label, and the transfer probe of those the
    source also carries."""
    rows: list[dict[str, Any]] = []
    if y is not None:
        yc, ky = codes_of(y)
        fitted: dict[str, BaseEstimator] = {}
        rows += probe_rows(model, "control", ["logistic"], X[tr], yc[tr], X[te], yc[te], ky,
                           n_boot, seed, fitted)
        if qc is not None:
            ctrl = fitted["logistic"]
            rows += group_metrics(yc[te], ctrl.predict(X[te]), qc[te], model=model,
                                  probe="logistic", n_boot=n_boot, seed=seed)
    for label, values in (extras or {}).items():
        lc, kl = codes_of(values)
        rows += probe_rows(model, label, ["logistic"], X[tr], lc[tr], X[te], lc[te], kl,
                           n_boot, seed)
        if label in transfer:
            est, levels = transfer[label]  # one fit on the train rows, for every model
            codes = np.searchsorted(levels, np.asarray(values)[te])
            proba = np.zeros((len(te), len(levels)))
            proba[:, est.classes_] = est.predict_proba(X[te])
            rows += rows_classification(model, label, "transfer_logistic", codes,
                                        est.predict(X[te]), proba, len(levels), n_boot, seed)
    return rows
