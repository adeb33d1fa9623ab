"""What fairness means (the criterion) and the dependence penalty it asks for.

* ``independence``: ``q`` cannot be recovered from the prediction (demographic parity for
  decisions); the penalty is ``dependence(prediction, q)`` on the whole mini-batch.
* ``separation``: ``q`` cannot be recovered from the prediction *given the true label*
  (equalized odds); the penalty is the dependence within each class of ``y``, each class weighted
  by its share of the rows, ``sum_c n_c / n * dependence(prediction[y = c], q[y = c])``. For CKA
  and HSIC this is the conditional kernel measure: 0 when ``q`` is independent of the prediction
  within every class, even when ``q`` and ``y`` are dependent.
* ``opportunity``: the same within the positive class ``y = 1`` alone (equal opportunity;
  binary tasks).

A class with fewer than two rows in a mini-batch carries no dependence and adds 0. No Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from fairsearch.measures.fairness import CRITERIA

__all__ = ["conditional_dependence", "penalty_classes", "population_conditional"]

DependenceFn = Callable[[Tensor, Tensor], Tensor]


def penalty_classes(criterion: str, y: Tensor) -> list[int]:
    """The classes of ``y`` whose rows the criterion's penalty looks within."""
    if criterion == "opportunity":
        return [1]
    return [int(c) for c in torch.unique(y).tolist()]


def conditional_dependence(fn: DependenceFn, f: Tensor, q: Tensor, y: Tensor, *,
                           criterion: str) -> Tensor:  # fmt: skip
    """``fn(f, q)`` for ``independence``; else the share-weighted sum of ``fn`` within each class
    of ``y`` the criterion names (:func:`penalty_classes`), the shares taken among those classes'
    rows (so ``opportunity``'s single class weighs 1)."""
    if criterion == "independence":
        return fn(f, q)
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, but got {criterion!r}")
    y = y.reshape(-1)
    masks = [y == c for c in penalty_classes(criterion, y)]
    rows = sum(int(m.sum()) for m in masks)
    total = f.new_zeros(())
    for mask in masks:
        n_c = int(mask.sum())
        if n_c >= 2:
            total = total + n_c / rows * fn(f[mask], q[mask])
    return total


def population_conditional(fns: Sequence[DependenceFn], *,
                           criterion: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:  # fmt: skip
    """Per-member conditional penalty of a population: ``(f, q, y) -> [S]`` where ``f[s]``,
    ``q[s]`` and ``y[s]`` are member ``s``'s mini-batch and ``fns[s]`` its own measure (each
    member's classes split its own rows, so members are computed one after another)."""

    def penalty(f: Tensor, q: Tensor, y: Tensor) -> Tensor:
        return torch.stack([conditional_dependence(fns[s], f[s], q[s], y[s], criterion=criterion)
                            for s in range(f.shape[0])])  # fmt: skip

    return penalty
