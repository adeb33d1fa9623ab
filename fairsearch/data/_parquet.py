"""Parquet in and out: user tables -> :class:`Dataset`, and a Dataset (e.g. translated
embeddings) -> a Parquet file that :func:`load_parquet` reads back.

Layout read: features are one column holding a list of floats per row (``fixed_size_list`` or
``list``) or several numeric columns; a target, a protected attribute, an optional split column
("train" | "val" | "test"; a seeded 60/20/20 split when absent) and optional extra label columns.
String, boolean and dictionary columns used as labels are coded to int64 (sorted class names
kept in ``Dataset.classes``); several categorical protected columns become their intersection. Every problem is reported before training with the column named.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fairsearch.data._arrow import (
    features_array,
    infer_kind,
    label_array,
    named_array,
    split_strings,
)
from fairsearch.data._dataset import Dataset, QKind, Task, random_split, validate_dataset
from fairsearch.data._groups import MIN_CELL_ROWS, check_cells, intersect
from fairsearch.data._validation import check_split, check_two_values
from fairsearch.io.atomic import discard

__all__ = ["load_parquet", "save_parquet"]

#: Key of the schema metadata entry that :func:`save_parquet` writes.
METADATA_KEY = b"fairsearch"
EMBEDDING, TARGET, PROTECTED, SPLIT = "embedding", "target", "protected", "split"
Classes = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class _Columns:
    """Which columns play which role in one file, and how to read them: the arguments of
    :func:`load_parquet`, else what :func:`save_parquet` recorded in the file."""

    features: str | list[str]  # one column of lists, or numeric columns
    target: str
    protected: str | list[str]
    split: str | None
    extras: list[str]
    task: str
    q_kind: str
    name: str | None
    order: dict[str, list[str]]  # class names in their saved order, by column

    @property
    def feature_cols(self) -> list[str]:
        return [self.features] if isinstance(self.features, str) else list(self.features)

    @property
    def protected_cols(self) -> list[str]:
        return [self.protected] if isinstance(self.protected, str) else list(self.protected)

    def by_role(self) -> dict[str, list[str]]:
        return {"features": self.feature_cols, "target": [self.target],
                "protected": self.protected_cols, "split": [self.split] if self.split else [],
                "extras": list(self.extras)}  # fmt: skip

    def labels(self) -> dict[str, str]:
        """What messages call each role's column(s), for :func:`validate_dataset`."""
        features, protected = self.features, self.protected
        return {
            "X": f"features column {features!r}" if isinstance(features, str) else f"features columns {self.feature_cols}",
            "y": f"target column {self.target!r}",
            "q": f"protected column {protected!r}" if isinstance(protected, str) else f"protected columns {self.protected_cols}",
            "split": f"split column {self.split!r}" if self.split else "random split",
            **{col: f"extra column {col!r}" for col in self.extras},
        }  # fmt: skip


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
    min_cell_rows: int = MIN_CELL_ROWS,
) -> Dataset:
    """Read a Parquet file into a validated :class:`Dataset`.

    Args:
        features: one column of float lists (an embedding), or a list of numeric columns.
        target: the label column to predict.
        protected: the protected-attribute column. Several categorical columns give their
            intersection as one categorical ``q`` (a group per combination that occurs, named
            ``"Black × Female"``); several numeric columns give ``q`` of shape ``(n, k)``
            (``q_kind="continuous"``).
        split: a column of "train"/"val"/"test"; ``None``: a seeded random 60/20/20 split.
        extras: further label columns carried along (e.g. an attribute for a transfer audit).
        task, q_kind: ``"auto"`` infers them from the column type: strings, booleans,
            dictionaries and integers are classes ("classification" / "categorical"),
            floats are values ("regression" / "continuous").
        seed: seed of the random split.
        min_rows: the fewest rows any split may have (e.g. the batch size).
        name: the dataset's name; the file's stem by default.
        min_cell_rows: an intersection's fewest validation and test rows per cell.

    Arguments left at their defaults take what :func:`save_parquet` recorded in the file's
    metadata (columns, split, extras, task, q_kind, name, class order), so a saved dataset loads
    back with ``load_parquet(path)``; a file without that metadata needs ``features``,
    ``target`` and ``protected``. Raises ``ValueError`` naming the column for a missing
    column, NaN/inf/null values, lists of unequal length, a protected attribute with a single
    value, unknown split values, a split smaller than ``min_rows`` or an intersection cell with
    fewer than ``min_cell_rows`` validation or test rows (each such cell named).
    """
    path = Path(path)
    schema = pq.read_schema(path)
    cols = _columns(path, schema, features=features, target=target, protected=protected,
                    split=split, extras=extras, task=task, q_kind=q_kind, name=name)  # fmt: skip
    table = pq.read_table(path, columns=list(dict.fromkeys(
        c for role_cols in cols.by_role().values() for c in role_cols)))  # fmt: skip
    X = features_array(table, cols.feature_cols)
    classes: Classes = {}
    task, y = _target(table, cols, classes)
    q_kind, q = _protected(table, cols, classes)
    extra_arrays = _extras(table, cols, classes)
    split_arr = _split(table, cols, seed, min_rows)
    if q_kind == "categorical" and len(cols.protected_cols) > 1:
        check_cells(q, split_arr, classes["q"], min_rows=min_cell_rows,
                    label=f"protected columns {cols.protected_cols}")  # fmt: skip
    single_list = len(cols.feature_cols) == 1 and X.shape[1] != 1
    data = Dataset(name=cols.name or path.stem, X=X, y=y, q=q, split=split_arr, task=task,
                   q_kind=q_kind, extras=extra_arrays, classes=classes,
                   feature_names=() if single_list else tuple(cols.feature_cols))  # fmt: skip
    return validate_dataset(data, min_rows=min_rows, labels=cols.labels())


