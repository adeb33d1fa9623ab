"""Column checks shared by :func:`validate_dataset` and the loaders.

Each check raises a ``ValueError`` that states the rule, then the value, and names the column
(``label``) it was given, so bad data fails before any trial starts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

SPLITS: tuple[str, ...] = ("train", "val", "test")


def bad_rows(values: np.ndarray) -> np.ndarray:
    """Boolean mask of rows holding a NaN, an inf or a missing (None) value."""
    a = np.asarray(values)
    if a.dtype.kind in "fc":
        bad = ~np.isfinite(a)
    elif a.dtype.kind == "O":
        bad = np.vectorize(_is_missing, otypes=[bool])(a) if a.size else np.zeros(a.shape, bool)
    else:
        return np.zeros(len(a), dtype=bool)
    return bad.reshape(len(a), -1).any(axis=1) if a.ndim > 1 else bad


def _is_missing(v: object) -> bool:
    if isinstance(v, float | np.floating):
        return not np.isfinite(v)
    return v is None or v is pd.NA


def check_finite(values: np.ndarray, label: str) -> None:
    bad = bad_rows(values)
    count = int(bad.sum())
    if count:
        raise ValueError(
            f"{label} must hold only finite values (no NaN, inf or missing), but {count} of "
            f"{len(bad)} rows do (first at row {int(np.argmax(bad))})"
        )


def check_lengths(lengths: Mapping[str, int]) -> None:
    if len(set(lengths.values())) > 1:
        got = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise ValueError(f"all columns must have the same number of rows, but got {got}")


def check_numeric(values: np.ndarray, label: str) -> None:
    kind = np.asarray(values).dtype.kind
    if kind not in "biuf":
        raise ValueError(f"{label} must be numeric, but has dtype {np.asarray(values).dtype}")


def check_two_values(values: np.ndarray, label: str) -> None:
    """A protected attribute (or a class label) that never varies carries no information."""
    a = np.asarray(values)
    cols = a.reshape(len(a), -1) if a.ndim > 1 else a[:, None]
    for j in range(cols.shape[1]):
        distinct = np.unique(cols[:, j])
        if len(distinct) < 2:
            where = f"{label}" if cols.shape[1] == 1 else f"{label} (column {j})"
            only = "no rows" if len(distinct) == 0 else f"the single value {_plain(distinct[0])!r}"
            raise ValueError(f"{where} must take at least 2 distinct values, but has {only}")


def _plain(v: object) -> object:
    """A numpy scalar as the Python value it holds (so messages show ``1``, not ``np.int64(1)``)."""
    return v.item() if isinstance(v, np.generic) else v


def check_split(split: np.ndarray, label: str, min_rows: int = 1) -> dict[str, int]:
    """Split values must be train/val/test, with train present and every part >= ``min_rows``."""
    values, counts = np.unique(np.asarray(split).astype(str), return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist(), strict=True))
    unknown = {v: c for v, c in found.items() if v not in SPLITS}
    if unknown:
        got = ", ".join(f"{v!r} ({c} rows)" for v, c in unknown.items())
        raise ValueError(f"{label} values must be one of {list(SPLITS)}, but got {got}")
    if found.get("train", 0) == 0:
        raise ValueError(f"{label} must contain at least one 'train' row, but has none: {found}")
    for part, count in found.items():
        if count < min_rows:
            raise ValueError(
                f"every split must have at least min_rows={min_rows} rows, but {label} has "
                f"{count} {part!r} rows"
            )
    return {part: found.get(part, 0) for part in SPLITS}
