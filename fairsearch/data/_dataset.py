"""The ``Dataset`` every model family trains on, and its validation.

A dataset is a frozen bundle of numpy arrays plus a ``split`` column; the model code never sees a
file or a DataFrame. Loaders build one and pass it through :func:`validate_dataset`, which fails
with a message naming the column and the problem before any training starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from fairsearch.data._validation import (
    SPLITS,
    check_finite,
    check_lengths,
    check_numeric,
    check_split,
    check_two_values,
)

Task = Literal["regression", "classification"]
QKind = Literal["continuous", "categorical"]
Part = Literal["train", "val", "test"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features, target, protected attribute and split of one problem.

    Attributes:
        name: a short name (shown in logs and reports).
        X: ``(n, d)`` float32 features or embeddings.
        y: ``(n,)`` float32 for regression, int64 class codes ``0..K-1`` for classification.
        q: ``(n,)`` or ``(n, k)`` protected attribute; int64 codes when categorical.
        split: ``(n,)`` strings ``"train" | "val" | "test"``.
        task: ``"regression"`` or ``"classification"``.
        q_kind: ``"continuous"`` or ``"categorical"``.
        extras: further label columns (e.g. an attribute never seen in training), ``(n,)`` each.
        classes: class names of coded columns, keyed ``"y"``, ``"q"`` or an extra's name;
            ``classes["y"][c]`` is the name of code ``c``.
        feature_names: one name per column of ``X`` (empty when unnamed, e.g. embeddings).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    q: np.ndarray
    split: np.ndarray
    task: Task
    q_kind: QKind
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    feature_names: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(np.asarray(self.X).shape[0])

    @property
    def d(self) -> int:
        """Number of feature columns."""
        return int(np.asarray(self.X).shape[1])

    def split_counts(self) -> dict[str, int]:
        """Rows per split, e.g. ``{"train": 600, "val": 0, "test": 200}``."""
        split = np.asarray(self.split).astype(str)
        return {part: int((split == part).sum()) for part in SPLITS}

    def subset(self, part: Part) -> Dataset:
        """The rows of one split (an empty dataset when the split has no rows)."""
        if part not in SPLITS:
            raise ValueError(f"part must be one of {list(SPLITS)}, but got {part!r}")
        mask = np.asarray(self.split).astype(str) == part
        return Dataset(
            name=self.name,
            X=np.asarray(self.X)[mask],
            y=np.asarray(self.y)[mask],
            q=np.asarray(self.q)[mask],
            split=np.asarray(self.split)[mask],
            task=self.task,
            q_kind=self.q_kind,
            extras={k: np.asarray(v)[mask] for k, v in self.extras.items()},
            classes=dict(self.classes),
            feature_names=self.feature_names,
        )

    @property
    def train(self) -> Dataset:
        return self.subset("train")

    @property
    def val(self) -> Dataset:
        return self.subset("val")

    @property
    def test(self) -> Dataset:
        return self.subset("test")

    def __repr__(self) -> str:
        extras = f", extras={sorted(self.extras)}" if self.extras else ""
        return (
            f"Dataset(name={self.name!r}, n={self.n}, d={self.d}, task={self.task!r}, "
            f"q_kind={self.q_kind!r}, q_shape={np.asarray(self.q).shape}, "
            f"splits={self.split_counts()}{extras})"
        )


def validate_dataset(
    data: Dataset,
    *,
    min_rows: int = 1,
    labels: Mapping[str, str] | None = None,
) -> Dataset:
    """Check ``data`` against the contract; return it unchanged or raise ``ValueError``.

    Checks: ``task``/``q_kind`` values; ``X`` 2-D and numeric; every column with the same number
    of rows; no NaN/inf in ``X``, ``y``, ``q`` or numeric extras; classification targets are
    integer codes ``>= 0`` with at least two classes; categorical ``q`` is integer codes; ``q``
    takes at least two distinct values; split values are train/val/test with some train rows
    and at least ``min_rows`` rows in every split present (pass the batch size here).

    ``labels`` maps a role (``"X"``, ``"y"``, ``"q"``, ``"split"`` or an extra's name) to the
    name shown in messages, e.g. ``{"q": "protected column 'sex'"}``; loaders use it so an error
    names the user's column rather than the role.
    """
    names = {"X": "X", "y": "y", "q": "q", "split": "split"}
    names.update({k: f"extras[{k!r}]" for k in data.extras})
    names.update(labels or {})
    _check_options(data, min_rows)
    X, y, q, split = (np.asarray(a) for a in (data.X, data.y, data.q, data.split))
    _check_shapes(data, X, y, q, split, names)
    _check_values(data, X, y, q, names)
    if data.task == "classification":
        _check_codes(y, names["y"])
        check_two_values(y, names["y"])
    if data.q_kind == "categorical":
        _check_codes(q, names["q"])
    check_two_values(q, names["q"])
    check_split(split, names["split"], min_rows)
    return data


def _check_options(data: Dataset, min_rows: int) -> None:
    """``task`` and ``q_kind`` among their choices, ``min_rows >= 1``."""
    if data.task not in get_args(Task):
        raise ValueError(f"task must be one of {list(get_args(Task))}, but got {data.task!r}")
    if data.q_kind not in get_args(QKind):
        raise ValueError(f"q_kind must be one of {list(get_args(QKind))}, but got {data.q_kind!r}")
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, but got {min_rows}")


def _check_shapes(data: Dataset, X: np.ndarray, y: np.ndarray, q: np.ndarray, split: np.ndarray,
                  names: Mapping[str, str]) -> None:  # fmt: skip
    """``X`` 2-D with named columns if any, one row per row of every column, ``y`` 1-D,
    ``q`` 1-D or 2-D."""
    if X.ndim != 2:
        raise ValueError(f"{names['X']} must be 2-D (rows, features), but has shape {X.shape}")
    if X.shape[1] == 0:
        raise ValueError(f"{names['X']} must have at least one feature, but has shape {X.shape}")
    if data.feature_names and len(data.feature_names) != X.shape[1]:
        raise ValueError(
            f"feature_names must have one name per column of X ({X.shape[1]}), but has "
            f"{len(data.feature_names)}"
        )
    lengths = {
        names["X"]: len(X),
        names["y"]: len(y),
        names["q"]: len(q),
        names["split"]: len(split),
    }
    lengths.update({names[k]: len(np.asarray(v)) for k, v in data.extras.items()})
    check_lengths(lengths)
    if y.ndim != 1:
        raise ValueError(f"{names['y']} must be 1-D (rows,), but has shape {y.shape}")
    if q.ndim not in (1, 2):
        raise ValueError(f"{names['q']} must be (rows,) or (rows, k), but has shape {q.shape}")


def _check_values(data: Dataset, X: np.ndarray, y: np.ndarray, q: np.ndarray,
                  names: Mapping[str, str]) -> None:  # fmt: skip
    """``X``, ``y`` and ``q`` numeric and finite; numeric extras finite."""
    for role, values in (("X", X), ("y", y), ("q", q)):
        check_numeric(values, names[role])
        check_finite(values, names[role])
    for key, values in data.extras.items():
        if np.asarray(values).dtype.kind in "biuf":
            check_finite(np.asarray(values), names[key])


def _check_codes(values: np.ndarray, label: str) -> None:
    if values.dtype.kind not in "iub":
        raise ValueError(
            f"{label} must hold integer class codes (categorical), but has dtype {values.dtype}"
        )
    if values.size and values.min() < 0:
        raise ValueError(f"{label} class codes must be >= 0, but the smallest is {values.min()}")


def random_split(
    n: int,
    *,
    seed: int = 0,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
) -> np.ndarray:
    """A seeded random ``(n,)`` array of "train"/"val"/"test" in the given proportions."""
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"fractions must be three non-negative numbers (train, val, test) summing to 1, "
            f"but got {tuple(fractions)}"
        )
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    labels = np.array(["test"] * n, dtype="<U5")
    labels[:n_train] = "train"
    labels[n_train : n_train + n_val] = "val"
    return labels[np.random.default_rng(seed).permutation(n)]


#: Share of the train rows carved out as validation when a dataset has no ``val`` rows.
VAL_FRACTION = 0.25


def split_train_val(data: Dataset, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, val) parts of a Dataset; carves a seeded 25% of train when there is no val."""
    split = np.asarray(data.split)
    if (split == "val").any():
        return data.subset("train"), data.subset("val")
    train_idx = np.flatnonzero(split == "train")
    rng = np.random.default_rng(seed)
    val_idx = np.sort(rng.choice(train_idx, size=max(1, int(len(train_idx) * VAL_FRACTION)),
                                 replace=False))  # fmt: skip
    new = split.astype(object).copy()
    new[val_idx] = "val"
    carved = dataclasses.replace(data, split=new.astype(str))
    return carved.subset("train"), carved.subset("val")
