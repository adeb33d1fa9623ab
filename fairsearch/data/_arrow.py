"""Arrow columns -> checked numpy arrays: the conversions :func:`load_parquet` and
:func:`save_parquet` make.

Features come from one column of equal-length number lists or from numeric columns; labels
become int64 codes (with their class names) or float32 values; a split column becomes strings.
A NaN, inf, null or a type that cannot be read raises a ``ValueError`` naming the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fairsearch.data._validation import check_finite

__all__ = ["features_array", "infer_kind", "is_list", "label_array", "named_array", "split_strings"]


def features_array(table: pa.Table, cols: list[str]) -> np.ndarray:
    """``(rows, d)`` float32 features: one list column, or one numeric column per feature."""
    if len(cols) == 1 and is_list(table.schema.field(cols[0]).type):
        return _list_column(table.column(cols[0]), cols[0])
    parts = []
    for col in cols:
        typ = table.schema.field(col).type
        if is_list(typ):
            raise ValueError(
                f"a list column must be the only features column, but {col!r} is a list among "
                f"{cols}"
            )
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)):
            raise ValueError(f"feature column {col!r} must be numeric, but has type {typ}")
        values = _float64(table.column(col).combine_chunks())
        check_finite(values, f"feature column {col!r}")
        parts.append(values)
    return np.column_stack(parts).astype(np.float32)


def _list_column(column: pa.ChunkedArray, col: str) -> np.ndarray:
    label = f"features column {col!r}"
    arr = column.combine_chunks()
    if arr.null_count:
        bad = np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
        raise ValueError(
            f"{label} must have a list in every row, but {arr.null_count} of {len(arr)} rows are "
            f"null (first at row {int(np.argmax(bad))})"
        )
    lengths = np.asarray(pc.list_value_length(arr).to_numpy(zero_copy_only=False))
    if len(lengths) and (lengths != lengths[0]).any():
        first = int(np.argmax(lengths != lengths[0]))
        raise ValueError(
            f"{label} must hold lists of one length, but row 0 has {lengths[0]} values and row "
            f"{first} has {lengths[first]} (lengths seen: {sorted(set(lengths.tolist()))})"
        )
    width = int(lengths[0]) if len(lengths) else 0
    if width == 0:
        raise ValueError(f"{label} must hold non-empty lists, but its lists are empty")
    value_type = arr.type.value_type
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type)):
        raise ValueError(f"{label} must hold lists of numbers, but holds lists of {value_type}")
    X = _float64(pc.list_flatten(arr)).reshape(len(arr), width)
    check_finite(X, label)
    return X.astype(np.float32)


def label_array(
    column: pa.ChunkedArray, label: str, coded: bool, order: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(values, class names): int64 codes when ``coded``, else float32 values.

    Codes index the sorted distinct values, or ``order`` (class names recorded by
    :func:`save_parquet`) when every value is one of them.
    """
    typ = column.type
    if is_list(typ):
        raise ValueError(f"{label} must hold one value per row, but has type {typ}")
    if column.null_count:
        bad = np.asarray(column.is_null().to_numpy(zero_copy_only=False))
        raise ValueError(
            f"{label} must hold only finite values (no NaN, inf or missing), but "
            f"{int(bad.sum())} of {len(bad)} rows do (first at row {int(np.argmax(bad))})"
        )
    if pa.types.is_dictionary(typ):
        column = column.cast(typ.value_type)
        typ = column.type
    numeric = pa.types.is_integer(typ) or pa.types.is_floating(typ)
    if not coded:
        if not (numeric or pa.types.is_boolean(typ)):
            raise ValueError(
                f"{label} must be numeric for a regression target or a continuous attribute, "
                f"but has type {typ}"
            )
        values = _float64(column.combine_chunks())
        check_finite(values, label)
        return values.astype(np.float32), ()
    raw = column.to_numpy() if numeric else np.asarray(column.to_pylist())
    if raw.dtype.kind == "f":
        check_finite(raw, label)
        if not np.all(raw == np.round(raw)):
            raise ValueError(
                f"{label} must hold class labels (strings or whole numbers), but has fractional "
                f"values such as {raw[raw != np.round(raw)][0]!r}; use task='regression' or "
                "q_kind='continuous' for a numeric column"
            )
        raw = raw.astype(np.int64)
    names, codes = np.unique(raw, return_inverse=True)
    names = [str(v) for v in names.tolist()]
    if order and set(names) <= set(order):
        index = {c: i for i, c in enumerate(order)}
        return np.array([index[v] for v in names], dtype=np.int64)[codes], tuple(order)
    return codes.astype(np.int64), tuple(names)


def split_strings(column: pa.ChunkedArray, label: str) -> np.ndarray:
    """A split column's values as strings (a null is an error)."""
    if column.null_count:
        raise ValueError(
            f"{label} values must be one of ['train', 'val', 'test'], but {column.null_count} "
            "rows are null"
        )
    return np.asarray(column.to_pylist()).astype(str)


def _float64(arr: pa.Array) -> np.ndarray:
    """``arr`` as float64 values, a null as NaN."""
    values = arr.to_numpy(zero_copy_only=False).astype(np.float64)
    if arr.null_count:
        values[np.asarray(arr.is_null().to_numpy(zero_copy_only=False))] = np.nan
    return values


def named_array(values: np.ndarray, names: tuple[str, ...] | None) -> pa.Array:
    """Coded labels written as their class names (other values as they are)."""
    if names and values.dtype.kind in "iu":
        return pa.array(np.asarray(names, dtype=object)[values])
    return pa.array(values)


def is_list(typ: pa.DataType) -> bool:
    """Whether a column of ``typ`` holds a list per row."""
    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def infer_kind(typ: pa.DataType, given: str, options: tuple[str, str], arg: str) -> str:
    """``given``, checked, or (``"auto"``) the kind of a column of ``typ``: ``options`` =
    (value kind, class kind); floats are values, everything else classes."""
    if given != "auto":
        if given not in options:
            raise ValueError(f"{arg} must be one of {[*options, 'auto']}, but got {given!r}")
        return given
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    return options[0] if pa.types.is_floating(typ) else options[1]
