"""Datasets: the :class:`Dataset` contract, synthetic problems, Parquet I/O and shipped data.

Every loader returns a validated :class:`Dataset`; :func:`load_dataset` picks a built-in one by
name (the ``data: {name: ...}`` section of a run spec).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fairsearch.datasets._adult import load_adult
from fairsearch.datasets._dataset import Dataset, Part, QKind, Task, random_split, validate_dataset
from fairsearch.datasets._parquet import load_parquet, save_parquet
from fairsearch.datasets._synthetic import synthetic_embeddings, synthetic_regression

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
    "synthetic_embeddings",
    "synthetic_regression",
    "validate_dataset",
]

#: Built-in datasets by name, each a function of keyword arguments returning a Dataset.
def _names_minilm(protected: str = "white") -> Dataset:
    """Shipped first-name embeddings (all-MiniLM-L6-v2): control = gender, protected = race."""
    from fairsearch.translator.names import load_names_embeddings

    return load_names_embeddings(protected)  # type: ignore[arg-type]


def _adult_embeddings(protected: str = "sex", seed: int = 0, max_rows: int | None = None) -> Dataset:
    """Penultimate-layer embeddings of a base network trained on Adult (built on demand)."""
    from fairsearch.translator.base_network import build_adult_embeddings

    return build_adult_embeddings(protected=protected, seed=seed, max_rows=max_rows)[0]


BUILTIN: dict[str, Callable[..., Dataset]] = {
    "adult": load_adult,
    "adult_embeddings": _adult_embeddings,
    "names_minilm": _names_minilm,
    "synthetic_embeddings": synthetic_embeddings,
    "synthetic_regression": synthetic_regression,
}


def load_from_spec(section: Mapping[str, Any]) -> Dataset:
    """A run spec's ``data`` section: ``{name: ..., **kwargs}`` or ``{path: ..., **kwargs}``."""
    kwargs = dict(section)
    if "name" in kwargs:
        return load_dataset(kwargs.pop("name"), **kwargs)
    return load_parquet(kwargs.pop("path"), **kwargs)


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
