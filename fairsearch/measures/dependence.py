"""Kernel dependence measures between predictions (or embeddings) and a protected attribute.

Two paths share one set of definitions:

* **losses** — differentiable torch functions on a mini-batch (``cka``, ``hsic``, ``linear_cka``,
  ``mmd``), used as training penalties;
* **metrics** — ``cka_score`` / ``hsic_score`` on a whole evaluation set. They are exact, never
  averaged over mini-batches (a per-batch average drifts with the batch size), and for large ``n``
  they are computed blockwise so that no ``n x n`` matrix is ever held in memory.

Kernels: RBF ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))`` with ``sigma`` a number or ``"median"``
(the median pairwise distance, so the score does not depend on the units of the target);
``"delta"`` (``1`` where two rows are equal: categorical attributes, one-hot or label coded) and
``"linear"``. Constant inputs carry no information: their dependence is defined as ``0`` and the
gradient stays finite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor

Bandwidth = float | Literal["median"]
Kernel = Literal["rbf", "delta", "linear"]
Estimator = Literal["biased", "unbiased"]
DependenceName = Literal["cka", "debiased_cka", "linear_cka", "hsic", "mmd"]

#: Points used to estimate the median heuristic on large sets (a seeded subsample).
MEDIAN_SAMPLE = 2000
_EPS = 1e-12

__all__ = [
    "Bandwidth",
    "DependenceName",
    "Kernel",
    "cka",
    "cka_score",
    "dependence_loss",
    "hsic",
    "hsic_score",
    "kernel_matrix",
    "linear_cka",
    "median_bandwidth",
    "mmd",
]


def _as_2d(x: Tensor | np.ndarray) -> Tensor:
    t = torch.as_tensor(x)
    if not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise ValueError(f"inputs must be 1-D or 2-D (samples x features), but got shape {tuple(t.shape)}")
    return t


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    # Expansion form keeps the gradient finite at zero distance (cdist's is not).
    d2 = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return d2.clamp_min(0.0)


def median_bandwidth(x: Tensor | np.ndarray, *, max_points: int = MEDIAN_SAMPLE) -> float:
    """Median pairwise Euclidean distance between distinct rows (1.0 when all rows coincide)."""
    t = _as_2d(x).detach()
    n = t.shape[0]
    if n > max_points:
        idx = torch.from_numpy(np.random.default_rng(0).choice(n, max_points, replace=False))
        t = t[idx.to(t.device)]
        n = max_points
    iu = torch.triu_indices(n, n, offset=1, device=t.device)
    d = _sq_dists(t, t)[iu[0], iu[1]].sqrt()
    med = float(d.median()) if d.numel() else 0.0
    return med if med > 0.0 and np.isfinite(med) else 1.0


def _resolve_sigma(x: Tensor, sigma: Bandwidth) -> float:
    if sigma == "median":
        return median_bandwidth(x)
    if isinstance(sigma, str) or not float(sigma) > 0:
        raise ValueError(f"bandwidth must be a positive number or 'median', but got {sigma!r}")
    return float(sigma)


def kernel_matrix(
    a: Tensor, b: Tensor | None = None, *, kernel: Kernel = "rbf", sigma: float = 1.0
) -> Tensor:
    """Kernel matrix between the rows of ``a`` and ``b`` (``b = a`` when omitted)."""
    b = a if b is None else b
    if kernel == "rbf":
        return torch.exp(-_sq_dists(a, b) / (2.0 * sigma * sigma))
    if kernel == "delta":
        return (a[:, None, :] == b[None, :, :]).all(-1).to(a.dtype)
    if kernel == "linear":
        return a @ b.T
    raise ValueError(f"kernel must be one of 'rbf', 'delta', 'linear', but got {kernel!r}")


def _gram(x: Tensor, kernel: Kernel, sigma: Bandwidth) -> Tensor:
    s = _resolve_sigma(x, sigma) if kernel == "rbf" else 1.0
    return kernel_matrix(x, kernel=kernel, sigma=s)


def _hsic_biased(k: Tensor, l: Tensor) -> Tensor:
    n = k.shape[0]
    kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
    return (kc * l).sum() / (n - 1) ** 2  # tr(K H L H) = sum(HKH * L)


def _hsic_unbiased(k: Tensor, l: Tensor) -> Tensor:
    n = k.shape[0]
    if n < 4:
        raise ValueError(f"the unbiased HSIC estimator needs n >= 4 samples, but got n={n}")
    eye = torch.eye(n, dtype=k.dtype, device=k.device)
    kt, lt = k * (1 - eye), l * (1 - eye)
    term1 = (kt * lt).sum()
    term2 = kt.sum() * lt.sum() / ((n - 1) * (n - 2))
    term3 = 2.0 * (kt.sum(0) * lt.sum(0)).sum() / (n - 2)
    return (term1 + term2 - term3) / (n * (n - 3))


def _hsic_from_grams(k: Tensor, l: Tensor, estimator: Estimator) -> Tensor:
    if estimator == "biased":
        return _hsic_biased(k, l)
    if estimator == "unbiased":
        return _hsic_unbiased(k, l)
    raise ValueError(f"estimator must be 'biased' or 'unbiased', but got {estimator!r}")


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of rows, but got {x.shape[0]} and {y.shape[0]}"
        )
    if x.shape[0] < 2:
        raise ValueError(f"dependence needs at least 2 samples, but got {x.shape[0]}")


def hsic(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    sigma_x: Bandwidth = "median",
    sigma_y: Bandwidth = "median",
    kernel_x: Kernel = "rbf",
    kernel_y: Kernel = "rbf",
    estimator: Estimator = "biased",
) -> Tensor:
    """HSIC between ``x`` and ``y``: ``tr(KHLH)/(n-1)^2`` (biased) or Song et al.'s U-statistic."""
    x, y = _as_2d(x), _as_2d(y)
    _check_pair(x, y)
    y = y.to(x.dtype)
    return _hsic_from_grams(_gram(x, kernel_x, sigma_x), _gram(y, kernel_y, sigma_y), estimator)


