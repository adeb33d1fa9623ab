"""Datasets: the :class:`Dataset` contract, synthetic problems, Parquet I/O and shipped data.

Every loader returns a validated :class:`Dataset`; :func:`load_dataset` picks a built-in one by
name (the ``data: {name: ...}`` section of a run spec).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fairsearch.data._adult import load_adult
from fairsearch.data._dataset import (
    Dataset,
    Part,
    QKind,
    Task,
    random_split,
    split_train_val,
    validate_dataset,
)
from fairsearch.data._parquet import load_parquet, save_parquet
from fairsearch.data._synthetic import synthetic_embeddings, synthetic_regression
from fairsearch.plugins import resolve_import

__all__ = [
    "BUILTIN",
    "Dataset",
    "Part",
    "QKind",
    "Task",
    "load_adult",
    "load_dataset",
    "load_from_spec",
    "load_parquet",
    "random_split",
    "save_parquet",
    "split_train_val",
    "synthetic_embeddings",
    "synthetic_regression",
    "validate_dataset",
]

#: Built-in datasets by name, each a function of keyword arguments returning a Dataset.
def _names_minilm(protected: str = "white") -> Dataset:
    """Shipped first-name embeddings (all-MiniLM-L6-v2): control = gender, protected = race."""
    from fairsearch.data.names import load_names_embeddings

    return load_names_embeddings(protected)  # type: ignore[arg-type]


def _adult_embeddings(protected: str = "sex", seed: int = 0, max_rows: int | None = None) -> Dataset:
    """Penultimate-layer embeddings of a base network trained on Adult: built once, with
    progress, then read from the cache (:mod:`fairsearch.data.derived`)."""
    from pathlib import Path

    from fairsearch.data.derived import cached

    def build(progress: Callable[[str], None]) -> Dataset:
        from fairsearch.data.base_network import adult_embeddings  # torch, scikit-learn: seconds

        return adult_embeddings(protected=protected, seed=seed, max_rows=max_rows,
                                progress=lambda e, n: progress(f"base network epoch {e}/{n}"))

    here = Path(__file__).parent  # the data and the code the embeddings are built from
    sources = [here / "files" / "adult.parquet", here / "_adult.py", here / "base_network.py"]
    return cached("adult_embeddings", {"protected": protected, "seed": seed, "max_rows": max_rows},
                  sources, build)


BUILTIN: dict[str, Callable[..., Dataset]] = {
    "adult": load_adult,
    "adult_embeddings": _adult_embeddings,
    "names_minilm": _names_minilm,
    "synthetic_embeddings": synthetic_embeddings,
    "synthetic_regression": synthetic_regression,
}


def load_from_spec(section: Mapping[str, Any]) -> Dataset:
    """A run spec's ``data`` section: ``{name | path | loader: ..., **kwargs}``."""
    kwargs = dict(section)
    if "name" in kwargs:
        return load_dataset(kwargs.pop("name"), **kwargs)
    if "loader" in kwargs:
        return _from_loader(kwargs.pop("loader"), kwargs)
    return load_parquet(kwargs.pop("path"), **kwargs)


def _from_loader(path: str, kwargs: dict[str, Any]) -> Dataset:
    """``data: {loader: "pkg.module:function", ...}``: the user's function returns a Dataset."""
    loader = resolve_import(path, "data.loader")
    try:
        data = loader(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's loader failed: say where
        raise ValueError(f"`data.loader` {path!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, Dataset):
        raise ValueError(f"`data.loader` {path!r} must return a fairsearch.data.Dataset, but "
                         f"returned {type(data).__name__}")  # fmt: skip
    return validate_dataset(data)


def load_dataset(name: str, **kwargs: Any) -> Dataset:
    """The built-in dataset ``name`` built with ``kwargs`` (see each loader for its arguments)."""
    if name not in BUILTIN:
        raise ValueError(f"name must be one of {sorted(BUILTIN)}, but got {name!r}")
    try:
        return BUILTIN[name](**kwargs)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        import inspect

        allowed = sorted(inspect.signature(BUILTIN[name]).parameters)
        raise ValueError(
            f"the arguments of dataset {name!r} must be among {allowed}, but got {sorted(kwargs)}"
        ) from err
