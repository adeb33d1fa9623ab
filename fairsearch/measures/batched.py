"""Dependence penalties for a population: one value per member, ``[S, b, k]`` inputs.

``population_dependence(name, ...)`` returns ``(f, q) -> [S]`` where ``f[s]`` and ``q[s]`` are
member ``s``'s mini-batch. CKA and HSIC (biased estimator, RBF or delta kernels, fixed or
median bandwidths) are computed for every member at once and equal the single-model measures
of :mod:`fairsearch.measures.dependence` member by member, up to float rounding (each member's
median bandwidth is its own). Other measures are computed member by member with the single-model
function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from fairsearch.measures.dependence import (
    MEDIAN_SAMPLE,
    Bandwidth,
    DependenceName,
    Kernel,
    dependence_loss,
)

__all__ = ["population_dependence"]

_EPS = 1e-12


def _as_3d(x: Tensor) -> Tensor:
    if not torch.is_floating_point(x):
        x = x.to(torch.get_default_dtype())
    return x[..., None] if x.ndim == 2 else x


def _sq_dists(a: Tensor) -> Tensor:
    sq = (a * a).sum(-1)
    d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * a @ a.transpose(-1, -2)
    return d2.clamp_min(0.0)


Bandwidths = Bandwidth | Sequence[Bandwidth]


def _check(sigma: Bandwidth) -> None:
    if sigma != "median" and (isinstance(sigma, str) or not float(sigma) > 0):
        raise ValueError(f"bandwidth must be a positive number or 'median', but got {sigma!r}")


def _sigma(x: Tensor, d2: Tensor, sigma: Bandwidths) -> Tensor:
    """``[S, 1, 1]`` bandwidths: fixed ones, or each member's median pairwise distance
    (``sigma``: one bandwidth for every member, or one per member)."""
    per = list(sigma) if isinstance(sigma, list | tuple) else [sigma] * x.shape[0]
    if len(per) != x.shape[0]:
        raise ValueError(f"bandwidths need one value or one per member ({x.shape[0]}), "
                         f"but got {len(per)}")  # fmt: skip
    for s in per:
        _check(s)
    fixed = x.new_tensor([1.0 if s == "median" else float(s) for s in per])
    if all(s != "median" for s in per):
        return fixed[:, None, None]
    n = x.shape[1]
    iu = torch.triu_indices(n, n, offset=1, device=x.device)
    d = d2.detach()[:, iu[0], iu[1]].sqrt()
    med = d.median(dim=1).values if d.shape[1] else x.new_zeros(x.shape[0])
    med = torch.where((med > 0) & torch.isfinite(med), med, torch.ones_like(med))
    use = torch.tensor([s == "median" for s in per], device=x.device)
    return torch.where(use, med, fixed)[:, None, None]


def _gram(x: Tensor, kernel: Kernel, sigma: Bandwidths) -> Tensor:
    if kernel == "delta":
        return (x[:, :, None, :] == x[:, None, :, :]).all(-1).to(x.dtype)
    if kernel == "linear":
        return x @ x.transpose(-1, -2)
    d2 = _sq_dists(x)
    s = _sigma(x, d2, sigma)
    return torch.exp(-d2 / (2.0 * s * s))


def _centre(k: Tensor) -> Tensor:
    return k - k.mean(-2, keepdim=True) - k.mean(-1, keepdim=True) + k.mean((-2, -1), keepdim=True)


def _hsic(k: Tensor, l: Tensor, kc: Tensor | None = None) -> Tensor:
    """Biased HSIC ``sum(HKH * L) / (n - 1)^2`` (``kc``: ``HKH`` when already computed)."""
    n = k.shape[-1]
    kc = _centre(k) if kc is None else kc
    return (kc * l).sum((-2, -1)) / (n - 1) ** 2


def _cka(k: Tensor, l: Tensor) -> Tensor:
    kc, lc = _centre(k), _centre(l)  # each gram centred once for the three HSIC terms
    hxy, hxx, hyy = _hsic(k, l, kc), _hsic(k, k, kc), _hsic(l, l, lc)
    denom = hxx.clamp_min(0.0) * hyy.clamp_min(0.0)
    return torch.where(denom > _EPS**2, hxy / torch.sqrt(denom + _EPS**2), torch.zeros_like(hxy))


def population_dependence(
    name: DependenceName,
    *,
    sigma_f: Bandwidths = "median",
    sigma_q: Bandwidths = "median",
    q_kernel: Kernel = "rbf",
) -> Callable[[Tensor, Tensor], Tensor]:
    """The penalty of :func:`~fairsearch.measures.dependence.dependence_loss`, one per member
    (``sigma_f``/``sigma_q``: one bandwidth, or one per member)."""

    def single(s: int) -> Callable[[Tensor, Tensor], Tensor]:
        sf = sigma_f[s] if isinstance(sigma_f, list | tuple) else sigma_f
        sq = sigma_q[s] if isinstance(sigma_q, list | tuple) else sigma_q
        return dependence_loss(name, sigma_f=sf, sigma_q=sq, q_kernel=q_kernel)

    def looped(f: Tensor, q: Tensor) -> Tensor:
        return torch.stack([single(s)(f[s], q[s]) for s in range(f.shape[0])])

    def batched(f: Tensor, q: Tensor) -> Tensor:
        x = _as_3d(f)
        y = _as_3d(q).to(x.dtype)
        if x.shape[1] > MEDIAN_SAMPLE:  # the single measure subsamples for its median: use it
            return looped(f, q)
        k, l = _gram(x, "rbf", sigma_f), _gram(y, q_kernel, sigma_q)
        return _cka(k, l) if name == "cka" else _hsic(k, l)

    return batched if name in ("cka", "hsic") else looped