def _columns(path: Path, schema: pa.Schema, **given: Any) -> _Columns:
    """The roles of ``given`` (arguments of :func:`load_parquet`), the file's saved metadata
    filling those left at their defaults; each column must exist in the file."""
    saved = json.loads(schema.metadata.get(METADATA_KEY, b"{}")) if schema.metadata else {}
    picked = {k: given[k] if given[k] is not None else saved.get(k)
              for k in ("features", "target", "protected", "split")}  # fmt: skip
    what = {"features": "one column of number lists (an embedding) or a list of numeric columns",
            "target": "a column", "protected": "a column (or a list of numeric columns)"}
    for arg in ("features", "target", "protected"):
        value = picked[arg]
        if value is None or (not isinstance(value, str) and len(value) == 0):
            raise ValueError(
                f"{arg} must name {what[arg]} of {path.name} (its columns: {schema.names}), but "
                f"got {value!r}; see docs/data.md"
            )
    cols = _Columns(
        features=picked["features"] if isinstance(picked["features"], str) else list(picked["features"]),
        target=picked["target"],
        protected=picked["protected"] if isinstance(picked["protected"], str) else list(picked["protected"]),
        split=picked["split"],
        extras=list(given["extras"] if given["extras"] is not None else saved.get("extras", [])),
        task=saved.get("task", "auto") if given["task"] == "auto" else given["task"],
        q_kind=saved.get("q_kind", "auto") if given["q_kind"] == "auto" else given["q_kind"],
        name=given["name"] or saved.get("name"),
        order=saved.get("classes", {}),
    )  # fmt: skip
    for role, role_cols in cols.by_role().items():
        for col in role_cols:
            if col not in schema.names:
                raise ValueError(
                    f"the {role} column must exist in {path.name}, but {col!r} does not; "
                    f"available columns: {schema.names}"
                )
    return cols


def _target(table: pa.Table, cols: _Columns, classes: Classes) -> tuple[str, np.ndarray]:
    """``(task, y)``: the task inferred from the target column's type unless given."""
    task = infer_kind(table.schema.field(cols.target).type, cols.task,
                      ("regression", "classification"), "task")  # fmt: skip
    y, names = label_array(table.column(cols.target), f"target column {cols.target!r}",
                           task == "classification", cols.order.get(cols.target))  # fmt: skip
    if names:
        classes["y"] = names
    return task, y


def _protected(table: pa.Table, cols: _Columns, classes: Classes) -> tuple[str, np.ndarray]:
    """``(q_kind, q)``: one categorical column taking at least 2 values, or numeric columns."""
    protected_cols = cols.protected_cols
    q_kind = infer_kind(table.schema.field(protected_cols[0]).type, cols.q_kind,
                        ("continuous", "categorical"), "q_kind")  # fmt: skip
    parts, part_names = [], []
    for col in protected_cols:
        values, names = label_array(table.column(col), f"protected column {col!r}",
                                    q_kind == "categorical", cols.order.get(col))  # fmt: skip
        parts.append(values)
        part_names.append(names)
        if names:
            classes["q"] = names
            check_two_values(np.asarray(names, dtype=object)[values], f"protected column {col!r}")
    if q_kind == "categorical" and len(parts) > 1:  # the intersection: one group per cell
        q, classes["q"] = intersect(parts, part_names)
        return q_kind, q
    return q_kind, parts[0] if len(parts) == 1 else np.column_stack(parts)


def _extras(table: pa.Table, cols: _Columns, classes: Classes) -> dict[str, np.ndarray]:
    """The extra label columns, each coded or numeric by its type."""
    out: dict[str, np.ndarray] = {}
    for col in cols.extras:
        kind = infer_kind(table.schema.field(col).type, "auto", ("continuous", "categorical"), col)
        out[col], names = label_array(table.column(col), f"extra column {col!r}",
                                      kind == "categorical", cols.order.get(col))  # fmt: skip
        if names:
            classes[col] = names
    return out


def _split(table: pa.Table, cols: _Columns, seed: int, min_rows: int) -> np.ndarray:
    """The split column, checked, or a seeded random 60/20/20 split without one."""
    if not cols.split:
        return random_split(table.num_rows, seed=seed)
    split = split_strings(table.column(cols.split), f"split column {cols.split!r}")
    check_split(split, f"split column {cols.split!r}", min_rows)
    return split


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
    cols[TARGET] = named_array(np.asarray(data.y), data.classes.get("y"))
    q = np.asarray(data.q)
    if q.ndim == 1:
        protected: str | list[str] = PROTECTED
        cols[PROTECTED] = named_array(q, data.classes.get("q"))
    else:
        protected = [f"{PROTECTED}_{j}" for j in range(q.shape[1])]
        cols.update({p: pa.array(q[:, j]) for j, p in enumerate(protected)})
    cols[SPLIT] = pa.array(np.asarray(data.split).astype(str))
    for key, values in data.extras.items():
        if key in cols:
            raise ValueError(f"an extra's name must not repeat a column name, but got {key!r}")
        cols[key] = named_array(np.asarray(values), data.classes.get(key))
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
