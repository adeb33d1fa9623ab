"""Independent audits of frozen outputs: a probe ladder, the floor, dependence, group metrics.

The audit never sees training. It takes the outputs of each model on the held-out TEST split
(translated embeddings, or the wrapper's predictions) as named representations over the *same*
rows. For a categorical ``q`` every representation climbs the probe ladder
(:mod:`fairsearch.probes.ladder`): majority, logistic, a tuned MLP, boosted trees, kNN and an
RBF-SVM, each cross-fitted over all held-out rows (5 folds, 2 fold seeds); the headline
``worst_case`` row is the family picked on inner folds and scored on outer ones (no winner's
curse), with a 1,000-resample bootstrap interval that includes the probe-fit variance across fold
seeds; ``mdl_bits`` is the online code length of ``q`` given the representation. The ``floor`` is
what keeping the control task forces a representation to leak: ``q`` predicted from the control
label (and from the original representation's control prediction), on the same rows. Every row
carries its ``chance`` level (balanced accuracy ``1/K``, ROC-AUC 0.5, the same-``q`` rate among
random neighbours for the kNN mix, a permutation mean for CKA/HSIC, 0 for R^2 and the group gaps).
Fresh control probes, group metrics and unseen-label transfer use one seeded, stratified
audit-train / audit-test split. The baseline ("original") and LEACE are representations like any
other.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_predict, train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fairsearch.analysis.audit.progress import AuditProgress
from fairsearch.analysis.audit.units import Executor, SerialExecutor, Settings, Unit, UnitStore
from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.lineage import LINEAGE_FILE, fingerprint, lineage_with
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.measures.fairness import rate_gap
from fairsearch.probes.bound import bound_row
from fairsearch.probes.ladder import (
    ENGINES,
    PROBE_FAMILIES,
    CrossFit,
    Engine,
    fit_families,
    floor_from_labels,
    make_probe,
    refined_families,
    summarise,
    validate_inputs,
)

QKind = Literal["categorical", "continuous"]
#: The probe ladder (``post.probes`` may name a subset; ``majority`` is always added).
PROBES: tuple[str, ...] = PROBE_FAMILIES
COLUMNS = ["model", "target", "probe", "metric", "value", "ci_low", "ci_high", "chance", "floor",
           "selected"]  # fmt: skip
#: Cross-fitting of the ladder: folds over all held-out rows, repeats with new fold seeds.
LADDER_FOLDS, LADDER_REPEATS = 5, 2
#: Rows used for the O(n^2) dependence scores (a seeded subsample above this).
DEPENDENCE_MAX_ROWS = 2000
#: The margin a verdict allows above its reference (the value of
#: :data:`fairsearch.analysis.audit.leakage.MARGIN`); the resolution rows say whether the rows reach it.
RESOLVE_MARGIN = 0.05
#: The array of ``audit_inputs.npz`` that ties it to the files it was collected from: a JSON
#: object, path relative to the run folder -> SHA-256 (``model.pt`` and ``test_repr.npy`` of
#: each retrained seed).
SOURCES = "sources"
#: The files of a completed retrained seed the audit needs (the weights, and what probes see).
SEED_FILES = ("model.pt", "test_repr.npy")
#: The key of the shuffled-q control among the audit's units (never a model of the table).
CONTROL = "(shuffled-q control)"
#: Finished probe units of a run folder's audit (:class:`~fairsearch.analysis.audit.units.UnitStore`).
UNITS_DIR = "audit_units"
#: Families by the cost of a unit, the costliest first (main job, one thread: gbt 14 s, mlp 5 s,
#: knn and logistic 0.5 s; the svm grows with the rows): the order units are submitted in.
_COST_RANK = {"gbt": 0, "svm": 1, "mlp": 2}

__all__ = [
    "COLUMNS", "PROBES", "TransferSource", "audit_inputs", "audit_representations", "bootstrap_ci",
    "classification_chance", "fit_probe", "group_metrics", "knn_mix", "run_audit",
]


@dataclass(frozen=True)
class TransferSource:
    """Original TRAIN embeddings and their extra labels (never used by the translator)."""

    X: np.ndarray
    labels: Mapping[str, np.ndarray]


# ---------------------------------------------------------------------------- probes
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


def _rows_classification(model: str, target: str, probe: str, y: np.ndarray, pred: np.ndarray,
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


def _codes(v: np.ndarray) -> tuple[np.ndarray, int]:
    levels, codes = np.unique(np.asarray(v), return_inverse=True)
    return codes.reshape(-1).astype(np.int64), len(levels)


def _probe_rows(model: str, target: str, probes: Sequence[str], Xtr: np.ndarray, ttr: np.ndarray,
                Xte: np.ndarray, tte: np.ndarray, k: int, n_boot: int, seed: int,
                fitted: dict[str, BaseEstimator] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in probes:
        est = fit_probe(name, Xtr, ttr, seed=seed)
        if fitted is not None:
            fitted[name] = est
        proba = np.zeros((len(Xte), k))
        proba[:, est.classes_] = est.predict_proba(Xte)
        rows += _rows_classification(model, target, name, tte, est.predict(Xte), proba, k,
                                     n_boot, seed)
    return rows


# ---------------------------------------------------------------------------- other audits
def knn_mix(X: np.ndarray, q: np.ndarray, *, k: int = 10, n_boot: int = 200, seed: int = 0,
            model: str = "model") -> dict[str, Any]:
    """Mean fraction of each point's ``k`` nearest neighbours sharing its ``q``, vs the base rate
    ``sum_c n_c (n_c - 1) / (n (n - 1))`` of random neighbours."""
    codes, _ = _codes(q)
    n = len(codes)
    k = min(k, n - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    idx = nn.kneighbors(X, return_distance=False)[:, 1:]
    frac = (codes[idx] == codes[:, None]).mean(1)
    counts = np.bincount(codes)
    base = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    lo, hi = bootstrap_ci(lambda i: float(frac[i].mean()), n, n_boot=n_boot, seed=seed)
    return dict(model=model, target="q", probe=f"knn_mix@{k}", metric="same_q_fraction",
                value=float(frac.mean()), ci_low=lo, ci_high=hi, chance=base)


def _gap(name: str, y: np.ndarray, pred: np.ndarray, g: np.ndarray) -> float:
    """fairlearn's between-groups, worst-case gaps for 0/1 arrays and group codes ``g``."""
    if name == "demographic_parity_difference":
        return rate_gap(pred, g)
    return max(rate_gap(pred, g, y == 1), rate_gap(pred, g, y == 0))


