"""Seeded synthetic problems: the source notebook's regression and a leaky-embedding task."""

from __future__ import annotations

import numpy as np

from fairsearch.data._dataset import Dataset, random_split, validate_dataset

__all__ = ["synthetic_embeddings", "synthetic_regression"]


def synthetic_regression(
    n: int = 800,
    noise: float = 0.2,
    q_coef: float = 3.0,
    seed: int = 0,
    n_train: int = 600,
    n_val: int = 0,
) -> Dataset:
    """``y = tanh(x1) + 0.5 x2 + q_coef * q + noise * eps`` with ``q`` visible in ``X``.

    Reproduces the FairModelWrapper notebook's generator draw for draw: ``X = [x1, x2, x3, q]``
    (float32), ``q`` continuous standard normal. The first ``n_train`` rows are "train", the
    next ``n_val`` rows "val", the rest "test". At the defaults ``corr(y, q) = 0.966``.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, but got {n}")
    if n_train < 1 or n_val < 0 or n_train + n_val > n:
        raise ValueError(
            f"1 <= n_train and 0 <= n_val and n_train + n_val <= n must hold, but got "
            f"(n_train={n_train}, n_val={n_val}, n={n})"
        )
    noise, q_coef = float(noise), float(q_coef)  # Python floats keep the source's dtypes
    rng = np.random.default_rng(seed)
    x_feat = rng.standard_normal((n, 3)).astype("float32")
    q = rng.standard_normal((n, 1)).astype("float32")
    X = np.hstack([x_feat, q]).astype("float32")
    y = (
        np.tanh(x_feat[:, 0]) + 0.5 * x_feat[:, 1] + q_coef * q.ravel()
        + noise * rng.standard_normal(n)
    ).astype("float32")  # fmt: skip
    split = np.array(["test"] * n, dtype="<U5")
    split[:n_train] = "train"
    split[n_train : n_train + n_val] = "val"
    data = Dataset(
        name="synthetic_regression",
        X=X,
        y=y,
        q=q.ravel(),
        split=split,
        task="regression",
        q_kind="continuous",
        feature_names=("x1", "x2", "x3", "q"),
    )
    return validate_dataset(data)


def synthetic_embeddings(
    n: int = 2000,
    d: int = 32,
    leak: float = 1.0,
    seed: int = 0,
    n_protected: int = 2,
) -> Dataset:
    """Frozen-encoder-like embeddings of a binary control label that leak a protected attribute.

    Two independent factors, the control label ``c`` (binary, the task) and the protected group
    ``g`` (``n_protected`` categories, ``q``), plus Gaussian nuisance, are placed in a latent
    space and mixed by a random two-layer tanh network into ``d`` dimensions. ``leak`` scales
    the group's offset in the latent space: at ``leak=0`` the embeddings are independent of
    ``q`` (no probe can beat chance), and the larger ``leak``, the easier ``q`` is to recover.
    Because ``c`` and ``g`` are independent, removing ``q`` need not cost control accuracy.
    Splits: a seeded random 60/20/20 train/val/test.
    """
    if n < 10:
        raise ValueError(f"n must be >= 10, but got {n}")
    if d < 2:
        raise ValueError(f"d must be >= 2, but got {d}")
    if not np.isfinite(leak) or leak < 0:
        raise ValueError(f"leak must be a finite number >= 0, but got {leak}")
    if n_protected < 2:
        raise ValueError(f"n_protected must be >= 2, but got {n_protected}")
    rng = np.random.default_rng(seed)
    latent = 16
    control = rng.integers(0, 2, size=n)
    group = rng.integers(0, n_protected, size=n)
    control_dir = _unit(rng.standard_normal(latent))
    group_means = rng.standard_normal((n_protected, latent))
    group_means -= group_means.mean(axis=0)
    group_means /= np.linalg.norm(group_means, axis=1, keepdims=True)
    z = (
        1.6 * (2.0 * control[:, None] - 1.0) * control_dir
        + 0.9 * leak * group_means[group]
        + rng.standard_normal((n, latent))
    )
    w1 = rng.standard_normal((latent, 64)) / np.sqrt(latent)
    w2 = rng.standard_normal((64, d)) / np.sqrt(64)
    X = np.tanh(z @ w1) @ w2 + 0.05 * rng.standard_normal((n, d))
    data = Dataset(
        name="synthetic_embeddings",
        X=X.astype(np.float32),
        y=control.astype(np.int64),
        q=group.astype(np.int64),
        split=random_split(n, seed=seed),
        task="classification",
        q_kind="categorical",
    )
    return validate_dataset(data)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)
