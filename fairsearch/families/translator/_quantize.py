"""The quantized translator's codebook and its cell-balance term (``quantize: K``).

The encoder's output ``h`` is replaced by the nearest of ``K`` learned codes (a straight-through
codebook, as in VQ-VAE), so the translator outputs one of ``K`` vectors: the decoded codes. A
consumer still gets embeddings, and the audit can bound *any* classifier of them
(:mod:`fairsearch.probes.bound`), since the output takes finitely many values.

``cell_balance`` is what training minimises so that the bound is low: within each control class
``y``, the distribution over cells of every group of ``q`` should be the same (``Z`` independent
of ``q`` given ``y``, cell by cell). Its forward value is computed on the *hard* assignments (what
the audit sees); its gradient flows through a softmax over code distances (straight-through).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["COMMITMENT", "Codebook", "cell_balance"]

#: Weight of the commitment term (encoder output pulled towards its code), as in VQ-VAE.
COMMITMENT = 0.25


class Codebook(nn.Module):
    """``K`` codes of size ``dim``; ``forward`` quantizes a batch of encoder outputs."""

    def __init__(self, k: int, dim: int) -> None:
        super().__init__()
        self.codes = nn.Parameter(torch.randn(k, dim) * 0.1)

    @torch.no_grad()
    def init_from(self, h: Tensor, generator: torch.Generator | None = None) -> None:
        """Codes := ``K`` distinct rows of ``h`` (drawn with replacement when there are fewer)."""
        k = self.codes.shape[0]
        if len(h) >= k:
            idx = torch.randperm(len(h), generator=generator)[:k]
        else:
            idx = torch.randint(len(h), (k,), generator=generator)
        self.codes.copy_(h[idx.to(h.device)] + 1e-3 * torch.randn_like(self.codes))

    def distances(self, h: Tensor) -> Tensor:
        """Squared distances (rows x K) of ``h`` to every code."""
        c = self.codes
        return (h.pow(2).sum(1, keepdim=True) + c.pow(2).sum(1)[None] - 2.0 * h @ c.T).clamp_min(0)

    def cells(self, h: Tensor) -> Tensor:
        """The index of the nearest code of every row."""
        return self.distances(h).argmin(1)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(h_q, assign, vq_loss)``: the nearest codes (straight-through gradient to ``h``),
        the straight-through one-hot assignment (rows x K) and the codebook + commitment loss."""
        d2 = self.distances(h)
        idx = d2.argmin(1)
        hard = F.one_hot(idx, self.codes.shape[0]).to(h.dtype)
        tau = d2.detach().min(1).values.mean().clamp_min(1e-6)  # the typical quantization error
        soft = torch.softmax(-d2 / tau, dim=1)
        hq = self.codes[idx]
        vq = (hq - h.detach()).pow(2).mean() + COMMITMENT * (h - hq.detach()).pow(2).mean()
        return h + (hq - h).detach(), hard + soft - soft.detach(), vq


def cell_balance(assign: Tensor, q: Tensor, y: Tensor, *, n_groups: int) -> Tensor:
    """Class-size-weighted mean over control classes ``y`` of the mean total-variation distance
    between each group's distribution over cells and the groups' average distribution.

    ``assign``: rows x K cell assignments (one-hot, or straight-through). 0 exactly when every
    group of ``q`` falls into the cells in the same proportions within every control class; for
    a binary ``q`` it is half the per-class TV distance, i.e. what the best classifier of the
    cells gains in balanced accuracy over chance, given ``y``.
    """
    total = assign.new_zeros(())
    for c in torch.unique(y):
        mask = y == c
        a, g = assign[mask], q[mask]
        onehot = F.one_hot(g, n_groups).to(a.dtype)
        counts = onehot.sum(0)
        present = counts > 0
        if int(present.sum()) < 2:
            continue
        means = (onehot.T @ a)[present] / counts[present, None]  # groups x K
        tv = 0.5 * (means - means.mean(0, keepdim=True)).abs().sum(1).mean()
        total = total + mask.to(a.dtype).mean() * tv
    return total
