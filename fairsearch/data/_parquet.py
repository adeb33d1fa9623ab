"""Parquet in and out: user tables -> :class:`Dataset`, and a Dataset (e.g. translated
embeddings) -> a Parquet file that :func:`load_parquet` reads back.

Layout read: features are one column holding a list of floats per row (``fixed_size_list`` or
``list``) or several numeric columns; a target, a protected attribute, an optional split column
("train" | "val" | "test"; a seeded 60/20/20 split when absent) and optional extra label columns.
String, boolean and dictionary columns used as labels are coded to int64 (sorted class names
kept in ``Dataset.classes``). Every problem is reported before training with the column named.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fairsearch.data._dataset import Dataset, QKind, Task, random_split, validate_dataset
from fairsearch.data._validation import check_finite, check_split, check_two_values
from fairsearch.io.atomic import discard

__all__ = ["load_parquet", "save_parquet"]

#: Key of the schema metadata entry that :func:`save_parquet` writes.
METADATA_KEY = b"fairsearch"
EMBEDDING, TARGET, PROTECTED, SPLIT = "embedding", "target", "protected", "split"


def load_parquet(
    path: str | os.PathLike[str],
    *,
    features: str | Sequence[str] | None = None,
    target: str | None = None,
    protected: str | Sequence[str] | None = None,
    split: str | None = None,
    extras: Sequence[str] | None = None,
    task: Task | Literal["auto"] = "auto",
    q_kind: QKind | Literal["auto"] = "auto",
    seed: int = 0,
    min_rows: int = 1,
    name: str | None = None,
) -> Dataset:
    """Read a Parquet file into a validated :class:`Dataset`.

    Args:
        features: one column of float lists (an embedding), or a list of numeric columns.
        target: the label column to predict.
        protected: the protected-attribute column (several numeric columns give ``q`` of
            shape ``(n, k)``, continuous only).
        split: a column of "train"/"val"/"test"; ``None``: a seeded random 60/20/20 split.
        extras: further label columns carried along (e.g. an attribute for a transfer audit).
        task, q_kind: ``"auto"`` infers them from the column type: strings, booleans,
            dictionaries and integers are classes ("classification" / "categorical"),
            floats are values ("regression" / "continuous").
        seed: seed of the random split.
        min_rows: the fewest rows any split may have (e.g. the batch size).
        name: the dataset's name; the file's stem by default.

    Arguments left at their defaults take what :func:`save_parquet` recorded in the file's
    metadata (columns, split, extras, task, q_kind, name, class order), so a saved dataset loads
    back with ``load_parquet(path)``; a file without that metadata needs ``features``,
    ``target`` and ``protected``. Raises ``ValueError`` naming the column for a missing
    column, NaN/inf/null values, lists of unequal length, a protected attribute with a single
    value, unknown split values or a split smaller than ``min_rows``.
    """
    path = Path(path)
    schema = pq.read_schema(path)
    saved = json.loads(schema.metadata.get(METADATA_KEY, b"{}")) if schema.metadata else {}
    features = features if features is not None else saved.get("features")
    target = target if target is not None else saved.get("target")
    protected = protected if protected is not None else saved.get("protected")
    split = split if split is not None else saved.get("split")
    extras = list(extras if extras is not None else saved.get("extras", []))
    task = saved.get("task", task) if task == "auto" else task
    q_kind = saved.get("q_kind", q_kind) if q_kind == "auto" else q_kind
    name = name or saved.get("name")
    order: dict[str, list[str]] = saved.get("classes", {})
    for arg, value in (("features", features), ("target", target), ("protected", protected)):
        if value is None or (not isinstance(value, str) and len(value) == 0):
            raise ValueError(
                f"{arg} must name a column of {path.name} (its columns: {schema.names}), but got "
                f"{value!r}"
            )
    assert features is not None and target is not None and protected is not None
    feature_cols = [features] if isinstance(features, str) else list(features)
    protected_cols = [protected] if isinstance(protected, str) else list(protected)
    wanted = {"features": feature_cols, "target": [target], "protected": protected_cols,
              "split": [split] if split else [], "extras": list(extras)}  # fmt: skip
    for role, cols in wanted.items():
        for col in cols:
            if col not in schema.names:
                raise ValueError(
                    f"the {role} column must exist in {path.name}, but {col!r} does not; "
                    f"available columns: {schema.names}"
                )
    columns = list(dict.fromkeys(c for cols in wanted.values() for c in cols))
    table = pq.read_table(path, columns=columns)
    n = table.num_rows

    X = _features(table, feature_cols)
    classes: dict[str, tuple[str, ...]] = {}
    task = _infer(table.schema.field(target).type, task, ("regression", "classification"), "task")
    y, y_names = _labels(table.column(target), f"target column {target!r}",
                         task == "classification", order.get(target))  # fmt: skip
    if y_names:
        classes["y"] = y_names

    q_kind = _infer(table.schema.field(protected_cols[0]).type, q_kind,
                    ("continuous", "categorical"), "q_kind")  # fmt: skip
    if q_kind == "categorical" and len(protected_cols) > 1:
        raise ValueError(
            f"a categorical protected attribute must be one column, but got {protected_cols}; "
            "pass q_kind='continuous' for several numeric columns"
        )
    q_parts = []
    for col in protected_cols:
        values, names = _labels(table.column(col), f"protected column {col!r}",
                                q_kind == "categorical", order.get(col))  # fmt: skip
        q_parts.append(values)
        if names:
            classes["q"] = names
            check_two_values(np.asarray(names, dtype=object)[values], f"protected column {col!r}")
    q = q_parts[0] if len(q_parts) == 1 else np.column_stack(q_parts)

    extra_arrays: dict[str, np.ndarray] = {}
    for col in extras:
        kind = _infer(table.schema.field(col).type, "auto", ("continuous", "categorical"), col)
        extra_arrays[col], names = _labels(table.column(col), f"extra column {col!r}",
                                           kind == "categorical", order.get(col))  # fmt: skip
        if names:
            classes[col] = names

    if split:
        split_arr = _strings(table.column(split), f"split column {split!r}")
        check_split(split_arr, f"split column {split!r}", min_rows)
    else:
        split_arr = random_split(n, seed=seed)

    data = Dataset(
        name=name or path.stem,
        X=X,
        y=y,
        q=q,
        split=split_arr,
        task=task,
        q_kind=q_kind,
        extras=extra_arrays,
        classes=classes,
        feature_names=() if len(feature_cols) == 1 and X.shape[1] != 1 else tuple(feature_cols),
    )
    labels = {
        "X": f"features column {features!r}" if isinstance(features, str) else f"features columns {feature_cols}",
        "y": f"target column {target!r}",
        "q": f"protected column {protected!r}" if isinstance(protected, str) else f"protected columns {protected_cols}",
        "split": f"split column {split!r}" if split else "random split",
    }  # fmt: skip
    labels.update({col: f"extra column {col!r}" for col in extras})
    return validate_dataset(data, min_rows=min_rows, labels=labels)


def save_parquet(
    data: Dataset,
    path: str | os.PathLike[str],
    *,
    layout: Literal["list", "columns"] = "list",
) -> Path:
    """Write ``data`` as Parquet that :func:`load_parquet` reads back to the same arrays.

    Columns: ``embedding`` (``fixed_size_list<float32>[d]``; with ``layout="columns"`` one
    float32 column per feature, named by ``feature_names`` or ``f0..``), ``target``,
    ``protected`` (``protected_0..`` when ``q`` has several columns), ``split`` and one column
    per extra. Coded labels with class names are written as their names. The roles are recorded
    in the schema metadata, so ``load_parquet(path)`` needs no column arguments. The file is
    written atomically (a temporary file in the same folder, then renamed).
    """
    if layout not in ("list", "columns"):
        raise ValueError(f"layout must be 'list' or 'columns', but got {layout!r}")
    X = np.ascontiguousarray(np.asarray(data.X, dtype=np.float32))
    cols: dict[str, pa.Array] = {}
    if layout == "list":
        flat = pa.array(X.reshape(-1), type=pa.float32())
        cols[EMBEDDING] = pa.FixedSizeListArray.from_arrays(flat, X.shape[1])
        features: str | list[str] = EMBEDDING
    else:
        features = list(data.feature_names) or [f"f{j}" for j in range(X.shape[1])]
        cols.update({f: pa.array(X[:, j]) for j, f in enumerate(features)})
    cols[TARGET] = _named(np.asarray(data.y), data.classes.get("y"))
    q = np.asarray(data.q)
    if q.ndim == 1:
        protected: str | list[str] = PROTECTED
        cols[PROTECTED] = _named(q, data.classes.get("q"))
    else:
        protected = [f"{PROTECTED}_{j}" for j in range(q.shape[1])]
        cols.update({p: pa.array(q[:, j]) for j, p in enumerate(protected)})
    cols[SPLIT] = pa.array(np.asarray(data.split).astype(str))
    for key, values in data.extras.items():
        if key in cols:
            raise ValueError(f"an extra's name must not repeat a column name, but got {key!r}")
        cols[key] = _named(np.asarray(values), data.classes.get(key))
    roles = {"y": TARGET, "q": PROTECTED, **{k: k for k in data.extras}}
    classes = {roles[k]: list(v) for k, v in data.classes.items() if k in roles}
    meta = {"name": data.name, "features": features, "target": TARGET, "protected": protected,
            "split": SPLIT, "extras": list(data.extras), "task": data.task, "q_kind": data.q_kind,
            "classes": classes}  # fmt: skip
    table = pa.table(cols).replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.close(fd)
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:  # e.g. a full disk inside pyarrow: no temporary file stays
        discard(tmp)
        raise
    return path


# ----------------------------------------------------------------------------- helpers
def _features(table: pa.Table, cols: list[str]) -> np.ndarray:
    if len(cols) == 1 and _is_list(table.schema.field(cols[0]).type):
        return _list_column(table.column(cols[0]), cols[0])
    parts = []
    for col in cols:
        typ = table.schema.field(col).type
        if _is_list(typ):
            raise ValueError(
                f"a list column must be the only features column, but {col!r} is a list among "
                f"{cols}"
            )
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)):
            raise ValueError(f"feature column {col!r} must be numeric, but has type {typ}")
        values = _numpy(table.column(col), np.float64)
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
    flat = pc.list_flatten(arr)
    values = flat.to_numpy(zero_copy_only=False).astype(np.float64)
    if flat.null_count:
        values[np.asarray(flat.is_null().to_numpy(zero_copy_only=False))] = np.nan
    X = values.reshape(len(arr), width)
    check_finite(X, label)
    return X.astype(np.float32)


def _labels(
    column: pa.ChunkedArray, label: str, coded: bool, order: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(values, class names): int64 codes when ``coded``, else float32 values.

    Codes index the sorted distinct values, or ``order`` (class names recorded by
    :func:`save_parquet`) when every value is one of them.
    """
    typ = column.type
    if _is_list(typ):
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
        values = _numpy(column, np.float64)
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


def _strings(column: pa.ChunkedArray, label: str) -> np.ndarray:
    if column.null_count:
        raise ValueError(
            f"{label} values must be one of ['train', 'val', 'test'], but {column.null_count} "
            "rows are null"
        )
    return np.asarray(column.to_pylist()).astype(str)


def _numpy(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    arr = column.combine_chunks()
    values = arr.to_numpy(zero_copy_only=False).astype(dtype)
    if arr.null_count:
        values[np.asarray(arr.is_null().to_numpy(zero_copy_only=False))] = np.nan
    return values


def _named(values: np.ndarray, names: tuple[str, ...] | None) -> pa.Array:
    if names and values.dtype.kind in "iu":
        return pa.array(np.asarray(names, dtype=object)[values])
    return pa.array(values)


def _is_list(typ: pa.DataType) -> bool:
    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def _infer(typ: pa.DataType, given: str, options: tuple[str, str], arg: str) -> str:
    """``options`` = (value kind, class kind); floats are values, everything else classes."""
    if given != "auto":
        if given not in options:
            raise ValueError(f"{arg} must be one of {[*options, 'auto']}, but got {given!r}")
        return given
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    return options[0] if pa.types.is_floating(typ) else options[1]
