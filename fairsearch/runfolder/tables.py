"""The run folder's tables, declared once: each file's columns and their kinds.

A stage writes a table with :func:`write_table`, which checks the frame against its
:class:`TableSchema` first, so a column renamed in one stage and not in the stage that reads it
fails where it is written, with the table and the column named. Columns whose names depend on
the run (a parameter, an objective, a metric) are declared by their prefix. docs/schemas.md
describes the same tables for a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
from pandas.api import types as ptypes

from fairsearch.io.atomic import write_atomic

__all__ = ["TABLES", "TableSchema", "check_table", "write_table"]

#: What a column holds: ``any`` is not checked (a sampled parameter: a number or a choice).
Kind = Literal["int", "float", "str", "bool", "time", "list", "any"]


@dataclass(frozen=True)
class TableSchema:
    """One table of a run folder: its fixed ``columns`` (all present, in any order) and the
    ``prefixes`` of the columns named after the run's parameters and metrics."""

    file: str
    columns: Mapping[str, Kind]
    prefixes: Mapping[str, Kind] = field(default_factory=dict)

    def kind_of(self, column: str) -> Kind | None:
        """The declared kind of ``column``; None when the table does not declare it."""
        if column in self.columns:
            return self.columns[column]
        for prefix, kind in self.prefixes.items():
            if column.startswith(prefix) and len(column) > len(prefix):
                return kind
        return None

    def problems(self, frame: pd.DataFrame) -> list[str]:
        """Every way ``frame`` differs from this schema (empty: it conforms)."""
        out = [f"column {c!r} is missing" for c in self.columns if c not in frame.columns]
        for column in frame.columns:
            kind = self.kind_of(str(column))
            if kind is None:
                out.append(f"column {column!r} is not declared")
            elif not _holds(frame[column], kind):
                out.append(f"column {column!r} holds {frame[column].dtype}, not {kind}")
        return out


def _holds(values: pd.Series, kind: Kind) -> bool:
    """Whether ``values`` are of ``kind``; a column with no value (all null) holds any kind."""
    if kind == "any" or values.isna().all():
        return True
    dtype = values.dtype
    if kind == "int":
        return ptypes.is_integer_dtype(dtype)
    if kind == "float":
        return ptypes.is_float_dtype(dtype) or ptypes.is_integer_dtype(dtype)
    if kind == "bool":
        return ptypes.is_bool_dtype(dtype)
    if kind == "time":
        return ptypes.is_datetime64_any_dtype(dtype)
    present = values.dropna()
    if kind == "str":
        return (ptypes.is_string_dtype(dtype) or ptypes.is_object_dtype(dtype)) and all(
            isinstance(v, str) for v in present)
    return ptypes.is_object_dtype(dtype) and all(  # list
        isinstance(v, (list, tuple)) or hasattr(v, "__len__") for v in present)


def _schemas(*schemas: TableSchema) -> dict[str, TableSchema]:
    return {s.file: s for s in schemas}


TABLES: dict[str, TableSchema] = _schemas(
    TableSchema("trials.parquet", {
        "trial_id": "str", "number": "int", "status": "str", "error": "str", "seed": "int",
        "n_seeds": "int", "started_at": "time", "ended_at": "time", "duration_s": "float",
        "train_s": "float", "overhead_s": "float", "lane": "int", "attempt": "int",
        "retry_of": "int", "same_as": "int", "node": "str", "node_id": "str",
    }, {"param.": "any", "objective.": "float", "metric.": "float", "se.": "float",
        "per_seed.": "list", "rung.": "float", "rung_se.": "float"}),
    # one column per reported loss term or validation metric, named by the family
    TableSchema("history.parquet", {"trial_id": "str", "number": "int", "seed": "int",
                                    "epoch": "int"}, {"": "float"}),
    TableSchema("pareto.parquet", {
        "trial_id": "str", "number": "int", "rank": "int", "on_front": "bool", "chosen": "bool",
        "trivial": "bool", "candidate": "int", "candidate_why": "str",
    }),
    TableSchema("retrain.parquet", {
        "config_id": "str", "number": "int", "trial_id": "str", "seed": "int", "status": "str",
        "error": "str", "duration_s": "float",
    }, {"metric.": "float", "test.": "float"}),
    TableSchema("retrain_summary.parquet", {
        "config_id": "str", "seeds": "int", "robust_front": "bool", "unstable": "bool",
        "unstable_reason": "str",
    }, {"metric.": "float", "test.": "float"}),
    TableSchema("audit.parquet", {
        "model": "str", "target": "str", "probe": "str", "metric": "str", "value": "float",
        "ci_low": "float", "ci_high": "float", "chance": "float", "floor": "float",
        "selected": "str",
    }),
)  # fmt: skip


def check_table(frame: pd.DataFrame, file: str) -> None:
    """Refuse (``ValueError``) a frame that does not conform to the schema of ``file``."""
    problems = TABLES[file].problems(frame)
    if problems:
        raise ValueError(f"{file} does not match its declared columns: " + "; ".join(problems))


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Check ``frame`` against the schema of ``path``'s file name, then write it atomically."""
    check_table(frame, path.name)
    write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
