"""One name per thing in what a person reads: configurations, models, columns, numbers.

A configuration is named by its Optuna trial number everywhere (``#3``); the retrain folders are
``trial-3/seed-0``; raw column names (``metric.control_f1.mean``) become words. The words come
from where the names are made: a model family's :attr:`~fairsearch.families.ModelFamily.metric_info`
and ``baseline_labels``, and the audit's :mod:`fairsearch.probes.registry`; none are kept here.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from fairsearch.families import FAMILIES, Metric
from fairsearch.probes.registry import AUDIT_METRICS, PROBES

__all__ = ["column_label", "config_label", "config_number", "fmt", "fmt_ci", "fmt_param",
           "metric_info", "metric_label", "model_label", "plain", "probe_label"]

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
    """Audit model names: ``trial-3/seed-0`` -> ``#3 seed 0``; a family's baselines by their
    ``baseline_labels`` (``leace`` -> ``LEACE``)."""
    head, _, seed = str(model).partition("/seed-")
    if seed:
        return f"{config_label(head)} seed {seed}"
    for family in FAMILIES.values():
        if head in family.baseline_labels:
            return family.baseline_labels[head]
    return head


def metric_info(metric: str) -> Metric | None:
    """What a registered family declares about ``metric`` (None for the audit's own metrics)."""
    for family in FAMILIES.values():
        if metric in family.metric_info:
            return family.metric_info[metric]
    return None


def metric_label(metric: str) -> str:
    """A family's metric by its declared label, an audit metric by its term
    (``accuracy[q=1]`` -> ``accuracy [q=1]``), anything else with spaces for underscores."""
    base, _, group = metric.partition("[")
    info = metric_info(base)
    if info is not None:
        label = info.label
    elif base in AUDIT_METRICS:
        label = AUDIT_METRICS[base].label
    else:
        label = base.replace("_", " ")
    return f"{label} [{group}" if group else label


def probe_label(probe: str) -> str:
    """An audit probe by its term: ``gbt`` -> ``boosted trees``, ``knn_mix@10`` ->
    ``kNN mix (k = 10)``."""
    base, _, k = str(probe).partition("@")
    label = PROBES[base].label if base in PROBES else base
    return f"{label} (k = {k})" if k else label


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
