"""The audit rows of a run whose criterion conditions on the label (``separation``,
``opportunity``): ``q`` recovered from each representation within each class of the control
label (:mod:`fairsearch.probes.ladder.separation`), against chance.

Rows have ``target`` ``q_given_y``, ``probe`` ``worst_case`` (the nested worst case over the
run's probe kinds) and ``selected`` ``y=<class>``, one per class of the label the criterion
looks within (every class for separation, the positive class for opportunity), then a
``worst_class`` row repeating the class furthest above its chance. ``floor`` is empty: with the
label given, keeping the control task forces no leak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fairsearch.probes.ladder.separation import separation_leakage
from fairsearch.probes.registry import BASELINE_KIND

__all__ = ["TARGET", "separation_rows"]

#: The ``target`` of the rows: q, the label given.
TARGET = "q_given_y"


def separation_rows(representations: Mapping[str, np.ndarray], q: np.ndarray, y: np.ndarray, *,
                    criterion: str, probes: Sequence[str], n_boot: int,
                    seed: int) -> list[dict[str, Any]]:  # fmt: skip
    """One row per representation and class of ``y`` the criterion looks within, and its worst
    class (see the module's docstring)."""
    q, y = np.asarray(q).reshape(-1), np.asarray(y).reshape(-1)
    keep = np.ones(len(y), dtype=bool) if criterion != "opportunity" else y == np.max(y)
    classes, yc = np.unique(y[keep], return_inverse=True)
    kinds = tuple(k for k in probes if k != BASELINE_KIND) or ("logistic",)
    rows: list[dict[str, Any]] = []
    for name, rep in representations.items():
        Z = np.asarray(rep, dtype=np.float64).reshape(len(y), -1)
        leak = separation_leakage(Z[keep], q[keep], yc, kinds=kinds, seed=seed,
                                  n_boot=n_boot)  # fmt: skip
        base = dict(model=name, target=TARGET, metric="balanced_accuracy", floor=float("nan"))
        for c, interval in leak.by_class.items():
            rows.append(dict(base, probe="worst_case", value=interval.value,
                             ci_low=interval.ci_low, ci_high=interval.ci_high,
                             chance=leak.chance[c], selected=f"y={classes[c]}"))  # fmt: skip
        w = leak.worst
        rows.append(dict(base, probe="worst_class", value=w.value, ci_low=w.ci_low,
                         ci_high=w.ci_high, chance=leak.chance[leak.worst_class],
                         selected=f"y={classes[leak.worst_class]}"))  # fmt: skip
    return rows
