"""The floor rows of an audit: what keeping the control task forces a representation to leak
about ``q``, on the same held-out rows."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fairsearch.analysis.audit.metrics import codes_of
from fairsearch.analysis.audit.units import LADDER_FOLDS, LADDER_REPEATS
from fairsearch.probes.ladder import floor_from_labels

__all__ = ["floor_rows"]


def floor_rows(representations: Mapping[str, np.ndarray], qc: np.ndarray, y: np.ndarray,
                n_boot: int, seed: int, repeats: int = LADDER_REPEATS) -> list[dict[str, Any]]:
    """What keeping the control task forces a representation to leak about ``q``.

    ``control_label``: cross-fitted balanced accuracy of ``q`` from the true control label;
    ``control_prediction``: from the control prediction of the original representation (a
    cross-fitted logistic probe on ``original``, the first representation when there is none).
    """
    yc, _ = codes_of(y)
    base = dict(model="floor", target="q", metric="balanced_accuracy", selected="")
    out = []
    label = floor_from_labels(qc, yc, folds=LADDER_FOLDS, repeats=repeats, n_boot=n_boot,
                              seed=seed)  # fmt: skip
    chance = 1.0 / len(np.unique(qc))
    out.append(dict(base, probe="control_label", value=label.value, ci_low=label.ci_low,
                    ci_high=label.ci_high, chance=chance, floor=label.value))  # fmt: skip
    original = representations.get("original", next(iter(representations.values())))
    Xo = np.asarray(original, dtype=np.float64).reshape(len(qc), -1)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        pred = cross_val_predict(probe, Xo, yc, cv=LADDER_FOLDS)
    made = floor_from_labels(qc, pred, folds=LADDER_FOLDS, repeats=repeats, n_boot=n_boot,
                             seed=seed)  # fmt: skip
    out.append(dict(base, probe="control_prediction", value=made.value, ci_low=made.ci_low,
                    ci_high=made.ci_high, chance=chance, floor=label.value))  # fmt: skip
    return out
