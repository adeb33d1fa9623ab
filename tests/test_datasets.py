"""fairsearch.data: the Dataset contract, synthetic data, Parquet I/O, validation, Adult."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from fairsearch.data import (
    Dataset,
    load_adult,
    load_dataset,
    load_parquet,
    random_split,
    save_parquet,
    synthetic_embeddings,
    synthetic_regression,
    validate_dataset,
)


# ----------------------------------------------------------------------------- helpers
def _probe_bacc(data: Dataset, label: str) -> float:
    """Balanced accuracy on test of a logistic probe trained on train."""
    train, test = data.subset("train"), data.subset("test")
    clf = LogisticRegression(max_iter=500).fit(train.X, getattr(train, label))
    return float(balanced_accuracy_score(getattr(test, label), clf.predict(test.X)))


def _tiny(n: int = 20, **changes: object) -> Dataset:
    rng = np.random.default_rng(0)
    data = Dataset(
        name="tiny",
        X=rng.standard_normal((n, 3)).astype(np.float32),
        y=np.arange(n, dtype=np.int64) % 2,
        q=(np.arange(n, dtype=np.int64) // 2) % 3,
        split=np.array(["train"] * (n - 6) + ["val"] * 3 + ["test"] * 3),
        task="classification",
        q_kind="categorical",
    )
    return dataclasses.replace(data, **changes)  # type: ignore[arg-type]


def _frame(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "a": rng.standard_normal(n),
            "b": rng.integers(0, 5, n),
            "label": np.where(rng.random(n) < 0.5, "no", "yes"),
            "group": np.where(np.arange(n) % 3 == 0, "F", "M"),
            "age": rng.uniform(20, 60, n),
            "part": ["train"] * (n - 10) + ["val"] * 5 + ["test"] * 5,
        }
    )


def _write(df: pd.DataFrame | pa.Table, path: Path) -> Path:
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path)
    return path


# ----------------------------------------------------------------------------- synthetic
def test_synthetic_regression_reproduces_the_source_generator() -> None:
    data = synthetic_regression()
    rng = np.random.default_rng(0)  # the notebook's code, verbatim
    x_feat = rng.standard_normal((800, 3)).astype("float32")
    q = rng.standard_normal((800, 1)).astype("float32")
    X = np.hstack([x_feat, q]).astype("float32")
    y = (
        np.tanh(x_feat[:, 0]) + 0.5 * x_feat[:, 1] + 3.0 * q.ravel() + 0.2 * rng.standard_normal(800)
    ).astype("float32")
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, y)
    np.testing.assert_array_equal(data.q, q.ravel())
    assert data.X.dtype == data.y.dtype == data.q.dtype == np.float32
    assert (data.n, data.d, data.task, data.q_kind) == (800, 4, "regression", "continuous")
    assert np.corrcoef(data.y, data.q)[0, 1] == pytest.approx(0.966, abs=5e-4)
    train, test = data.subset("train"), data.subset("test")
    np.testing.assert_array_equal(train.X, X[:600])
    np.testing.assert_array_equal(test.y, y[600:])
    assert data.split_counts() == {"train": 600, "val": 0, "test": 200}


def test_synthetic_regression_options() -> None:
    data = synthetic_regression(n=100, n_train=60, n_val=20, seed=3, q_coef=0.0, noise=0.0)
    assert data.split_counts() == {"train": 60, "val": 20, "test": 20}
    assert list(data.split[58:62]) == ["train", "train", "val", "val"]
    np.testing.assert_allclose(data.y, np.tanh(data.X[:, 0]) + 0.5 * data.X[:, 1], atol=1e-6)
    with pytest.raises(ValueError, match=r"n_train \+ n_val <= n must hold, but got .*n_train=90"):
        synthetic_regression(n=100, n_train=90, n_val=20)


def test_synthetic_embeddings_shapes_and_seeds() -> None:
    data = synthetic_embeddings(n=500, d=16, n_protected=3, seed=1)
    assert data.X.shape == (500, 16) and data.X.dtype == np.float32
    assert data.y.dtype == data.q.dtype == np.int64
    assert set(data.y.tolist()) == {0, 1} and set(data.q.tolist()) == {0, 1, 2}
    assert (data.task, data.q_kind) == ("classification", "categorical")
    assert data.split_counts() == {"train": 300, "val": 100, "test": 100}
    again = synthetic_embeddings(n=500, d=16, n_protected=3, seed=1)
    np.testing.assert_array_equal(data.X, again.X)
    np.testing.assert_array_equal(data.split, again.split)
    assert not np.array_equal(data.X, synthetic_embeddings(n=500, d=16, n_protected=3, seed=2).X)
    with pytest.raises(ValueError, match="leak must be a finite number >= 0, but got -1"):
        synthetic_embeddings(leak=-1)


def test_synthetic_embeddings_leak_controls_what_a_probe_recovers() -> None:
    leaky, clean = synthetic_embeddings(leak=1.0), synthetic_embeddings(leak=0.0)
    # the effect exists: q is recoverable from the leaky embeddings ...
    assert _probe_bacc(leaky, "q") > 0.7
    # ... and is absent at leak=0, while the control task stays easy in both
    assert abs(_probe_bacc(clean, "q") - 0.5) < 0.06
    assert _probe_bacc(leaky, "y") > 0.9 and _probe_bacc(clean, "y") > 0.9


def test_random_split_proportions_and_seed() -> None:
    split = random_split(1000, seed=4)
    assert {p: int((split == p).sum()) for p in ("train", "val", "test")} == {
        "train": 600,
        "val": 200,
        "test": 200,
    }
    np.testing.assert_array_equal(split, random_split(1000, seed=4))
    assert not np.array_equal(split, random_split(1000, seed=5))
    with pytest.raises(ValueError, match=r"summing to 1, but got \(0.5, 0.2, 0.2\)"):
        random_split(10, fractions=(0.5, 0.2, 0.2))


# ----------------------------------------------------------------------------- Dataset
def test_dataset_subset_and_properties() -> None:
    data = _tiny(extras={"e": np.arange(20)}, classes={"y": ("a", "b")}, feature_names=("u", "v", "w"))
    val = data.subset("val")
    assert (val.n, val.d) == (3, 3)
    assert set(val.split.tolist()) == {"val"}
    np.testing.assert_array_equal(val.extras["e"], [14, 15, 16])
    assert val.classes == {"y": ("a", "b")} and val.feature_names == ("u", "v", "w")
    assert data.train.n == 14 and data.test.n == 3
    assert "n=20, d=3" in repr(data) and "'val': 3" in repr(data)
    with pytest.raises(ValueError, match=r"part must be one of \['train', 'val', 'test'\], but got 'dev'"):
        data.subset("dev")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"  # type: ignore[misc]


def test_validate_dataset_accepts_a_good_dataset() -> None:
    data = _tiny()
    assert validate_dataset(data, min_rows=3) is data


@pytest.mark.parametrize(
    ("changes", "kwargs", "message"),
    [
        ({"task": "ranking"}, {}, r"task must be one of \['regression', 'classification'\], but got 'ranking'"),
        ({"X": np.zeros(20, np.float32)}, {}, r"X must be 2-D \(rows, features\), but has shape \(20,\)"),
        ({"y": np.zeros(19, np.int64)}, {}, r"same number of rows, but got X: 20, y: 19, q: 20, split: 20"),
        ({"extras": {"age": np.zeros(21)}}, {}, r"same number of rows, but got .*extras\['age'\]: 21"),
        ({"X": np.where(np.arange(60).reshape(20, 3) % 7 == 0, np.nan, 1.0)}, {},
         r"X must hold only finite values \(no NaN, inf or missing\), but 9 of 20 rows do \(first at row 0\)"),
        ({"q": np.full(20, np.inf), "q_kind": "continuous"}, {}, r"q must hold only finite values .* 20 of 20 rows"),
        ({"q": np.ones(20, np.int64)}, {}, r"q must take at least 2 distinct values, but has the single value 1"),
        ({"q": np.ones(20), "q_kind": "continuous"}, {}, r"q must take at least 2 distinct values"),
        ({"q": np.zeros(20)}, {}, r"q must hold integer class codes \(categorical\), but has dtype float64"),
        ({"y": np.zeros(20, np.int64)}, {}, r"y must take at least 2 distinct values"),
        ({"y": np.linspace(0, 1, 20)}, {}, r"y must hold integer class codes"),
        ({"y": np.arange(20) - 1}, {}, r"y class codes must be >= 0, but the smallest is -1"),
        ({"split": np.array(["train"] * 18 + ["dev", "holdout"])}, {},
         r"split values must be one of \['train', 'val', 'test'\], but got 'dev' \(1 rows\), 'holdout' \(1 rows\)"),
        ({"split": np.array(["test"] * 20)}, {}, r"split must contain at least one 'train' row, but has none"),
        ({}, {"min_rows": 5}, r"every split must have at least min_rows=5 rows, but split has 3 'test' rows"),
        ({"q": np.array(list("abcdefghijklmnopqrst"))}, {}, r"q must be numeric, but has dtype <U1"),
    ],
)  # fmt: skip
def test_validate_dataset_messages(changes: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_dataset(_tiny(**changes), **kwargs)


def test_validate_dataset_names_columns_through_labels() -> None:
    with pytest.raises(ValueError, match="protected column 'sex' must take at least 2 distinct"):
        validate_dataset(_tiny(q=np.zeros(20, np.int64)), labels={"q": "protected column 'sex'"})


# ----------------------------------------------------------------------------- Parquet
def test_parquet_round_trip_list_layout(tmp_path: Path) -> None:
    data = synthetic_embeddings(n=200, d=8)
    data = dataclasses.replace(
        data,
        classes={"y": ("negative", "positive"), "q": ("group-b", "group-a")},  # not sorted
        extras={"tag": np.arange(200) % 4, "score": np.linspace(0, 1, 200)},
    )
    path = save_parquet(data, tmp_path / "emb.parquet")
    schema = pq.read_schema(path)
    assert schema.field("embedding").type == pa.list_(pa.float32(), 8)
    assert schema.field("target").type == pa.string()
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away
    back = load_parquet(path)  # every role comes from the file's metadata
    for field in ("X", "y", "q", "split"):
        np.testing.assert_array_equal(getattr(back, field), getattr(data, field))
    np.testing.assert_array_equal(back.extras["tag"], data.extras["tag"])
    np.testing.assert_allclose(back.extras["score"], data.extras["score"])
    assert back.classes["y"] == ("negative", "positive") and back.classes["q"] == ("group-b", "group-a")
    assert (back.name, back.task, back.q_kind) == ("synthetic_embeddings", "classification", "categorical")


def test_parquet_round_trip_columns_layout(tmp_path: Path) -> None:
    data = synthetic_regression(n=100, n_train=60, n_val=20)
    path = save_parquet(data, tmp_path / "reg.parquet", layout="columns")
    assert pq.read_schema(path).names[:4] == ["x1", "x2", "x3", "q"]
    back = load_parquet(path, features=["x1", "x2", "x3", "q"], target="target", protected="protected",
                        split="split", task="regression", q_kind="continuous")  # fmt: skip
    for field in ("X", "y", "q", "split"):
        np.testing.assert_array_equal(getattr(back, field), getattr(data, field))
    assert back.feature_names == ("x1", "x2", "x3", "q") and back.task == "regression"


def test_load_parquet_user_table_numeric_columns(tmp_path: Path) -> None:
    path = _write(_frame(), tmp_path / "users.parquet")
    data = load_parquet(path, features=["a", "b"], target="label", protected="group", split="part",
                        extras=["age"])  # fmt: skip
    assert data.X.shape == (30, 2) and data.X.dtype == np.float32
    assert data.y.dtype == np.int64 and data.classes["y"] == ("no", "yes")
    assert data.classes["q"] == ("F", "M") and data.q_kind == "categorical"
    assert data.task == "classification" and data.name == "users"
    assert data.extras["age"].dtype == np.float32
    assert data.split_counts() == {"train": 20, "val": 5, "test": 5}
    # no split column: a seeded 60/20/20 split
    a = load_parquet(path, features=["a"], target="label", protected="age", seed=1)
    b = load_parquet(path, features=["a"], target="label", protected="age", seed=1)
    assert a.split_counts() == {"train": 18, "val": 6, "test": 6} and a.q_kind == "continuous"
    np.testing.assert_array_equal(a.split, b.split)


def test_load_parquet_variable_list_column(tmp_path: Path) -> None:
    emb = [[float(i), float(i % 3), 1.0] for i in range(12)]
    table = pa.table({"emb": pa.array(emb, type=pa.list_(pa.float64())),
                      "y": [0.5 * i for i in range(12)], "g": [i % 2 for i in range(12)]})  # fmt: skip
    data = load_parquet(_write(table, tmp_path / "l.parquet"), features="emb", target="y", protected="g")
    assert data.X.shape == (12, 3) and data.X.dtype == np.float32
    assert data.task == "regression" and data.y.dtype == np.float32 and data.q_kind == "categorical"
    np.testing.assert_array_equal(data.X[5], [5.0, 2.0, 1.0])


def _bad_tables() -> list[tuple[str, pa.Table, dict, str]]:
    good = {"emb": [[1.0, 2.0]] * 10, "y": [0, 1] * 5, "g": ["a", "b"] * 5}
    return [
        ("missing column", pa.table(good), {"protected": "sex"},
         r"the protected column must exist in t.parquet, but 'sex' does not; available columns: \['emb', 'y', 'g'\]"),
        ("nan in list", pa.table({**good, "emb": [[1.0, float("nan")]] * 3 + [[1.0, 2.0]] * 7}), {},
         r"features column 'emb' must hold only finite values \(no NaN, inf or missing\), but 3 of 10 rows do"),
        ("null list", pa.table({**good, "emb": [None] + [[1.0, 2.0]] * 9}), {},
         r"features column 'emb' must have a list in every row, but 1 of 10 rows are null \(first at row 0\)"),
        ("unequal lists", pa.table({**good, "emb": [[1.0, 2.0]] * 7 + [[1.0]] + [[1.0, 2.0]] * 2}), {},
         r"features column 'emb' must hold lists of one length, but row 0 has 2 values and row 7 has 1"),
        ("inf in numeric", pa.table({**good, "f": [float("inf")] * 2 + [0.0] * 8}), {"features": ["f"]},
         r"feature column 'f' must hold only finite values .* 2 of 10 rows"),
        ("string feature", pa.table({**good, "f": ["x"] * 10}), {"features": ["f"]},
         r"feature column 'f' must be numeric, but has type string"),
        ("null target", pa.table({**good, "y": [None, 1] * 5}), {},
         r"target column 'y' must hold only finite values .* 5 of 10 rows do \(first at row 0\)"),
        ("one-valued protected", pa.table({**good, "g": ["a"] * 10}), {},
         r"protected column 'g' must take at least 2 distinct values, but has the single value 'a'"),
        ("unknown split", pa.table({**good, "s": ["train"] * 8 + ["dev", "eval"]}), {"split": "s"},
         r"split column 's' values must be one of \['train', 'val', 'test'\], but got 'dev' \(1 rows\), 'eval'"),
        ("small split", pa.table({**good, "s": ["train"] * 8 + ["test"] * 2}), {"split": "s", "min_rows": 4},
         r"every split must have at least min_rows=4 rows, but split column 's' has 2 'test' rows"),
        ("fractional classes", pa.table({**good, "y": [0.5, 1.0] * 5}), {"task": "classification"},
         r"target column 'y' must hold class labels \(strings or whole numbers\), but has fractional values"),
        ("bad task", pa.table(good), {"task": "ranking"},
         r"task must be one of \['regression', 'classification', 'auto'\], but got 'ranking'"),
        ("small intersection cells", pa.table({**good, "h": ["x", "y"] * 5}), {"protected": ["g", "h"]},
         r"every cell of the intersection of protected columns \['g', 'h'\] must have at least "
         r"min_cell_rows=20 rows in val and in test, where"),
    ]  # fmt: skip


@pytest.mark.parametrize(("case", "table", "kwargs", "message"), _bad_tables(), ids=[c[0] for c in _bad_tables()])
def test_load_parquet_messages(tmp_path: Path, case: str, table: pa.Table, kwargs: dict, message: str) -> None:
    path = _write(table, tmp_path / "t.parquet")
    args = {"features": "emb", "target": "y", "protected": "g", **kwargs}
    with pytest.raises(ValueError, match=message):
        load_parquet(path, **args)


def test_load_parquet_needs_roles_without_metadata(tmp_path: Path) -> None:
    path = _write(_frame(), tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match=r"features must name one column of number lists \(an "
                                         r"embedding\) or a list of numeric columns of "
                                         r"plain.parquet \(its columns: \['a'.*docs/data.md"):
        load_parquet(path, target="label", protected="group")
    with pytest.raises(ValueError, match=r"target must name a column of plain.parquet"):
        load_parquet(path, features=["a"], protected="group")


# ----------------------------------------------------------------------------- Adult
@pytest.fixture(scope="module")
def adult() -> Dataset:
    return load_adult()


def test_adult_loads_with_expected_columns_and_balance(adult: Dataset) -> None:
    assert adult.n == 45222 and adult.X.dtype == np.float32 and adult.d == len(adult.feature_names)
    assert adult.feature_names[:5] == ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
    assert {"sex=Female", "sex=Male", "race=White", "relationship=Husband"} <= set(adult.feature_names)
    assert (adult.task, adult.q_kind) == ("classification", "categorical")
    assert adult.classes["y"] == ("<=50K", ">50K") and adult.classes["q"] == ("Female", "Male")
    assert 0.23 < adult.y.mean() < 0.26  # 24.8% earn more than 50K
    assert 0.64 < adult.q.mean() < 0.70  # 67.5% male
    assert set(adult.extras) == {"sex", "race", "race_white", "age_ge_30"}
    assert len(adult.classes["race"]) == 5
    counts = adult.split_counts()
    assert counts["train"] == pytest.approx(0.6 * adult.n, abs=2) and counts["test"] > 9000
    train = adult.subset("train")
    np.testing.assert_allclose(train.X[:, :5].astype(np.float64).mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(train.X[:, :5].astype(np.float64).std(axis=0), 1.0, atol=1e-3)
    onehot = adult.X[:, 5:]
    assert set(np.unique(onehot).tolist()) == {0.0, 1.0}
    # sex leaks: a linear probe recovers it from the features
    assert _probe_bacc(dataclasses.replace(adult, X=adult.X[:, 5:]), "q") > 0.75


def test_adult_options() -> None:
    data = load_adult("race_white", split="uci", drop_protected=True, max_rows=3000, seed=1)
    assert data.n == 3000 and data.classes["q"] == ("non-white", "white")
    assert not any(name.startswith("race=") for name in data.feature_names)
    assert any(name.startswith("sex=") for name in data.feature_names)
    assert 0.8 < data.q.mean() < 0.9
    full = load_dataset("adult", protected="race", split="uci")
    assert full.split_counts()["test"] == 15060 and set(full.q.tolist()) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match=r"protected must be one of \['sex', 'race', 'race_white'\], but got 'age'"):
        load_adult("age")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- dispatch
def test_load_dataset_dispatch() -> None:
    data = load_dataset("synthetic_regression", n=50, n_train=30)
    assert data.n == 50 and data.name == "synthetic_regression"
    assert load_dataset("synthetic_embeddings", n=100).task == "classification"
    with pytest.raises(ValueError, match=r"name must be one of \['adult', 'adult_embeddings', 'names_minilm', 'synthetic_embeddings', 'synthetic_regression'\], but got 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match=r"arguments of dataset 'synthetic_regression' must be among .*'n_train'.*but got \['rows'\]"):
        load_dataset("synthetic_regression", rows=10)


def test_shipped_name_embeddings_are_a_builtin() -> None:
    data = load_dataset("names_minilm")
    assert data.d == 384 and data.task == "classification" and data.q_kind == "categorical"
    assert set(np.unique(data.q)) == {0, 1} and "race" in data.extras
    four = load_dataset("names_minilm", protected="race")
    assert len(np.unique(four.q)) == 4


def test_the_shipped_names_follow_their_derivation() -> None:
    """names.csv and its embeddings as NAMES.md derives them; counts from the table, not typed."""
    import inspect

    import pandas as pd

    from fairsearch.data.names import NAMES_CSV, RACES, SPLIT_FRACTIONS, build_names_table

    table = pd.read_csv(NAMES_CSV, keep_default_na=False)
    data = load_dataset("names_minilm")
    n = len(table)
    assert data.n == n and table["name"].is_unique
    per_race = inspect.signature(build_names_table).parameters["per_race"].default
    counts = table["race"].value_counts()
    assert set(counts.index) == set(RACES) and counts.max() <= per_race
    assert (table["count"] >= 1000).all()
    assert ((table["pctmale"] >= 80) | (table["pctmale"] <= 20)).all()
    cuts = np.cumsum(SPLIT_FRACTIONS)[:-1] * n
    expected = {"train": int(cuts[0]), "val": int(cuts[1]) - int(cuts[0]),
                "test": n - int(cuts[1])}
    assert table["split"].value_counts().to_dict() == expected
    assert {s: int(np.sum(data.split == s)) for s in expected} == expected
    np.testing.assert_array_equal(data.q, (table["race"] == "white").to_numpy(np.int64))