def group_metrics(y_true: np.ndarray, y_pred: np.ndarray, q: np.ndarray, *, model: str,
                  probe: str = "model", n_boot: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """fairlearn group metrics of a control task's predictions (categorical ``q``).

    Demographic-parity and equalized-odds differences (binary tasks; row-bootstrap CIs) and the
    per-group accuracy (MSE for a regression task, e.g. the wrapper's predictions) from
    ``MetricFrame`` with its own bootstrap intervals.
    """
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
    )
    from sklearn.metrics import accuracy_score, mean_squared_error

    y_true, y_pred, q = np.asarray(y_true), np.asarray(y_pred), np.asarray(q).reshape(-1)
    rows: list[dict[str, Any]] = []
    base = dict(model=model, target="control", probe=probe)
    if len(np.unique(np.concatenate([y_true, y_pred]))) <= 2:
        exact = {"demographic_parity_difference": demographic_parity_difference,
                 "equalized_odds_difference": equalized_odds_difference}
        g, _ = _codes(q)
        yt, yp = (y_true == y_true.max()).astype(float), (y_pred == y_true.max()).astype(float)
        for name, fn in exact.items():
            # the value from fairlearn; its bootstrap from the same formula on numpy arrays
            def stat(i: np.ndarray, name: str = name) -> float:
                return _gap(name, yt[i], yp[i], g[i])
            lo, hi = bootstrap_ci(stat, len(q), n_boot=n_boot, seed=seed)
            value = float(fn(y_true, y_pred, sensitive_features=q))
            rows.append(dict(base, metric=name, value=value, ci_low=lo, ci_high=hi, chance=0.0))
    regression = y_true.dtype.kind == "f" and len(np.unique(y_true)) > 10
    name, fn = ("mse", mean_squared_error) if regression else ("accuracy", accuracy_score)
    # the values from fairlearn's MetricFrame; its row bootstrap (resample all rows, the metric
    # per group, percentile interval) vectorised here: MetricFrame's own took ~25 s per model
    mf = MetricFrame(metrics=fn, y_true=y_true, y_pred=y_pred, sensitive_features=q)
    levels = list(mf.by_group.index)
    lo_ci, hi_ci = _group_bootstrap(y_true, y_pred, q, levels, regression, n_boot, seed)
    for i, (g, v) in enumerate(mf.by_group.items()):
        rows.append(dict(base, metric=f"{name}[q={g}]", value=float(v), ci_low=float(lo_ci[i]),
                         ci_high=float(hi_ci[i]), chance=float("nan")))
    return rows


