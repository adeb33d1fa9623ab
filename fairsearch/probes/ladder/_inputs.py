"""The ladder's input checks: ``Z``, ``q``, folds, probe kinds, engine and counts, each refused
with a ``ValueError`` that names the argument, shows the value and says what is allowed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from fairsearch.probes.registry import PROBE_KINDS

__all__ = ["ENGINES", "Engine", "check_engine", "check_kinds", "check_positive", "encode",
           "validate_inputs"]

Engine = Literal["auto", "batched", "sklearn"]
#: How probes are fitted: ``auto`` (batched in torch where that is faster on the device),
#: ``batched`` (torch for every kind with a batched form) or ``sklearn`` (every fit on its own,
#: the reference).
ENGINES: tuple[str, ...] = ("auto", "batched", "sklearn")


def encode(q: Any, name: str, n: int | None = None) -> tuple[np.ndarray, int]:
    """The codes ``0..K-1`` of the class labels ``q`` (argument ``name``) and ``K``."""
    q = np.asarray(q)
    if q.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class codes, got shape {q.shape}")
    if n is not None and q.shape[0] != n:
        raise ValueError(f"{name} must have one label per row of Z ({n} rows), got {q.shape[0]}")
    if q.dtype.kind == "f" and not np.all(np.isfinite(q) & (q == np.round(q))):
        raise ValueError(f"{name} must hold integer class codes, got non-integer floats")
    if q.dtype.kind not in "iubf":
        raise ValueError(f"{name} must hold integer class codes, got dtype {q.dtype}")
    classes, codes = np.unique(q, return_inverse=True)
    return codes.astype(np.int64), classes.size


def _check_rows(codes: np.ndarray, k: int, folds: int) -> None:
    """Enough rows, and enough of every class, for ``folds`` stratified folds."""
    n = codes.size
    if n < folds * k:
        raise ValueError(
            f"Z has {n} rows, fewer than folds x classes = {folds} x {k} = {folds * k}; "
            "need at least that many rows (or fewer folds)"
        )
    counts = np.bincount(codes, minlength=k)
    if counts.min() < folds:
        raise ValueError(
            f"every class of q needs at least folds={folds} rows; the smallest has "
            f"{int(counts.min())}"
        )


def validate_inputs(Z: Any, q: Any, folds: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The checks of :func:`~fairsearch.probes.ladder.run_ladder` on ``Z``, ``q`` and ``folds``:
    float ``Z``, the codes ``0..K-1`` of ``q`` and ``K`` (for
    :func:`~fairsearch.probes.ladder.fit_kinds` and :func:`~fairsearch.probes.ladder.ladder_result`)."""
    if not isinstance(folds, int | np.integer) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0 or Z.shape[1] == 0:
        raise ValueError(f"Z must be a non-empty 2-D array of shape (n, d), got shape {Z.shape}")
    bad = int(np.size(Z) - np.count_nonzero(np.isfinite(Z)))
    if bad:
        raise ValueError(f"Z must be finite, got {bad} NaN/inf entries; allowed: finite floats")
    codes, k = encode(q, "q", Z.shape[0])
    if k < 2:
        raise ValueError(f"q must hold at least 2 classes, got 1 class ({np.unique(q)[0]!r})")
    _check_rows(codes, k, folds)
    return Z, codes, k


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple of distinct probe kinds of the ladder."""
    names = tuple(kinds)
    unknown = [f for f in names if f not in PROBE_KINDS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"kinds must be distinct names from {list(PROBE_KINDS)}, got {list(names)}"
        )
    return names


def check_engine(engine: Any) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")


def check_positive(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
