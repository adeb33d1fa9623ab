"""Fairness terms of the translator loss.

``total = w_control * CE(control) + w_fair * fairness + w_rec * MSE(e_fair, e)`` where ``fairness``
is, for a batch of translated embeddings ``z`` and protected codes ``q``:

* ``adversarial``: ``-CE(adversary(z), q)``; the adversary is a separate network with its own
  optimiser, trained to *minimise* that CE every ``k`` translator steps (a min-max game);
  with ``adversary_loss="confusion"`` the translator instead minimises ``CE(adversary(z), uniform)``
  (push the adversary's posterior to uniform; Alvi et al. 2018), which cannot be won by making the
  adversary confidently *wrong* (a label flip keeps all the information);
* ``gradient_reversal``: ``CE(head(GRL_lambda(z)), q)``; one optimiser: the head minimises the CE,
  the reversed gradient makes the translator maximise it (Raff & Sylvester 2018);
* ``negative_ce``: ``-CE(head(z), q)`` with head and translator in one optimiser: the head is free
  to become arbitrarily wrong, so the loss runs to ``-inf`` (the report's divergence);
* ``cka`` / ``hsic``: kernel dependence between ``z`` (RBF, median bandwidth) and ``q``
  (delta kernel), from :mod:`fairsearch.measures.dependence`;
* ``linear_cka``: linear CKA between ``z`` and one-hot ``q``: zero exactly when every coordinate of
  ``z`` has the same mean in every group, i.e. no *linear* information (LEACE's criterion), made
  a differentiable penalty.
* ``linear_guard``: the squared canonical correlations between ``z`` and one-hot ``q`` (for a
  binary ``q``: the R^2 of the least-squares linear probe), i.e. the cross-covariance measured in
  whitened units (ridge-regularised). Zero exactly when the class-conditional means of ``z`` are
  equal (LEACE's criterion: then no linear probe, whatever its loss, class weights or feature
  scaling, beats a constant), and unlike ``linear_cka`` it does not ignore low-variance
  directions, which a standardising probe blows up. Estimate it on many rows (``fair_rows``):
  on a small batch its chance level is about ``d / batch``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fairsearch.families.translator._model import grad_reverse
from fairsearch.measures.dependence import cka, hsic, linear_cka

Fairness = Literal[
    "none", "adversarial", "gradient_reversal", "negative_ce", "cka", "hsic", "linear_cka",
    "linear_guard",
]
FAIRNESS_CHOICES: tuple[str, ...] = (
    "none", "adversarial", "gradient_reversal", "negative_ce", "cka", "hsic", "linear_cka",
    "linear_guard",
)  # fmt: skip
#: Losses that need a protected head / adversary network.
HEADED: frozenset[str] = frozenset({"adversarial", "gradient_reversal", "negative_ce"})


def reconstruction_loss(z_fair: Tensor, z: Tensor) -> Tensor:
    """Mean over the batch of ``||z_fair - z||^2 / d`` (standardised units: 1 = predicting the mean)."""
    return (z_fair - z).pow(2).mean()


def linear_guard(z: Tensor, q: Tensor, *, n_classes: int | None = None, ridge: float = 1e-4) -> Tensor:
    """Sum of squared canonical correlations between ``z`` and one-hot ``q`` (first class dropped).

    ``tr(Sqq^-1 Sqz (Szz + ridge * tr(Szz)/d * I)^-1 Szq)``: in ``[0, n_classes - 1]``, invariant to
    any invertible linear map of ``z`` (up to the ridge); 0 iff every class has the same mean.
    """
    k = int(n_classes) if n_classes is not None else int(q.max()) + 1
    onehot = F.one_hot(q, max(k, 2)).to(z.dtype)[:, 1:]
    n, d = z.shape
    zc, qc = z - z.mean(0), onehot - onehot.mean(0)
    szz = zc.T @ zc / n
    szq = zc.T @ qc / n
    sqq = qc.T @ qc / n
    eye_d = torch.eye(d, dtype=z.dtype, device=z.device)
    eye_k = torch.eye(qc.shape[1], dtype=z.dtype, device=z.device)
    szz = szz + (ridge * szz.diagonal().mean().clamp_min(1e-12)) * eye_d
    m = szq.T @ torch.linalg.solve(szz, szq)
    return torch.linalg.solve(sqq + 1e-6 * eye_k, m).diagonal().sum()


def fairness_term(
    kind: str,
    z_fair: Tensor,
    q: Tensor,
    *,
    head: nn.Module | None = None,
    grl_lambda: float = 1.0,
    adversary_loss: str = "negative_ce",
    n_classes: int | None = None,
) -> Tensor:
    """The un-weighted fairness term that the translator *minimises* (see the module docstring)."""
    if kind == "none":
        return z_fair.new_zeros(())
    if kind in HEADED:
        if head is None:
            raise ValueError(f"fairness={kind!r} needs a protected head or adversary, but got None")
        if kind == "gradient_reversal":
            return F.cross_entropy(head(grad_reverse(z_fair, grl_lambda)), q)
        if kind == "adversarial" and adversary_loss == "confusion":
            return -F.log_softmax(head(z_fair), dim=1).mean()
        if kind == "adversarial" and adversary_loss != "negative_ce":
            raise ValueError(
                f"adversary_loss must be 'negative_ce' or 'confusion', but got {adversary_loss!r}"
            )
        return -F.cross_entropy(head(z_fair), q)
    if kind == "cka":
        return cka(z_fair, q, kernel_y="delta")
    if kind == "hsic":
        return hsic(z_fair, q, kernel_y="delta")
    if kind == "linear_cka":
        return linear_cka(z_fair, F.one_hot(q).to(z_fair.dtype))
    if kind == "linear_guard":
        return linear_guard(z_fair, q, n_classes=n_classes)
    raise ValueError(f"fairness must be one of {list(FAIRNESS_CHOICES)}, but got {kind!r}")
