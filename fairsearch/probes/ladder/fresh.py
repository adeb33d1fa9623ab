"""Fresh evaluation probes: trained from scratch on frozen (translated) embeddings.

A probe never sees the translator's own adversary or heads. Probes come from the audit ladder's
factory (:func:`fairsearch.probes.ladder.make_probe`): :func:`probe_scores` fits one untuned
probe on training rows and scores it on others; :func:`leak_scores` is the audit's own measure
(tuned probes cross-fitted on one split's rows, the nested worst case over kinds). Balanced
class weights or a prior correction stop a probe from scoring by predicting the majority group,
so balanced accuracy near ``1/K`` means no recoverable signal. F1 is the positive class's for a
binary label (the report's "F1 of race=Caucasian"), macro-averaged otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from fairsearch.probes.ladder._crossfit import cross_fit
from fairsearch.probes.ladder._factory import make_probe, rows_per_class
from fairsearch.probes.ladder._inputs import Engine
from fairsearch.probes.ladder._selection import select_worst
from fairsearch.probes.registry import BASELINE_KIND, PROBE_CHOICES

__all__ = ["classification_scores", "leak_scores", "probe_scores"]


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


def _make(kind: str, seed: int) -> Any:
    if kind not in PROBE_CHOICES:
        raise ValueError(f"probe must be one of {list(PROBE_CHOICES)}, but got {kind!r}")
    return make_probe(kind, seed, tune=False)


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



def leak_scores(
    Z: np.ndarray,
    q: np.ndarray,
    *,
    kinds: Sequence[str],
    folds: int = 5,
    seed: int = 0,
    engine: Engine | Mapping[str, Engine] = "batched",
    device: Any = None,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> dict[str, Any]:
    """How well fresh probes recover ``q`` from ``Z``, judged as the audit judges it.

    The ladder's nested worst case (:func:`fairsearch.probes.ladder.select_worst`) over
    ``majority`` and ``kinds``, each tuned on inner folds and cross-fitted
    (:func:`~fairsearch.probes.ladder.cross_fit`) over the same ``folds`` stratified outer
    folds of these rows (fold seed ``seed``). ``engine``: one for every kind, or a mapping
    from kind to engine (the others batched). ``grids``: a smaller tuning grid for some kinds
    (kind -> :func:`~fairsearch.probes.ladder.kind_grid`'s ``values``). Returns ``bacc`` (the worst case), ``f1`` (of
    its stitched predictions, as :func:`classification_scores`), ``max`` (the largest kind's
    score: biased upwards by the winner's curse), ``by_kind`` (each kind's own cross-fitted
    balanced accuracy) and ``selected`` (the kind chosen in each outer fold). Where a class of
    ``q`` has fewer than ``2 x folds`` rows the folds shrink to fit; where it has fewer than the
    probes' inner fits need (:func:`~fairsearch.probes.ladder.rows_per_class`), the folds grow
    (up to 10) so that each fit trains on more of the rows; with fewer than 4 rows no probe can be
    cross-fitted and the constant prediction is scored.
    """
    q = np.asarray(q)
    labels, counts = np.unique(q, return_counts=True)
    smallest = int(counts.min())
    folds = min(int(folds), smallest // 2)
    while 2 <= folds < min(10, smallest // 2) and smallest < rows_per_class(kinds, folds):
        folds += 1
    if labels.size < 2 or folds < 2:
        const = classification_scores(q, np.full(q.shape, labels[np.argmax(counts)]))
        return {"bacc": const["bacc"], "f1": const["f1"], "max": const["bacc"],
                "by_kind": {f: const["bacc"] for f in kinds}, "selected": ()}
    engines = engine if isinstance(engine, Mapping) else {}
    fits = [cross_fit(Z, q, f, folds=folds, seed=seed, device=device, grid=(grids or {}).get(f),
                      engine=engines.get(f, "batched") if engines else engine)  # type: ignore[arg-type]
            for f in dict.fromkeys((BASELINE_KIND, *kinds))]  # fmt: skip
    wc = select_worst(fits, q)
    scores = classification_scores(q, labels[wc.predictions])
    by_kind = {f: float(wc.kind_scores[f]) for f in kinds}
    return {"bacc": float(wc.value), "f1": scores["f1"], "max": max(by_kind.values()),
            "by_kind": by_kind, "selected": wc.selected}
