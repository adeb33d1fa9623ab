"""Restarts of a quantized translator: train several copies, keep the one its own loss prefers.

A quantized translator's codebook settles on one partition of the rows among many, and which
one depends on the seed. On Adult income x sex (64 cells, no fairness term but the cell
balance) one seed in five ended with two large cells that split a control class by sex: its
cell balance on the training rows was twice the others' and a fresh probe recovered sex at
0.66 balanced accuracy against 0.58-0.62. Such a partition is visible on the training rows,
so, as k-means keeps the best of ``n_init`` starts by inertia, ``restarts: k`` trains ``k``
copies from seeds derived from the translator's own (:func:`restart_seed`; the first copy is
the seed itself, so ``restarts: 1`` is the plain fit) and keeps the copy whose training
objective (:func:`training_objective`) is lowest. No validation or test row is read.

The objective is the loss the translator minimises, each term on hard cells (what a consumer
of the output gets): ``w_control`` * control cross-entropy + ``w_rec`` * reconstruction error +
``w_cells`` * cell balance, all on every training row, + ``w_fair`` * the fairness term on a
fixed seeded sample of ``fair_rows`` rows (the same rows for every copy). Terms with an
adversary or protected head have no value that copies share, so restarts need a head-free term.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from fairsearch.families.translator._losses import HEADED, fairness_term
from fairsearch.families.translator._model import TranslatorNet
from fairsearch.families.translator._quantize import cell_balance

__all__ = ["RESTART_STRIDE", "check_restarts", "objective_rows", "restart_seed",
           "training_objective"]

#: Seed ``s``'s restart ``r`` trains from seed ``s + r * RESTART_STRIDE``: far from the small
#: consecutive seeds that searches and retraining use, so no restart repeats another fit's seed.
RESTART_STRIDE = 100_003


def restart_seed(seed: int, restart: int) -> int:
    """The seed of copy ``restart`` (``0``: the translator's own)."""
    return int(seed) + int(restart) * RESTART_STRIDE


def check_restarts(p: dict[str, Any]) -> None:
    """``ValueError`` unless ``restarts`` is an integer >= 1, and, above 1, the translator is
    quantized with a head-free fairness term."""
    k = p["restarts"]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"restarts must be an integer >= 1, but got {k!r}")
    if k > 1 and not p["quantize"]:
        raise ValueError(f"restarts > 1 keeps the best of several codebooks, so it needs a "
                         f"quantized translator (quantize >= 2), but got restarts={k} with "
                         f"quantize=0")  # fmt: skip
    if k > 1 and p["fairness"] in HEADED:
        raise ValueError(f"restarts > 1 compares the copies' training losses, which a fairness "
                         f"term with an adversary or protected head does not give, but got "
                         f"fairness={p['fairness']!r}; use a head-free term or restarts=1")  # fmt: skip


@torch.no_grad()
def training_objective(net: TranslatorNet, p: dict[str, Any], Z: Tensor, y: Tensor, q: Tensor,
                       *, n_q: int, fair_rows: Tensor | None) -> float:  # fmt: skip
    """The loss of module docstring on standardised training rows ``Z`` (codes ``y``, ``q``);
    ``fair_rows``: the rows of the fairness term (None: all)."""
    was_training = net.training
    net.eval()
    q1h = F.one_hot(q, n_q).to(torch.float32) if net.q_dim else None
    z_fair = net.translate_std(Z, q1h)
    total = p["w_control"] * F.cross_entropy(net.control_head(z_fair), y)
    total = total + p["w_rec"] * (z_fair - Z).pow(2).mean()
    if net.codebook is not None:
        cells = net.codebook.cells(net.encode(Z, q1h))
        onehot = F.one_hot(cells, net.codebook.codes.shape[0]).to(Z.dtype)
        total = total + p["w_cells"] * cell_balance(onehot, q, y, n_groups=n_q)
    if p["fairness"] != "none" and p["w_fair"] > 0:
        rows = slice(None) if fair_rows is None else fair_rows
        # a term that draws random numbers (sliced Wasserstein's directions) draws the same
        # ones for every copy, and leaves the global generator as it found it
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(p["seed"]))
            total = total + p["w_fair"] * fairness_term(
                p["fairness"], z_fair[rows], q[rows], y=y[rows], n_classes=n_q,
                grl_lambda=p["grl_lambda"], adversary_loss=p["adversary_loss"])  # fmt: skip
    net.train(was_training)
    return float(total)


def objective_rows(p: dict[str, Any], n: int, device: torch.device) -> Tensor | None:
    """The fixed rows of the fairness term in :func:`training_objective`: a sample of
    ``fair_rows`` (1,024 when it is 0) seeded by the translator's own seed; None for all."""
    m = p["fair_rows"] or 1024
    if m >= n:
        return None
    gen = torch.Generator().manual_seed(int(p["seed"]))
    return torch.randperm(n, generator=gen)[:m].to(device)
