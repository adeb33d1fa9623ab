"""Intersections of categorical protected attributes: the cells, their names, and the error that
names cells with too few held-out rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fairsearch.data import load_parquet
from fairsearch.data._groups import check_cells, intersect


def _table(n: int = 2000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    race = rng.choice(["Asian", "Black", "White"], size=n, p=[0.2, 0.3, 0.5])
    sex = rng.choice(["F", "M"], size=n)
    split = rng.choice(["train", "val", "test"], size=n, p=[0.6, 0.2, 0.2])
    return pa.table({"x": rng.normal(size=n), "y": rng.integers(0, 2, size=n), "race": race,
                     "sex": sex, "split": split})  # fmt: skip


def test_intersect_codes_each_combination_that_occurs():
    q, names = intersect([np.array([0, 1, 1, 0, 1]), np.array([1, 0, 1, 1, 1])],
                         [("a", "b"), ("x", "y")])  # fmt: skip
    assert names == ("a × y", "b × x", "b × y")  # "a × x" does not occur: no cell
    np.testing.assert_array_equal(q, [0, 1, 2, 0, 2])


def test_parquet_protected_columns_become_their_intersection(tmp_path: Path):
    table = _table()
    pq.write_table(table, tmp_path / "t.parquet")
    data = load_parquet(tmp_path / "t.parquet", features=["x"], target="y",
                        protected=["race", "sex"], split="split")  # fmt: skip
    assert data.q_kind == "categorical" and data.q.ndim == 1
    assert data.classes["q"] == ("Asian × F", "Asian × M", "Black × F", "Black × M",
                                 "White × F", "White × M")  # fmt: skip
    race, sex = (np.asarray(table.column(c).to_pylist()) for c in ("race", "sex"))
    named = np.asarray(data.classes["q"])[data.q]
    np.testing.assert_array_equal(named, np.char.add(np.char.add(race, " × "), sex))
    # each cell holds exactly the rows of its combination
    for i, cell in enumerate(data.classes["q"]):
        r, s = cell.split(" × ")
        assert (data.q == i).sum() == ((race == r) & (sex == s)).sum()


def test_small_cells_are_named_with_their_counts(tmp_path: Path):
    pq.write_table(_table(n=300), tmp_path / "t.parquet")
    args = {"features": ["x"], "target": "y", "protected": ["race", "sex"], "split": "split"}
    with pytest.raises(ValueError, match=r"every cell of the intersection of protected columns "
                                         r"\['race', 'sex'\] must have at least min_cell_rows=20 "
                                         r"rows in val and in test.*'Asian × F' \(val \d+, test \d+\)"):
        load_parquet(tmp_path / "t.parquet", **args)
    data = load_parquet(tmp_path / "t.parquet", **args, min_cell_rows=3)  # a stated lower minimum
    assert len(data.classes["q"]) == 6


def test_check_cells_counts_val_and_test_and_a_missing_cell_is_zero():
    q = np.array([0, 0, 1, 1, 0, 0, 1, 2])
    split = np.array(["val", "test", "val", "test", "val", "test", "train", "train"])
    check_cells(q[:6], split[:6], ("a", "b"), min_rows=1, label="protected ['r', 's']")
    with pytest.raises(ValueError, match=r"1 of 3 cells have fewer: 'c' \(val 0, test 0\)"):
        check_cells(q, split, ("a", "b", "c"), min_rows=1, label="protected ['r', 's']")
    with pytest.raises(ValueError, match=r"min_cell_rows must be an integer >= 1, but got 0"):
        check_cells(q, split, ("a", "b", "c"), min_rows=0, label="x")


def test_adult_protects_the_intersection_of_race_and_sex():
    from fairsearch.data import load_adult

    data = load_adult(["race", "sex"])
    assert len(data.classes["q"]) == 10 and "Black × Female" in data.classes["q"]
    sex = np.asarray(data.classes["sex"])[data.extras["sex"]]
    cell_sex = np.array([c.split(" × ")[1] for c in data.classes["q"]])[data.q]
    np.testing.assert_array_equal(sex, cell_sex)
    with pytest.raises(ValueError, match=r"'Other × Female' \(val 0, test 3\)"):
        load_adult(["race", "sex"], max_rows=3000)
    with pytest.raises(ValueError, match=r"protected must be one of .* or a list of distinct "
                                         r"ones, but got \['sex', 'sex'\]"):
        load_adult(["sex", "sex"])
