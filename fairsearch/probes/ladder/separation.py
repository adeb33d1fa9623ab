"""Separation leakage: could a probe recover ``q`` from a representation *given the true label*?

Equalized odds asks that ``q`` be unrecoverable within each class of the control label ``y``. For
each class, the ladder's nested worst case (:func:`~fairsearch.probes.ladder.worst_case`) is
cross-fitted on that class's rows alone and scored by balanced accuracy with a bootstrap
interval; the headline is the worst class, the one whose estimate lies furthest above its own
chance (1 / the groups of ``q`` present in it). The reference is chance, not the floor: with the
label given, keeping the control task forces no leak. A class in which some group has fewer rows
than ``folds`` cannot be cross-fitted and is named in ``skipped``. No Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fairsearch.probes.interval import Interval
from fairsearch.probes.ladder._inputs import encode
from fairsearch.probes.ladder._scoring import bootstrap_ci
from fairsearch.probes.ladder._selection import worst_case

__all__ = ["SeparationLeak", "separation_leakage"]


@dataclass(frozen=True)
class SeparationLeak:
    """The balanced accuracy of ``q`` within each class of the label, and the worst class."""

    by_class: Mapping[int, Interval]  # class code of y -> balanced accuracy of q in its rows
    chance: Mapping[int, float]  # class code of y -> 1 / groups of q present in it
    worst_class: int
    skipped: tuple[int, ...] = ()  # classes some group of q is too small in to cross-fit

    @property
    def worst(self) -> Interval:
        return self.by_class[self.worst_class]

    @property
    def excess(self) -> float:
        """How far the worst class's estimate lies above its chance."""
        return self.worst.value - self.chance[self.worst_class]


def separation_leakage(Z: Any, q: Any, y: Any, *, kinds: Sequence[str] = ("logistic",),
                       folds: int = 5, seed: int = 0, n_boot: int = 1000) -> SeparationLeak:  # fmt: skip
    """Cross-fitted balanced accuracy of ``q`` from ``Z`` within each class of ``y`` (class
    codes), the nested worst case over ``kinds`` in each; see the module's docstring."""
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z.reshape(len(Z), -1)
    qc, _ = encode(q, "q", len(Z))
    yc, _ = encode(y, "y", len(Z))
    by_class: dict[int, Interval] = {}
    chance: dict[int, float] = {}
    skipped: list[int] = []
    for c in range(int(yc.max()) + 1):
        rows = yc == c
        groups, counts = np.unique(qc[rows], return_counts=True)
        if len(groups) < 2 or counts.min() < folds:
            skipped.append(c)
            continue
        qr, _ = encode(qc[rows], "q")  # codes 0..k-1 of the groups present in this class
        wc = worst_case(Z[rows], qr, kinds=kinds, folds=folds, seed=seed)
        by_class[c] = bootstrap_ci(qr, wc.predictions, n_boot=n_boot, seed=seed)
        chance[c] = 1.0 / len(groups)
    if not by_class:
        raise ValueError(f"separation leakage needs at least one class of y in which every "
                         f"group of q has at least folds={folds} rows, but none has")  # fmt: skip
    worst = max(by_class, key=lambda c: by_class[c].value - chance[c])
    return SeparationLeak(by_class, chance, worst, tuple(skipped))
