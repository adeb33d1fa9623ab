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
  (delta kernel), from :mod:`fairsearch.dependence`;
* ``linear_cka``: linear CKA between ``z`` and one-hot ``q``: zero exactly when every coordinate of
  ``z`` has the same mean in every group, i.e. no *linear* information (LEACE's criterion), made
  a differentiable penalty.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn import functional as F

from fairsearch.dependence import cka, hsic, linear_cka
from fairsearch.translator._model import grad_reverse

Fairness = Literal[
    "none", "adversarial", "gradient_reversal", "negative_ce", "cka", "hsic", "linear_cka"
]
FAIRNESS_CHOICES: tuple[str, ...] = (
    "none", "adversarial", "gradient_reversal", "negative_ce", "cka", "hsic", "linear_cka",
)  # fmt: skip
#: Losses that need a protected head / adversary network.
HEADED: frozenset[str] = frozenset({"adversarial", "gradient_reversal", "negative_ce"})


def reconstruction_loss(z_fair: Tensor, z: Tensor) -> Tensor:
    """Mean over the batch of ``||z_fair - z||^2 / d`` (standardised units: 1 = predicting the mean)."""
    return (z_fair - z).pow(2).mean()


def fairness_term(
    kind: str,
    z_fair: Tensor,
    q: Tensor,
    *,
    head: nn.Module | None = None,
    grl_lambda: float = 1.0,
    adversary_loss: str = "negative_ce",
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
    raise ValueError(f"fairness must be one of {list(FAIRNESS_CHOICES)}, but got {kind!r}")
