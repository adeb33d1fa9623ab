"""UCI Adult (census income), shipped in ``data/adult.parquet``; see ``data/README.md``."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Literal

import numpy as np
import pandas as pd

from fairsearch.data._dataset import Dataset, random_split, validate_dataset
from fairsearch.data._groups import MIN_CELL_ROWS, check_cells, intersect

__all__ = ["load_adult"]

NUMERIC = ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
#: ``education`` is left out: ``education_num`` is the same information as an ordinal.
CATEGORICAL = (
    "workclass", "marital_status", "occupation", "relationship", "race", "sex", "native_country",
)  # fmt: skip
PROTECTED = ("sex", "race", "race_white")
_PROTECTED_SOURCE = {"sex": "sex", "race": "race", "race_white": "race"}


def read_adult_frame() -> pd.DataFrame:
    """The shipped file as a DataFrame: 48,842 rows, raw UCI values, missing values as NA."""
    with resources.as_file(resources.files("fairsearch.data") / "files" / "adult.parquet") as p:
        return pd.read_parquet(p)


def load_adult(
    protected: Literal["sex", "race", "race_white"] | Sequence[str] = "sex",
    *,
    seed: int = 0,
    split: Literal["random", "uci"] = "random",
    drop_protected: bool = False,
    max_rows: int | None = None,
    min_rows: int = 1,
    min_cell_rows: int = MIN_CELL_ROWS,
) -> Dataset:
    """UCI Adult as a :class:`Dataset`: predict income > 50K; protect sex or race.

    Rows with a missing value are dropped (45,222 remain, the usual count).

    Args:
        protected: ``"sex"`` (Female=0, Male=1), ``"race"`` (five groups, codes in the order of
            ``classes["q"]``) or ``"race_white"`` (non-white=0, white=1); a list of them
            (``["race", "sex"]``) protects their intersection, one group per combination that
            occurs (``"Black × Female"``).
        seed: seed of the split and of the ``max_rows`` subsample.
        split: ``"random"``: a seeded 60/20/20 train/val/test split; ``"uci"``: the original
            UCI test file as "test", a seeded 20% of the UCI training file as "val".
        drop_protected: leave the protected attribute's own one-hot columns out of ``X``
            (its proxies, e.g. ``relationship=Husband``, stay).
        max_rows: keep a seeded random subsample of this many rows (for quick experiments).
        min_rows: the fewest rows any split may have (e.g. the batch size).
        min_cell_rows: an intersection's fewest validation and test rows per cell; a smaller
            cell is an error that names it.

    ``X`` (float32): ``age``, ``education_num``, ``log1p(capital_gain)``,
    ``log1p(capital_loss)``, ``hours_per_week`` standardised with train-split statistics, then
    0/1 one-hot columns of the categorical attributes (``feature_names`` names them).
    ``extras``: ``sex``, ``race``, ``race_white`` and ``age_ge_30`` (int64 codes), for audits of
    attributes the model was not trained against.
    """
    if isinstance(protected, str) and protected not in PROTECTED:
        raise ValueError(f"protected must be one of {list(PROTECTED)}, but got {protected!r}")
    columns = [protected] if isinstance(protected, str) else list(protected)
    if not columns or any(not isinstance(c, str) or c not in PROTECTED for c in columns) \
            or len(set(columns)) != len(columns):  # fmt: skip
        raise ValueError(f"protected must be one of {list(PROTECTED)} or a list of distinct "
                         f"ones, but got {protected!r}")  # fmt: skip
    if split not in ("random", "uci"):
        raise ValueError(f"split must be 'random' or 'uci', but got {split!r}")
    df = _complete_rows(max_rows, seed)
    parts = _split(df, split, seed)
    attributes = _attributes(df)
    drop = {_PROTECTED_SOURCE[c] for c in columns} if drop_protected else set()
    X, names = _features(df, parts == "train", drop=drop)
    if len(columns) == 1:
        q, q_names = attributes[columns[0]]
    else:
        q, q_names = intersect([attributes[c][0] for c in columns],
                               [attributes[c][1] for c in columns])  # fmt: skip
        check_cells(q, parts, q_names, min_rows=min_cell_rows, label=f"protected {columns}")
    data = Dataset(
        name="adult",
        X=X,
        y=(df["income"] == ">50K").to_numpy(np.int64),
        q=q,
        split=parts,
        task="classification",
        q_kind="categorical",
        extras={k: v for k, (v, _) in attributes.items()},
        classes={"y": ("<=50K", ">50K"), "q": q_names, **{k: c for k, (_, c) in attributes.items()}},
        feature_names=names,
    )
    return validate_dataset(data, min_rows=min_rows)


def _complete_rows(max_rows: int | None, seed: int) -> pd.DataFrame:
    """The rows without a missing value; a seeded subsample of ``max_rows`` of them."""
    df = read_adult_frame().dropna().reset_index(drop=True)
    if max_rows is not None:
        if max_rows < 10:
            raise ValueError(f"max_rows must be >= 10 (or None for all rows), but got {max_rows}")
        if max_rows < len(df):
            keep = np.sort(np.random.default_rng(seed).choice(len(df), max_rows, replace=False))
            df = df.iloc[keep].reset_index(drop=True)
    return df


def _attributes(df: pd.DataFrame) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
    """Every attribute that can be protected or audited: (int64 codes, class names)."""
    return {
        "sex": _codes(df["sex"]),
        "race": _codes(df["race"]),
        "race_white": ((df["race"] == "White").to_numpy(np.int64), ("non-white", "white")),
        "age_ge_30": ((df["age"] >= 30).to_numpy(np.int64), ("under 30", "30 or over")),
    }


def _split(df: pd.DataFrame, how: str, seed: int) -> np.ndarray:
    if how == "random":
        return random_split(len(df), seed=seed)
    parts = df["uci_split"].astype(str).to_numpy().astype("<U5")
    train = np.flatnonzero(parts == "train")
    val = np.random.default_rng(seed).choice(
        train, size=int(round(0.2 * len(train))), replace=False
    )
    parts[val] = "val"
    return parts


def _codes(column: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    names, codes = np.unique(column.astype(str).to_numpy(), return_inverse=True)
    return codes.astype(np.int64), tuple(names.tolist())


def _features(
    df: pd.DataFrame, train: np.ndarray, drop: set[str]
) -> tuple[np.ndarray, tuple[str, ...]]:
    numeric = df[list(NUMERIC)].astype(np.float64)
    numeric["capital_gain"] = np.log1p(numeric["capital_gain"])
    numeric["capital_loss"] = np.log1p(numeric["capital_loss"])
    mean, std = numeric[train].mean(), numeric[train].std(ddof=0).replace(0.0, 1.0)
    numeric = (numeric - mean) / std
    cats = [c for c in CATEGORICAL if c not in drop]
    # every category of the full file gets a column, so X has the same columns at any seed
    onehot = pd.get_dummies(df[cats].astype("category"), prefix_sep="=", dtype=np.float64)
    frame = pd.concat([numeric, onehot], axis=1)
    return frame.to_numpy(np.float32), tuple(str(c) for c in frame.columns)
