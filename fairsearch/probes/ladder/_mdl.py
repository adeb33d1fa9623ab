"""MDL: the online (prequential) code length of ``q`` given ``Z`` (Voita & Titov, 2020)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from fairsearch.probes.ladder._factory import make_probe
from fairsearch.probes.ladder._inputs import validate_inputs

__all__ = ["MDL_BLOCKS", "MDL_EPS", "MDLResult", "online_code_length"]

#: Block ends of the online code, as fractions of the rows (Voita & Titov 2020).
MDL_BLOCKS: tuple[float, ...] = (
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0,
)
#: Weight of the uniform distribution mixed into online-code probabilities (no infinite codes).
MDL_EPS = 1e-4


@dataclass(frozen=True)
class MDLResult:
    """Online code length of ``q`` given ``Z``, in bits; larger means less information."""

    online_bits: float
    uniform_bits: float
    block_ends: tuple[int, ...]

    @property
    def compression(self) -> float:
        """``uniform_bits / online_bits``; 1 means no information about ``q`` in ``Z``."""
        return self.uniform_bits / self.online_bits


def _block_bits(Zt: np.ndarray, qt: np.ndarray, Zb: np.ndarray, qb: np.ndarray, k: int,
                seed: int) -> float:
    """Bits to send ``qb`` given ``Zb`` with a probe fitted on the previous rows ``(Zt, qt)``."""
    if np.unique(qt).size < 2:  # no probe can be fitted: Laplace-smoothed class frequencies
        p = (np.bincount(qt, minlength=k) + 1.0) / (qt.size + k)
        return float(-np.sum(np.log2(p[qb])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = make_probe("logistic", seed, balanced=False, tune=False).fit(Zt, qt)
    proba = np.zeros((qb.size, k))
    proba[:, probe.classes_] = probe.predict_proba(Zb)
    proba = (1.0 - MDL_EPS) * proba + MDL_EPS / k
    return float(-np.sum(np.log2(proba[np.arange(qb.size), qb])))


def online_code_length(Z: Any, q: Any, *, seed: int = 0, blocks: Sequence[float] = MDL_BLOCKS,
                       n_threads: int | None = 1) -> MDLResult:
    """Online (prequential) code length of ``q`` given ``Z`` in bits (Voita & Titov, 2020).

    Rows are put in a seeded random order and cut at ``ceil(f * n)`` for each fraction ``f`` of
    ``blocks`` (default 0.1%, 0.2%, ..., 6.25%, 12.5%, 25%, 50%, 100%). The first block is sent
    with the uniform code (``n1 log2 K`` bits); each later block is sent with ``-log2 p(q|z)``
    of an unweighted logistic probe fitted on all earlier rows (probabilities mixed with
    ``MDL_EPS`` of uniform). ``compression = uniform_bits / online_bits``.
    """
    Z, codes, k = validate_inputs(Z, q, 2)
    fr = np.asarray(blocks, dtype=float)
    if fr.ndim != 1 or fr.size == 0 or np.any((fr <= 0) | (fr > 1)) or np.any(np.diff(fr) <= 0):
        raise ValueError(f"blocks must be increasing fractions in (0, 1], got {list(blocks)}")
    n = codes.size
    ends = sorted({max(1, int(np.ceil(f * n))) for f in fr} | {n})
    order = np.random.default_rng(seed).permutation(n)
    Z, codes = Z[order], codes[order]
    bits = ends[0] * np.log2(k)
    with threadpool_limits(n_threads):
        for a, b in pairwise(ends):
            bits += _block_bits(Z[:a], codes[:a], Z[a:b], codes[a:b], k, seed)
    return MDLResult(float(bits), float(n * np.log2(k)), tuple(ends))