def _normalise(hxy: Tensor, hxx: Tensor, hyy: Tensor) -> Tensor:
    denom = hxx.clamp_min(0.0) * hyy.clamp_min(0.0)
    # A constant input has zero self-dependence: define CKA = 0 there, with a finite gradient.
    return torch.where(denom > _EPS**2, hxy / torch.sqrt(denom + _EPS**2), torch.zeros_like(hxy))


def cka(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    sigma_x: Bandwidth = "median",
    sigma_y: Bandwidth = "median",
    kernel_x: Kernel = "rbf",
    kernel_y: Kernel = "rbf",
    debiased: bool = False,
) -> Tensor:
    """Centred kernel alignment ``HSIC(K,L)/sqrt(HSIC(K,K) HSIC(L,L))``.

    The biased estimator is bounded in ``[0, 1]``; ``debiased=True`` uses the U-statistic HSIC
    (less biased at small ``n``, may dip slightly below 0 for independent samples).
    """
    x, y = _as_2d(x), _as_2d(y)
    _check_pair(x, y)
    y = y.to(x.dtype)
    k, l = _gram(x, kernel_x, sigma_x), _gram(y, kernel_y, sigma_y)
    est: Estimator = "unbiased" if debiased else "biased"
    return _normalise(
        _hsic_from_grams(k, l, est), _hsic_from_grams(k, k, est), _hsic_from_grams(l, l, est)
    )


