"""The arrays a :class:`~fairsearch.families.translator.Translator` is given, checked and coded.

Embeddings must be finite 2-D float arrays, labels 1-D with one value per row; labels become
int64 codes into their sorted classes (validation and inference labels into the training ones).
Each check raises a ``ValueError`` naming the argument and showing the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_embeddings", "check_labels", "encode_classes"]


def check_labels(name: str, v: Any, n: int) -> np.ndarray:
    """``v`` as a 1-D array of ``n`` finite labels (a ``(n, 1)`` column is flattened)."""
    a = np.asarray(v)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with one label per row of E ({n}), but got shape {a.shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must not contain NaN or inf")
    return a


def check_embeddings(name: str, E: Any, d: int | None = None) -> np.ndarray:
    """``E`` as a finite float32 ``(rows, d)`` array with at least 2 rows."""
    a = np.asarray(E, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must be a 2-D (rows x dims) array with >= 2 rows, but got shape {a.shape}")
    if d is not None and a.shape[1] != d:
        raise ValueError(f"{name} must have {d} columns like the training embeddings, but got {a.shape[1]}")
    if not np.all(np.isfinite(a)):
        bad = int((~np.isfinite(a)).any(1).sum())
        raise ValueError(f"{name} must be finite, but {bad} rows contain NaN or inf")
    return a


def encode_classes(name: str, labels: np.ndarray,
                   classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(classes, codes)``: the sorted classes of ``labels`` (at least 2) and each row's code;
    with ``classes`` given, codes into those (a class not among them is an error)."""
    if classes is None:
        classes, codes = np.unique(labels, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"{name} needs at least 2 classes, but got only {classes.tolist()!r}")
        return classes, codes.astype(np.int64)
    unknown = np.setdiff1d(np.unique(labels), classes)
    if unknown.size:
        raise ValueError(f"{name} has classes not seen in training: {unknown.tolist()!r}")
    return classes, np.searchsorted(classes, labels).astype(np.int64)
