"""The batched kNN probe: standardised distances computed in blocks, uniform votes over the
``n_neighbors`` nearest training rows of each member."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fairsearch.probes.batched._tensors import standardiser

__all__ = ["KNN_BLOCK_BYTES", "KNN_CHUNK", "knn_proba"]

#: Members per batch of kNN distance matrices.
KNN_CHUNK = 8
#: Bytes the kNN distances of one block of query rows may take (chunk x rows x n float64, and
#: their masked copy): rows are blocked so that 9,000 held-out rows need no 15 GB.
KNN_BLOCK_BYTES = 256 * 2**20


def knn_proba(Z: torch.Tensor, codes: torch.Tensor, k: int, train: torch.Tensor,
               neighbours: Sequence[int]) -> list[torch.Tensor]:
    """Vote fractions ``(M, n, K)`` of every row for each ``n_neighbors`` (capped at the rows)."""
    Z = Z.to(torch.float64)
    mu, inv = standardiser(Z, train)
    kmax = min(max(neighbours), int(train.sum(1).min()))
    out = [torch.empty(train.shape[0], Z.shape[0], k, dtype=torch.float64, device=Z.device)
           for _ in neighbours]
    onehot = torch.nn.functional.one_hot(codes, k).to(torch.float64)
    n = Z.shape[0]
    for start in range(0, train.shape[0], KNN_CHUNK):
        sl = slice(start, start + KNN_CHUNK)
        zs = (Z[None] - mu[sl, None]) * inv[sl, None]  # (c, n, d)
        c = zs.shape[0]
        ntrain = train[sl].sum(1)
        kk = [torch.clamp(ntrain, max=nb).clamp_max(kmax) for nb in neighbours]  # (c,) each
        # query rows in blocks: the distances (and their masked copy) stay within the budget
        rows = max(1, KNN_BLOCK_BYTES // (3 * 8 * c * n))
        for r0 in range(0, n, rows):
            rs = slice(r0, r0 + rows)
            dist = torch.cdist(zs[:, rs], zs).pow(2)  # (c, rows, n)
            dist = dist.masked_fill(~train[sl, None, :], float("inf"))
            near = dist.topk(kmax, dim=-1, largest=False).indices  # sorted by distance
            del dist
            csum = onehot[near].cumsum(2)  # (c, rows, kmax, K)
            for slot, kk_slot in enumerate(kk):
                picked = csum[torch.arange(c), :, kk_slot - 1]  # (c, rows, K)
                out[slot][sl, rs] = picked / kk_slot[:, None, None].to(torch.float64)
    return out
