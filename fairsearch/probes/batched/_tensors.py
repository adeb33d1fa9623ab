"""Tensor steps every batched probe shares: the device, torch threads, per-member
standardisation and class weights, and the logit <-> probability / likelihood maps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["balanced_weights", "class_proba", "default_device", "nll", "standardiser",
           "torch_threads"]


def default_device() -> torch.device:
    """A CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Torch limited to ``n_threads`` threads inside (unchanged with None)."""
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def standardiser(Z: torch.Tensor, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean and 1/std of ``Z`` over each member's training rows, as
    ``StandardScaler``: population std, 1 for a feature it deems constant (its rule)."""
    w = train.to(Z.dtype)
    cnt = w.sum(1, keepdim=True)
    mu = (w @ Z) / cnt
    var = torch.cat([(w[i:i + 16, :, None] * (Z[None] - mu[i:i + 16, None]) ** 2).sum(1)
                     for i in range(0, w.shape[0], 16)]) / cnt  # two-pass, as sklearn
    eps = torch.finfo(Z.dtype).eps
    constant = var <= cnt * eps * var + (cnt * mu * eps) ** 2
    std = torch.where(constant, torch.ones_like(var), var.sqrt())
    return mu, 1.0 / std


def balanced_weights(codes: torch.Tensor, train: torch.Tensor, k: int) -> torch.Tensor:
    """``compute_sample_weight("balanced")`` of each member's training rows; 0 elsewhere."""
    onehot = torch.nn.functional.one_hot(codes, k).to(torch.float64)  # (n, k)
    w = train.to(torch.float64)
    counts = w @ onehot  # (M, k)
    n_present = (counts > 0).sum(1, keepdim=True)
    per_class = w.sum(1, keepdim=True) / (n_present * counts.clamp_min(1))
    return (per_class[:, codes] * w).to(torch.float64)


def class_proba(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities from ``(..., 1)`` binary logits or ``(..., K)`` softmax logits."""
    if logits.shape[-1] == 1:
        p1 = torch.sigmoid(logits)
        return torch.cat([1 - p1, p1], -1)
    return torch.softmax(logits, -1)


def nll(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Per-row negative log-likelihood, ``logits`` (M, n, 1|K), ``codes`` (n,) or (M, n)."""
    codes = codes.expand(logits.shape[:-1])
    if logits.shape[-1] == 1:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits[..., 0], codes.to(logits.dtype), reduction="none")
    return -torch.log_softmax(logits, -1).gather(-1, codes[..., None])[..., 0]