def linear_cka(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> Tensor:
    """Linear CKA in feature space: ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)``."""
    x, y = _as_2d(x), _as_2d(y)
    _check_pair(x, y)
    y = y.to(x.dtype)
    xc, yc = x - x.mean(0), y - y.mean(0)
    hxy = (yc.T @ xc).pow(2).sum()
    return _normalise(hxy, (xc.T @ xc).pow(2).sum(), (yc.T @ yc).pow(2).sum())


def mmd(
    x: Tensor | np.ndarray, groups: Tensor | np.ndarray, *, sigma: Bandwidth = "median"
) -> Tensor:
    """Squared MMD between the groups of a categorical attribute.

    Biased V-statistic with an RBF kernel on ``x``; with more than two groups, the mean of the
    pairwise MMD^2 over all group pairs. ``0`` when fewer than two groups are present in the batch.
    """
    x = _as_2d(x)
    g = _as_2d(groups)
    _check_pair(x, g)
    labels = torch.unique(g, dim=0, return_inverse=True)[1]
    k = _gram(x, "rbf", sigma)
    present = torch.unique(labels)
    total, pairs = x.new_zeros(()), 0
    for i, a in enumerate(present):
        ma = (labels == a).to(x.dtype)
        for b in present[i + 1 :]:
            mb = (labels == b).to(x.dtype)
            wa, wb = ma / ma.sum(), mb / mb.sum()
            total = total + wa @ k @ wa + wb @ k @ wb - 2.0 * wa @ k @ wb
            pairs += 1
    return total / max(pairs, 1)


def dependence_loss(
    name: DependenceName,
    *,
    sigma_f: Bandwidth = "median",
    sigma_q: Bandwidth = "median",
    q_kernel: Kernel = "rbf",
) -> Callable[[Tensor, Tensor], Tensor]:
    """The training penalty ``(prediction, q) -> scalar tensor`` for a measure named in a spec."""
    if name == "cka":
        return lambda f, q: cka(f, q, sigma_x=sigma_f, sigma_y=sigma_q, kernel_y=q_kernel)
    if name == "debiased_cka":
        return lambda f, q: cka(
            f, q, sigma_x=sigma_f, sigma_y=sigma_q, kernel_y=q_kernel, debiased=True
        )
    if name == "linear_cka":
        return linear_cka
    if name == "hsic":
        return lambda f, q: hsic(f, q, sigma_x=sigma_f, sigma_y=sigma_q, kernel_y=q_kernel)
    if name == "mmd":
        return lambda f, q: mmd(f, q, sigma=sigma_f)
    raise ValueError(
        "dependence must be one of 'cka', 'debiased_cka', 'linear_cka', 'hsic', 'mmd', "
        f"but got {name!r}"
    )


# --------------------------------------------------------------------------- blockwise metrics


def _block_sums(
    x: Tensor, y: Tensor, kx: Kernel, sx: float, ky: Kernel, sy: float, block: int
) -> dict[str, float]:
    """One pass over row blocks accumulating every sum the biased HSIC terms need."""
    n = x.shape[0]
    kk = kl = ll = 0.0
    rk = torch.zeros(n, dtype=torch.float64, device=x.device)
    rl = torch.zeros(n, dtype=torch.float64, device=x.device)
    for start in range(0, n, block):
        stop = min(start + block, n)
        kb = kernel_matrix(x[start:stop], x, kernel=kx, sigma=sx)
        lb = kernel_matrix(y[start:stop], y, kernel=ky, sigma=sy)
        kk += float((kb * kb).sum(dtype=torch.float64))
        kl += float((kb * lb).sum(dtype=torch.float64))
        ll += float((lb * lb).sum(dtype=torch.float64))
        rk[start:stop] = kb.sum(1, dtype=torch.float64)
        rl[start:stop] = lb.sum(1, dtype=torch.float64)
    return {
        "kk": kk, "kl": kl, "ll": ll,
        "rk_rk": float(rk @ rk), "rk_rl": float(rk @ rl), "rl_rl": float(rl @ rl),
        "sk": float(rk.sum()), "sl": float(rl.sum()),
    }  # fmt: skip


def _centred(s: dict[str, float], n: int, a: str, b: str) -> float:
    # tr(KHLH) = sum(K*L) - 2/n <K1, L1> + (1'K1)(1'L1)/n^2
    return s[a + b] - 2.0 / n * s[f"r{a}_r{b}"] + s["s" + a] * s["s" + b] / n**2


def _metric_inputs(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    sigma_x: Bandwidth,
    sigma_y: Bandwidth,
    kernel_x: Kernel,
    kernel_y: Kernel,
    device: str | torch.device | None,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor, float, float]:
    xt = _as_2d(x).detach().to(device=device, dtype=dtype)
    yt = _as_2d(y).detach().to(device=device, dtype=dtype)
    _check_pair(xt, yt)
    sx = _resolve_sigma(xt, sigma_x) if kernel_x == "rbf" else 1.0
    sy = _resolve_sigma(yt, sigma_y) if kernel_y == "rbf" else 1.0
    return xt, yt, sx, sy


def _default_block(n: int) -> int:
    return int(max(64, min(n, 4_000_000 // max(n, 1))))  # 4M entries (32 MB in float64) a block


@torch.no_grad()
def _score_sums(x, y, sigma_x, sigma_y, kernel_x, kernel_y, block_size, device, dtype):
    xt, yt, sx, sy = _metric_inputs(x, y, sigma_x, sigma_y, kernel_x, kernel_y, device, dtype)
    n = xt.shape[0]
    s = _block_sums(xt, yt, kernel_x, sx, kernel_y, sy, block_size or _default_block(n))
    return s, n


def hsic_score(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    sigma_x: Bandwidth = "median",
    sigma_y: Bandwidth = "median",
    kernel_x: Kernel = "rbf",
    kernel_y: Kernel = "rbf",
    block_size: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> float:
    """Exact biased HSIC on a whole set, computed in row blocks (memory ``O(block x n)``).

    Accumulates in float64; ``dtype=torch.float32`` computes the kernel blocks in single precision
    (about twice as fast, agreement with float64 to about 1e-5).
    """
    s, n = _score_sums(x, y, sigma_x, sigma_y, kernel_x, kernel_y, block_size, device, dtype)
    return _centred(s, n, "k", "l") / (n - 1) ** 2


def cka_score(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    sigma_x: Bandwidth = "median",
    sigma_y: Bandwidth = "median",
    kernel_x: Kernel = "rbf",
    kernel_y: Kernel = "rbf",
    block_size: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> float:
    """Exact biased-estimator CKA on a whole set, computed in row blocks (no ``n x n`` matrix)."""
    s, n = _score_sums(x, y, sigma_x, sigma_y, kernel_x, kernel_y, block_size, device, dtype)
    hkl = _centred(s, n, "k", "l")
    hkk = _centred(s, n, "k", "k")
    hll = _centred(s, n, "l", "l")
    denom = max(hkk, 0.0) * max(hll, 0.0)
    if denom <= _EPS**2:
        return 0.0
    return float(min(max(hkl / np.sqrt(denom), 0.0), 1.0))
