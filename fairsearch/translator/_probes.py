"""Fresh evaluation probes: trained from scratch on frozen (translated) embeddings.

A probe never sees the translator's own adversary or heads. ``class_weight="balanced"`` (for the
models that take it) stops a probe from scoring by predicting the majority group, so balanced
accuracy near ``0.5`` (binary) means no recoverable signal. F1 is the positive class's for a binary
label (the report's "F1 of race=Caucasian"), macro-averaged otherwise.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ProbeKind = Literal["logistic", "mlp", "hgb"]
PROBE_KINDS: tuple[str, ...] = ("logistic", "mlp", "hgb")

__all__ = ["PROBE_KINDS", "ProbeKind", "classification_scores", "control_floor", "probe_scores"]


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``f1`` (positive class when binary, else macro), ``acc`` and ``bacc``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    binary = np.unique(y_true).size <= 2 and np.unique(np.concatenate([y_true, y_pred])).size <= 2
    if binary:
        labels = np.unique(np.concatenate([y_true, y_pred]))
        f1 = f1_score(y_true, y_pred, pos_label=labels.max(), average="binary", zero_division=0)
    else:
        f1 = f1_score(y_true, y_pred, average="macro", zero_division=0)
    return {
        "f1": float(f1),
        "acc": float(accuracy_score(y_true, y_pred)),
        "bacc": float(balanced_accuracy_score(y_true, y_pred)),
    }


def _make(kind: str, seed: int):
    if kind == "logistic":
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed),
        )
    if kind == "mlp":
        return make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=(128, 128), max_iter=300, early_stopping=True, random_state=seed
            ),
        )
    if kind == "hgb":
        return HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
    raise ValueError(f"probe must be one of {list(PROBE_KINDS)}, but got {kind!r}")


def probe_scores(
    Z_train: np.ndarray,
    t_train: np.ndarray,
    Z_eval: np.ndarray,
    t_eval: np.ndarray,
    *,
    kind: str = "logistic",
    max_train: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Fit a fresh ``kind`` probe on (a seeded subsample of) the training rows, score on eval.

    A training part with a single class gives a constant prediction (no signal to recover).
    """
    Z_train, t_train = np.asarray(Z_train), np.asarray(t_train)
    if max_train is not None and len(t_train) > max_train:
        idx = np.random.default_rng(seed).choice(len(t_train), max_train, replace=False)
        Z_train, t_train = Z_train[idx], t_train[idx]
    if np.unique(t_train).size < 2:
        pred = np.full(len(t_eval), t_train[0])
    else:
        pred = _make(kind, seed).fit(Z_train, t_train).predict(np.asarray(Z_eval))
    return classification_scores(t_eval, pred)


def control_floor(y: np.ndarray, q: np.ndarray, *, folds: int = 5, seed: int = 0) -> float:
    """Balanced accuracy of predicting ``q`` from the control label alone, cross-fitted on these rows.

    A representation that keeps the control task leaks this much of ``q`` whatever else it hides.
    Per fold, each control class predicts the ``q`` class with the largest *share of its own
    group* in the other folds (``argmax_k n(y, k) / n(k)``: the majority rule under the balanced
    class weights the probes use, which is what maximises balanced accuracy); control classes
    unseen in the other folds predict the largest ``q`` class. Chance is ``1 / K``.
    """
    y, q = np.asarray(y).reshape(-1), np.asarray(q).reshape(-1)
    if y.shape != q.shape:
        raise ValueError(f"y and q must have one label per row each, but got {y.shape} and {q.shape}")
    if folds < 2 or folds > len(y):
        raise ValueError(f"folds must be an integer in [2, {len(y)}], but got {folds!r}")
    _, yc = np.unique(y, return_inverse=True)
    q_classes, qc = np.unique(q, return_inverse=True)
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    pred = np.empty_like(qc)
    for f in range(folds):
        tr = fold != f
        counts = np.zeros((int(yc.max()) + 1, q_classes.size))
        np.add.at(counts, (yc[tr], qc[tr]), 1.0)
        share = counts / np.maximum(counts.sum(0, keepdims=True), 1.0)
        rule = np.where(counts.sum(1) > 0, share.argmax(1), counts.sum(0).argmax())
        pred[~tr] = rule[yc[~tr]]
    return float(balanced_accuracy_score(qc, pred))
