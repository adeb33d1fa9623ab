"""One name per thing in what a person reads: configurations, models, columns, numbers.

A configuration is named by its Optuna trial number everywhere (``#3``); the retrain folders are
``trial-3/seed-0``; raw column names (``metric.control_f1.mean``) become words.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["column_label", "config_label", "config_number", "fmt", "fmt_ci", "fmt_param",
           "metric_label", "model_label", "plain"]

#: Metric names as a person reads them.
METRIC_LABELS: dict[str, str] = {
    "control_f1": "control F1", "control_acc": "control accuracy",
    "adversary_f1": "adversary F1", "adversary_bacc": "adversary balanced accuracy",
    "adversary_bacc_logistic": "adversary balanced accuracy (logistic)",
    "adversary_bacc_mlp": "adversary balanced accuracy (MLP)",
    "reconstruction": "reconstruction error", "cka": "CKA(output, q)",
    "cka_median": "CKA(output, q), median bandwidths", "hsic": "HSIC(output, q)",
    "mse": "MSE", "accuracy": "accuracy", "f1": "F1", "dp_gap": "demographic-parity gap",
    "r2": "R²", "balanced_accuracy": "balanced accuracy", "roc_auc": "ROC-AUC",
    "same_q_fraction": "same-q neighbour fraction", "mdl_bits": "online code length (bits)",
    "demographic_parity_difference": "demographic-parity difference",
    "equalized_odds_difference": "equalized-odds difference",
}
PROBE_LABELS: dict[str, str] = {
    "majority": "majority", "logistic": "logistic", "mlp": "MLP", "gbt": "boosted trees",
    "knn": "kNN", "svm": "RBF-SVM", "worst_case": "worst case", "online_code": "online code",
    "control_label": "from control label", "control_prediction": "from control prediction",
    "kernel": "kernel", "ridge": "ridge", "transfer_logistic": "transfer (logistic)",
}
_CONFIG = re.compile(r"^(?:trial-|cfg-|#)(\d+)$")


def plain(v: Any) -> Any:
    """A Python scalar, ``None`` for missing or non-finite values."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def fmt(v: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` decimals, integers as integers, missing as ``–``."""
    v = plain(v)
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) >= 1000 else f"{v:.{digits}f}"
    return str(v)


def fmt_ci(lo: Any, hi: Any, digits: int = 3) -> str:
    lo, hi = plain(lo), plain(hi)
    return "" if lo is None or hi is None else f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def fmt_param(v: Any) -> str:
    """A hyperparameter: three significant digits, integers and words as they are."""
    v = plain(v)
    if v is None:
        return "–"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.3g}"
    return str(v)


def config_number(config_id: Any) -> int | None:
    """The trial number in ``trial-3``, ``cfg-3``, ``#3``, or an integer."""
    v = plain(config_id)
    if isinstance(v, int):
        return v
    m = _CONFIG.match(str(v)) if v is not None else None
    return int(m.group(1)) if m else None


def config_label(config_id: Any) -> str:
    """``#3`` for trial number 3 (or its retrain id ``trial-3``)."""
    n = config_number(config_id)
    return f"#{n}" if n is not None else str(config_id)


def model_label(model: str) -> str:
    """Audit model names: ``trial-3/seed-0`` -> ``#3 seed 0``; ``leace`` -> ``LEACE``."""
    head, _, seed = str(model).partition("/seed-")
    if seed:
        return f"{config_label(head)} seed {seed}"
    return {"leace": "LEACE", "original": "original", "floor": "floor"}.get(head, head)


def metric_label(metric: str) -> str:
    base, _, group = metric.partition("[")
    label = METRIC_LABELS.get(base, base.replace("_", " "))
    return f"{label} [{group}" if group else label


def column_label(column: str) -> str:
    """``metric.control_f1.mean`` -> ``control F1 (val) mean``; ``param.lr`` -> ``lr``."""
    col = column.replace(":", ".")
    stat = ""
    for s in ("mean", "std", "count"):
        if col.endswith(f".{s}"):
            col, stat = col[: -len(s) - 1], s
    prefix, _, name = col.partition(".")
    if not name:
        return column.replace("_", " ")
    split = {"metric": " (val)", "objective": " (val)", "test": " (test)"}.get(prefix)
    if split is None:
        return col.removeprefix("param.")
    return f"{metric_label(name)}{split}" + (f" {stat}" if stat else "")