def _group_bootstrap(y_true: np.ndarray, y_pred: np.ndarray, q: np.ndarray, levels: list[Any],
                     regression: bool, n_boot: int, seed: int, level: float = 0.95
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each group's accuracy (or MSE) over ``n_boot`` resamples of all
    rows (a group absent from a resample is left out of that resample)."""
    err = ((y_true.astype(float) - y_pred.astype(float)) ** 2 if regression
           else (y_true == y_pred).astype(float))
    pos = {v: i for i, v in enumerate(levels)}
    g = np.array([pos[v] for v in q.tolist()], dtype=np.int64)
    m, n = len(levels), len(q)
    rng = np.random.default_rng(seed)
    stats = []
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, (b, n))
        key = (np.arange(b)[:, None] * m + g[idx]).ravel()
        count = np.bincount(key, minlength=b * m).reshape(b, m)
        total = np.bincount(key, weights=err[idx].ravel(), minlength=b * m).reshape(b, m)
        with np.errstate(invalid="ignore", divide="ignore"):
            stats.append(np.where(count > 0, total / count, np.nan))
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(np.concatenate(stats), [alpha, 1 - alpha], axis=0)
    return lo, hi


def _continuous_rows(model: str, X: np.ndarray, q: np.ndarray, tr: np.ndarray, te: np.ndarray,
                     n_boot: int, seed: int) -> list[dict[str, Any]]:
    from fairsearch.measures.dependence import cka_score, hsic_score

    rng = np.random.default_rng(seed)
    sub = rng.permutation(len(X))[:DEPENDENCE_MAX_ROWS]
    xs, qs = X[sub], q[sub]
    rows: list[dict[str, Any]] = []
    for name, fn in (("cka", cka_score), ("hsic", hsic_score)):
        null = np.mean([fn(xs, qs[rng.permutation(len(qs))]) for _ in range(3)])
        rows.append(dict(model=model, target="q", probe="kernel", metric=name, value=fn(xs, qs),
                         ci_low=np.nan, ci_high=np.nan, chance=float(null)))
    for name in ("ridge", "mlp"):
        pred = fit_probe(name, X[tr], q[tr], task="regression", seed=seed).predict(X[te])
        def r2(i: np.ndarray, pred: np.ndarray = pred) -> float:
            return float(r2_score(q[te][i], pred[i]))
        lo, hi = bootstrap_ci(r2, len(te), n_boot=n_boot, seed=seed)
        rows.append(dict(model=model, target="q", probe=name, metric="r2",
                         value=r2(np.arange(len(te))), ci_low=lo, ci_high=hi, chance=0.0))
    return rows


# ---------------------------------------------------------------------------- entry point
def audit_representations(
    representations: Mapping[str, np.ndarray],
    q: np.ndarray,
    *,
    y: np.ndarray | None = None,
    q_kind: QKind | None = None,
    probes: Sequence[str] = PROBES,
    extras: Mapping[str, np.ndarray] | None = None,
    transfer_source: TransferSource | None = None,
    n_boot: int = 200,
    seed: int = 0,
    test_size: float = 0.5,
    k_neighbors: int = 10,
    repeats: int = LADDER_REPEATS,
    engine: Engine = "auto",
    halving: bool = True,
    progress: AuditProgress | None = None,
    executor: Executor | None = None,
    store: UnitStore | None = None,
) -> pd.DataFrame:
    """Audit each named representation of the same held-out rows; one tidy row per number.

    ``y``: control labels (classification) for a fresh control probe and its group metrics;
    ``extras``: unseen labels of the same rows; with ``transfer_source`` (original train
    embeddings + those labels), a logistic probe fitted there is scored on every representation.
    ``engine``: how the ladder's probes are fitted (:data:`fairsearch.probes.ladder.ENGINES`);
    ``progress`` is told each unit (representation x family, then the rest of a representation)
    as it starts and finishes (:func:`audit_units` counts them). The representation x family x
    fold seed units (the shuffled-q control's too) run on ``executor`` (default: one after
    another here); with ``store``, finished units are read from it and new ones written to it as
    they finish (resume without refitting). ``halving``: a family whose first fold seed's upper
    interval lies below that seed's worst-case lower interval, and which that seed's selection
    chose in no outer fold, gets no further fold seeds and is in no fold seed's selection
    (:func:`~fairsearch.probes.ladder.refined_families`); each family's ``fold_seeds`` row
    says how many it got.
    """
    q = np.asarray(q)
    n = len(q)
    if not representations:
        raise ValueError("representations must name at least one model, but got none")
    for name, X in representations.items():
        if len(X) != n:
            raise ValueError(f"representation {name!r} has {len(X)} rows but q has {n}")
    if q_kind is None:
        q_kind = _q_kind(q)
    if q_kind not in ("categorical", "continuous"):
        raise ValueError(f"q_kind must be 'categorical' or 'continuous', but got {q_kind!r}")
    qc, kq = _codes(q) if q_kind == "categorical" else (q, 0)
    tr, te = train_test_split(np.arange(n), test_size=test_size, random_state=seed,
                              stratify=qc if q_kind == "categorical" else None)
    rows: list[dict[str, Any]] = []
    floor = np.nan
    if q_kind == "categorical" and y is not None:
        floors = _floor_rows(representations, qc, y, n_boot, seed, repeats)
        floor = floors[0]["value"]
        rows += floors
    families = _families(probes)
    if q_kind == "categorical":
        arrays = {m: validate_inputs(np.asarray(X, dtype=np.float64).reshape(n, -1), qc,
                                     LADDER_FOLDS)[0] for m, X in representations.items()}
        _, qv, k = validate_inputs(next(iter(arrays.values())), qc, LADDER_FOLDS)
        control = {CONTROL: _shuffled(next(iter(arrays.values())), seed)}
        settings = Settings(LADDER_FOLDS, repeats, seed, engine)
        unit_fits, refined = _fit_units({**control, **arrays}, qv, k, families, settings,
                                        executor, store, progress, halving, n_boot)
        rows += _resolution(control[CONTROL], qv, k, _runs(unit_fits, CONTROL, families,
                                                           repeats), n_boot, seed)
    transfer_probes = _transfer_probes(transfer_source, extras, seed)
    for model, X in representations.items():
        X = np.asarray(X, dtype=np.float64).reshape(n, -1)
        if q_kind == "categorical":
            Xv = arrays[model]
            runs = _runs(unit_fits, model, families, repeats)
        if progress is not None:
            progress.start(model, "intervals, MDL, control and other labels")
        if q_kind == "categorical":
            ladder = summarise(Xv, qv, k, runs, folds=LADDER_FOLDS, n_boot=n_boot,
                               seed=seed).to_frame()
            ladder = ladder.assign(model=model, target="q", floor=floor)
            rows += ladder.to_dict("records")
            rows += _fold_seed_rows(model, families, refined[model], repeats)
            rows.append(knn_mix(X[te], qc[te], k=k_neighbors, n_boot=n_boot, seed=seed,
                                model=model))
            # the certified upper bound on any classifier (discrete representations only)
            if (bound := bound_row(model, X, qc, floor=floor)) is not None:
                rows.append(bound)
        else:
            rows += _continuous_rows(model, X, q.astype(np.float64), tr, te, n_boot, seed)
        if y is not None:
            yc, ky = _codes(y)
            fitted: dict[str, BaseEstimator] = {}
            rows += _probe_rows(model, "control", ["logistic"], X[tr], yc[tr], X[te], yc[te], ky,
                                n_boot, seed, fitted)
            if q_kind == "categorical":
                ctrl = fitted["logistic"]
                rows += group_metrics(yc[te], ctrl.predict(X[te]), qc[te], model=model,
                                      probe="logistic", n_boot=n_boot, seed=seed)
        for label, values in (extras or {}).items():
            lc, kl = _codes(values)
            rows += _probe_rows(model, label, ["logistic"], X[tr], lc[tr], X[te], lc[te], kl,
                                n_boot, seed)
            if label in transfer_probes:
                est, levels = transfer_probes[label]  # one fit on the train rows, for every model
                codes = np.searchsorted(levels, np.asarray(values)[te])
                proba = np.zeros((len(te), len(levels)))
                proba[:, est.classes_] = est.predict_proba(X[te])
                rows += _rows_classification(model, label, "transfer_logistic", codes,
                                             est.predict(X[te]), proba, len(levels), n_boot, seed)
        if progress is not None:
            progress.finish()
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["selected"] = table["selected"].astype(object).where(table["selected"].notna(), "")
    return table


def _q_kind(q: np.ndarray) -> QKind:
    return "continuous" if q.dtype.kind == "f" and len(np.unique(q)) > 10 else "categorical"


def _fit_units(arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int,
               families: Sequence[str], settings: Settings, executor: Executor | None,
               store: UnitStore | None, progress: AuditProgress | None, halving: bool,
               n_boot: int) -> tuple[dict[Unit, CrossFit], dict[str, tuple[str, ...]]]:
    """Every representation x family x fold seed unit: from ``store`` when finished before, the
    others from ``executor``, each written to ``store`` as it finishes. The first fold seed of
    every unit runs first; with ``halving``, only the families
    :func:`~fairsearch.probes.ladder.refined_families` keeps get the later ones. Returns the
    fits and, per representation, the families that got every fold seed."""
    fitted: dict[Unit, CrossFit] = {}
    run = executor or SerialExecutor()

    def wave(units: Sequence[Unit]) -> None:
        todo = []
        # the costliest first: units running at once then end together, with no core idle
        # behind a last boosted-trees unit (the order changes no fit)
        for unit in sorted(units, key=lambda u: _COST_RANK.get(u.family, len(_COST_RANK))):
            fit = store.get(arrays[unit.representation], codes, unit, settings) if store else None
            if fit is None:
                todo.append(unit)
            else:
                fitted[unit] = fit
                if progress is not None:
                    progress.finish()
        left = list(todo)
        if left and progress is not None:
            progress.start(left[0].representation, _what(left[0], settings))
        for unit, fit in run.run(arrays, codes, k, todo, settings):
            fitted[unit] = fit
            left.remove(unit)
            if store is not None:
                store.put(arrays[unit.representation], codes, unit, settings, fit)
            if progress is not None:
                progress.finish()
                if left:  # the earliest unit still running or waiting
                    progress.start(left[0].representation, _what(left[0], settings))

    wave([Unit(m, f, 0) for m in arrays for f in families])
    refined: dict[str, tuple[str, ...]] = {}
    for m in arrays:
        first = {f: fitted[Unit(m, f, 0)] for f in families}
        refined[m] = (refined_families(first, codes, k, n_boot=n_boot, seed=settings.seed)
                      if halving and settings.repeats > 1 else tuple(families))
        if progress is not None:
            progress.finish((len(families) - len(refined[m])) * (settings.repeats - 1))
    wave([Unit(m, f, r) for r in range(1, settings.repeats) for m in arrays for f in refined[m]])
    return fitted, refined


def _what(unit: Unit, settings: Settings) -> str:
    return f"{unit.family}, fold seed {unit.repeat + 1}/{settings.repeats}"


def _runs(fits: Mapping[Unit, CrossFit], model: str, families: Sequence[str], repeats: int
          ) -> list[dict[str, CrossFit]]:
    """The ladder's runs of ``model``: per fold seed, the families fitted on it."""
    return [{f: fits[Unit(model, f, r)] for f in families if Unit(model, f, r) in fits}
            for r in range(repeats)]


def _fold_seed_rows(model: str, families: Sequence[str], refined: Sequence[str], repeats: int
                    ) -> list[dict[str, Any]]:
    """How many fold seeds each family was cross-fitted on (``chance`` holds the audit's
    number): fewer for a family successive halving stopped refining."""
    base = dict(model=model, target="q", metric="fold_seeds", ci_low=np.nan, ci_high=np.nan,
                chance=float(repeats), floor=np.nan, selected="")
    return [dict(base, probe=f, value=float(repeats if f in refined else 1)) for f in families]


def _shuffled(X: np.ndarray, seed: int) -> np.ndarray:
    """The rows of ``X`` in a seeded random order: paired with the unshuffled ``q`` they are
    independent of it by construction (the shuffled-q control)."""
    return X[np.random.default_rng(seed + 7919).permutation(len(X))]


def _resolution(X: np.ndarray, codes: np.ndarray, k: int, runs: Sequence[dict[str, CrossFit]],
                n_boot: int, seed: int, margin: float = RESOLVE_MARGIN) -> list[dict[str, Any]]:
    wc = summarise(X, codes, k, runs, folds=LADDER_FOLDS, n_boot=n_boot, seed=seed,
                   mdl=False).worst_case
    half = (wc.high - wc.low) / 2
    need = int(np.ceil(len(codes) * (half / margin) ** 2))
    base = dict(model="resolution", target="q", probe="leak_free", ci_low=np.nan,
                ci_high=np.nan, chance=1.0 / k, floor=np.nan, selected="")
    return [dict(base, metric="held_out_rows", value=float(len(codes))),
            dict(base, metric="ci_half_width", value=float(half)),
            dict(base, metric="rows_to_resolve", value=float(need), chance=float(margin))]


def _transfer_probes(source: TransferSource | None, extras: Mapping[str, np.ndarray] | None,
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


def resolution_rows(X: np.ndarray, qc: np.ndarray, *,
                    families: Sequence[str] = PROBES, repeats: int = LADDER_REPEATS,
                    n_boot: int = 200, seed: int = 0, engine: Engine = "auto",
                    margin: float = RESOLVE_MARGIN) -> list[dict[str, Any]]:
    """What these held-out rows can resolve: a shuffled-q control.

    The rows of ``X`` are put in a seeded random order against ``q`` (as permuting ``q``),
    which makes them leak-free by construction, and the ladder's worst case over ``families``
    (the audit's own probes) is cross-fitted on them with the audit's folds, repeats and
    bootstrap, so its interval is the one a leak-free representation gets. ``ci_half_width``:
    half the width of that interval, the smallest leak the rows resolve (``held_out_rows`` of
    them); ``rows_to_resolve``: held-out rows at which the half-width would reach ``margin`` (it
    shrinks as ``1/sqrt(n)``; that row's ``chance`` column holds ``margin``). Both are rows of
    model ``resolution``, probe ``leak_free``; the control's own balanced accuracy is not
    written, so no table or plot mistakes the control for a model.
    """
    Xv, qv, k = validate_inputs(X, qc, LADDER_FOLDS)
    Xs = _shuffled(Xv, seed)
    runs = fit_families(Xs, qv, k, tuple(families), LADDER_FOLDS, repeats, seed, engine=engine)
    return _resolution(Xs, qv, k, runs, n_boot, seed, margin)


def _families(probes: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(("majority", *probes)))


def audit_units(representations: int, probes: Sequence[str], q_kind: QKind = "categorical",
                repeats: int = LADDER_REPEATS) -> int:
    """How many progress units :func:`audit_representations` reports: per representation and
    for the shuffled-q control, one per family x fold seed (a fold seed successive halving
    skips counts as done), then one per representation for the rest."""
    if q_kind != "categorical":
        return representations
    return (representations + 1) * len(_families(probes)) * repeats + representations


def _floor_rows(representations: Mapping[str, np.ndarray], qc: np.ndarray, y: np.ndarray,
                n_boot: int, seed: int, repeats: int = LADDER_REPEATS) -> list[dict[str, Any]]:
    """What keeping the control task forces a representation to leak about ``q``.

    ``control_label``: cross-fitted balanced accuracy of ``q`` from the true control label;
    ``control_prediction``: from the control prediction of the original representation (a
    cross-fitted logistic probe on ``original``, the first representation when there is none).
    """
    yc, _ = _codes(y)
    base = dict(model="floor", target="q", metric="balanced_accuracy", selected="")
    out = []
    label = floor_from_labels(qc, yc, folds=LADDER_FOLDS, repeats=repeats, n_boot=n_boot,
                              seed=seed)  # fmt: skip
    chance = 1.0 / len(np.unique(qc))
    out.append(dict(base, probe="control_label", value=label.value, ci_low=label.low,
                    ci_high=label.high, chance=chance, floor=label.value))  # fmt: skip
    original = representations.get("original", next(iter(representations.values())))
    Xo = np.asarray(original, dtype=np.float64).reshape(len(qc), -1)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        pred = cross_val_predict(probe, Xo, yc, cv=LADDER_FOLDS)
    made = floor_from_labels(qc, pred, folds=LADDER_FOLDS, repeats=repeats, n_boot=n_boot,
                             seed=seed)  # fmt: skip
    out.append(dict(base, probe="control_prediction", value=made.value, ci_low=made.low,
                    ci_high=made.high, chance=chance, floor=label.value))  # fmt: skip
    return out


def run_audit(run_dir: str | Path, table: pd.DataFrame) -> Path:
    """Write an audit table as ``RUN_DIR/audit.parquet``, with its lineage, in one commit
    (staged in ``audit.partial/``); an interrupt received meanwhile writes nothing."""
    run = Path(run_dir)
    signals.check(f"no audit.parquet is written from an interrupted audit; the previous one is "
                  f"unchanged; `fairsearch audit {run}` runs it again")  # fmt: skip
    staged = run / "audit.partial"
    try:
        write_atomic(staged / "audit.parquet", lambda p: table.to_parquet(p, index=False))
        moves = [(f"{staged.name}/audit.parquet", "audit.parquet")]
        if (run / "retrain.parquet").is_file():
            lineage = lineage_with(run, "audit")
            write_atomic(staged / LINEAGE_FILE, lambda p: p.write_text(lineage))
            moves.append((f"{staged.name}/{LINEAGE_FILE}", LINEAGE_FILE))
        signals.check(f"the previous audit.parquet is unchanged; `fairsearch audit {run}` runs "
                      f"it again")  # fmt: skip
    except BaseException:  # e.g. a full disk: before the commit point, nothing is left behind
        shutil.rmtree(staged, ignore_errors=True)
        raise
    commit(run, "audit", moves, remove=[staged.name])
    return run / "audit.parquet"


def collect_inputs(run_dir: str | Path) -> dict[str, np.ndarray]:
    """Frozen test-split outputs of a run folder, as arrays ``q``, ``y``, ``rep:<model>``...

    Reads ``spec.yaml`` (for the data), and ``retrain/<config>/seed-<s>/test_repr.npy``. Adds
    the family's baselines (the untouched features ``original``; for translators also a LEACE row
    fitted on the train split) and its transfer arrays, and ``sources`` (:data:`SOURCES`): the
    path and SHA-256 of each retrained file read. Refused (``ValueError`` naming them and
    ``fairsearch retrain``) when files of a seed ``retrain.parquet`` names as completed are
    missing: the audit never rates models whose weights are gone.
    """
    from fairsearch.data import load_from_spec
    from fairsearch.spec import load_spec

    run = Path(run_dir)
    spec = load_spec(run / "spec.yaml")
    data = load_from_spec(spec.data)
    test = data.subset("test")
    out: dict[str, np.ndarray] = {"q": np.asarray(test.q)}
    if data.task == "classification":
        out["y"] = np.asarray(test.y)
    for name, rep in spec.family.baselines(data).items():
        out[f"rep:{name}"] = rep
    out.update(spec.family.transfer(data))
    missing, completed = _missing_seed_files(run)
    if missing:
        raise ValueError(_weights_missing(run, missing, completed))
    sources: dict[str, str | None] = {}
    for path in sorted((run / "retrain").glob("*/seed-*/test_repr.npy")):
        out[f"rep:{path.parent.parent.name}/{path.parent.name}"] = _load_outputs(path)
        for name in SEED_FILES:
            sources[(path.parent / name).relative_to(run).as_posix()] = fingerprint(
                path.parent / name)
    if not any(k.startswith("rep:") and "/seed-" in k for k in out):
        raise ValueError(_nothing_to_audit(run))
    out[SOURCES] = np.array(json.dumps(sources, sort_keys=True))
    return out


def _missing_seed_files(run: Path) -> tuple[list[str], int]:
    """The files (relative to ``run``) of retrained seeds that the audit needs and that are
    missing: ``model.pt`` and ``test_repr.npy`` of each seed ``retrain.parquet`` names as
    completed, and ``model.pt`` of each seed whose ``test_repr.npy`` is in ``retrain/``; with
    the number of those seeds."""
    from fairsearch.io.files import read_parquet

    seeds: dict[str, tuple[str, ...]] = {}
    if (run / "retrain.parquet").is_file():
        table = read_parquet(run / "retrain.parquet")
        if {"config_id", "seed", "status"} <= set(table.columns):
            done = table[table["status"].astype(str) == "completed"]
            for config, seed in zip(done["config_id"], done["seed"], strict=True):
                seeds[f"retrain/{config}/seed-{int(seed)}"] = SEED_FILES
    for path in sorted((run / "retrain").glob("*/seed-*/test_repr.npy")):
        seeds.setdefault(path.parent.relative_to(run).as_posix(), ("model.pt",))
    missing = [f"{folder}/{name}" for folder, names in seeds.items() for name in names
               if not (run / folder / name).is_file()]  # fmt: skip
    return missing, len(seeds)


def _names(files: Sequence[str], limit: int = 6) -> str:
    """``a, b, c`` (at most ``limit`` names, then how many more)."""
    shown = ", ".join(files[:limit])
    return shown if len(files) <= limit else f"{shown} and {len(files) - limit} more"


def _weights_missing(run: Path, missing: Sequence[str], completed: int) -> str:
    """The audit's refusal when weights of retrained seeds named by ``retrain.parquet`` (or in
    ``retrain/``) are gone: which files, and the command that rebuilds them."""
    seeds = len({name.rsplit("/", 1)[0] for name in missing})
    if seeds == completed:
        head = (f"nothing to audit in {str(run)!r}: retrain.parquet names {completed} completed "
                f"retrained seeds, but their weights are missing")  # fmt: skip
    else:
        head = (f"cannot audit {str(run)!r}: retrain.parquet names {completed} completed "
                f"retrained seeds, but the weights of {seeds} of them are missing")  # fmt: skip
    return f"{head} ({_names(missing)}); `fairsearch retrain {run}` rebuilds them"


def _nothing_to_audit(run: Path) -> str:
    """Why a run folder has no retrained model to audit."""
    from fairsearch.analysis.pareto.analysis import outcomes

    if not (run / "retrain.parquet").is_file():
        return f"RUN_DIR {str(run)!r} has no retrained models: run `fairsearch retrain` first"
    table = pd.read_parquet(run / "retrain.parquet")
    if "seed" in table and "config_id" in table and "error" in table and len(table):
        table = table.assign(error=[None if e is None or pd.isna(e) else f"{c} seed {s}: {e}"
                                    for c, s, e in zip(table["config_id"], table["seed"],
                                                       table["error"], strict=True)])  # fmt: skip
    return (f"nothing to audit in {str(run)!r}: no retrained seed completed "
            f"({outcomes(table, 'retrained seed')})")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder with retrained models")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="auto (default): probes batched in torch where that is faster on "
                             "this device (a GPU: logistic, mlp and knn; a CPU: none); "
                             "batched: the logistic, mlp and knn probes batched in torch; "
                             "sklearn: every probe fitted on its own (the reference)")
    parser.add_argument("--no-halving", dest="halving", action="store_false",
                        help="give every probe family every fold seed (default: a family far "
                             "below the worst case gets one)")
    parser.add_argument("--quiet", action="store_true", help="no live progress")
    parser.add_argument("--ray", action="store_true",
                        help="run the probe units as Ray tasks (a local Ray, or the cluster of "
                             "--address / RAY_ADDRESS)")
    parser.add_argument("--address", default=None, help="Ray address to join (implies --ray)")


def run_stage(run_dir: str | Path, *, n_boot: int = 1000, seed: int = 0,
              engine: Engine = "auto", quiet: bool = False,
              executor: Executor | None = None, halving: bool = True) -> pd.DataFrame:
    """:func:`_run_stage` holding the run folder's lock (one driver per folder); an interrupt
    (even one a probe's library swallowed) writes no ``audit.parquet``."""
    note = (f"no audit.parquet is written from an interrupted audit; the previous one is "
            f"unchanged; `fairsearch audit {run_dir}` runs it again")  # fmt: skip
    with signals.interruptible(note), stage_lock(run_dir):
        return _run_stage(run_dir, n_boot=n_boot, seed=seed, engine=engine, quiet=quiet,
                          executor=executor, halving=halving)


def _run_stage(run_dir: str | Path, *, n_boot: int = 1000, seed: int = 0,
               engine: Engine = "auto", quiet: bool = False,
               executor: Executor | None = None, halving: bool = True) -> pd.DataFrame:
    """The audit stage of a run folder: collect the frozen outputs, probe them, write the table.

    Each finished probe unit is written to ``RUN_DIR/audit_units/`` at once (keyed by its
    inputs), so an audit that was killed resumes without refitting the units it finished.

    The representations are those of :func:`audit_inputs` (``audit_inputs.npz``).
    """
    from fairsearch.spec.schema import read_yaml

    run = Path(run_dir)
    data = audit_inputs(run)
    probes: Sequence[str] = PROBES
    if (run / "spec.yaml").is_file():
        post = (read_yaml(run / "spec.yaml", "spec file") or {}).get("post") or {}
        probes = tuple(post.get("probes") or PROBES)
    reps = {k.removeprefix("rep:"): data[k] for k in data if k.startswith("rep:")}
    extras = {k.removeprefix("extra:"): data[k] for k in data if k.startswith("extra:")}
    transfer = None
    if "transfer_X" in data:
        labels = {k.removeprefix("transfer:"): data[k] for k in data if k.startswith("transfer:")}
        transfer = TransferSource(data["transfer_X"], labels)
    units = audit_units(len(reps), probes, _q_kind(np.asarray(data["q"])))
    with AuditProgress(units, quiet=quiet) as progress:
        table = audit_representations(reps, data["q"], y=data.get("y"), extras=extras,
                                      probes=probes, transfer_source=transfer, n_boot=n_boot,
                                      seed=seed, engine=engine, progress=progress,
                                      executor=executor, store=UnitStore(run / UNITS_DIR),
                                      halving=halving)
    run_audit(run, table)
    return table


def audit_inputs(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The arrays the audit of a run folder probes (``q``, optional ``y``, ``rep:<model>``,
    ``extra:<name>``...): ``audit_inputs.npz`` as it is when present and still tied to the
    retrained files it was collected from (:func:`_cached_inputs`); otherwise collected from the
    retrain outputs (:func:`collect_inputs`) and written there, with the path and SHA-256 of
    each of those files (``sources``)."""
    run = Path(run_dir)
    path = run / "audit_inputs.npz"
    data = _cached_inputs(run, path)
    if data is None:
        data = collect_inputs(run)

        def save(p: Path) -> None:
            with open(p, "wb") as fh:
                np.savez(fh, **data)

        write_atomic(path, save)
    return data


def _load_outputs(path: Path) -> np.ndarray:
    """A retrained seed's ``test_repr.npy``; ``ValueError`` naming it and the recovery."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path} is damaged or unreadable ({type(exc).__name__}: {exc}); to "
                         f"recover: `fairsearch retrain {path.parents[3]}`") from None  # fmt: skip


def _cached_inputs(run: Path, path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of ``audit_inputs.npz`` (a cache of the retrain outputs), or None when it is
    to be collected again: missing, damaged, or collected from other versions of the retrained
    files than those in ``retrain/`` now (with a warning naming it).

    The cache is tied to the files it was collected from (``sources``: path -> SHA-256 of each
    retrained seed's ``model.pt`` and ``test_repr.npy``): when one of them is gone it is refused
    (``ValueError`` naming them and the command that rebuilds them), never audited as models
    that no longer exist. A cache without ``sources`` (an earlier version's) is collected again
    while the weights its seeds name are there, else refused the same way; one in a folder with
    no retrain outputs at all holds arrays a user brought, audited as they are."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as loaded:
            data = {k: loaded[k] for k in loaded.files}
        sources = json.loads(str(data[SOURCES])) if SOURCES in data else None
        if sources is not None and not isinstance(sources, dict):
            raise ValueError(f"{SOURCES!r} is not a JSON object")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        print(f"warning: {path} is damaged ({type(exc).__name__}: {exc}); collecting it again "
              f"from retrain/", file=sys.stderr)  # fmt: skip
        return None
    if sources is None:
        seeds = [k.removeprefix("rep:") for k in data if k.startswith("rep:") and "/seed-" in k]
        if not seeds or not ((run / "retrain").exists() or (run / "retrain.parquet").exists()):
            return data  # arrays brought by a user, not collected from this folder's retrain
        sources = {f"retrain/{seed}/model.pt": None for seed in seeds}
    missing = [name for name in sources if not (run / name).is_file()]
    if missing:
        raise ValueError(
            f"{path} holds the outputs of retrained models whose files are missing in "
            f"{str(run)!r} ({_names(missing)}): no audit is written for models that no longer "
            f"exist; `fairsearch retrain {run}` rebuilds them (and drops this cache)")
    changed = [name for name, sha in sources.items()
               if sha is None or fingerprint(run / name) != sha]  # fmt: skip
    if changed:
        why = ("has no record of the files it was collected from"
               if all(sha is None for sha in sources.values())
               else f"was collected from other versions of {_names(changed)}")  # fmt: skip
        print(f"warning: {path} {why}; collecting it again from retrain/", file=sys.stderr)
        return None
    return data


def main(args: argparse.Namespace) -> int:
    executor = None
    if args.ray or args.address:
        from fairsearch.analysis.audit.on_ray import RayExecutor  # the only Ray of the audit

        executor = RayExecutor(address=args.address)
    table = run_stage(args.run_dir, n_boot=args.n_boot, seed=args.seed, engine=args.engine,
                      quiet=args.quiet, executor=executor, halving=args.halving)
    print(f"wrote {Path(args.run_dir) / 'audit.parquet'} ({len(table)} rows)")
    return 0
