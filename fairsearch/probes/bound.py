"""A certified upper bound on what *any* classifier can recover of ``q`` from a discrete ``Z``.

Probes bound leakage from below: a probe that fails proves nothing about a stronger one. When the
representation takes finitely many values (*cells*, e.g. a quantized translator's codebook) the
best possible classifier is known in closed form, and held-out rows bound its balanced accuracy
from above with a stated confidence (the idea of FARE, Jovanović et al. 2023).

Notation: groups ``k = 1..K`` of ``q``; ``p_k(c) = P(Z = c | q = k)``. For any classifier
``h`` of ``Z`` (randomised or not) the balanced accuracy is ``(1/K) sum_k P(h(Z) = k | q = k)``,
maximised by the per-cell rule ``h*(c) = argmax_k p_k(c)``:

    BA* = (1/K) sum_c max_k p_k(c)         (binary q: 1/2 + TV(p_0, p_1) / 2)

Conditional on the group labels of ``n`` held-out rows (``n_k`` rows in group ``k``), the rows of
group ``k`` are i.i.d. draws of ``p_k``. Two finite-sample bounds, each holding with probability
at least ``1 - delta`` over the rows:

* ``method="rule"`` (default; needs no cell count): ``h*`` is a fixed function, so its empirical
  balanced accuracy is a weighted sum of independent binomials and Hoeffding's inequality bounds
  ``BA(h*)`` by ``BA_hat(h*) + t`` with ``t = sqrt(ln(1/delta) sum_k 1/n_k / (2 K^2))``. And
  ``BA_hat(h*)`` is at most the plug-in optimum ``(1/K) sum_c max_k p_hat_k(c)`` over the cells
  seen in the rows (unseen cells contribute nothing empirically). The bound is
  ``min(1, plug_in + t)``. The plug-in optimum is biased *upwards* (each cell picks its luckiest
  group), so the bound is conservative; with one row per cell (a continuous ``Z``) it is 1.
* ``method="cells"`` (needs ``n_cells``, the number of values ``Z`` can take, fixed before the
  rows are seen): a Clopper-Pearson upper limit ``U_k(c)`` for every group proportion
  ``p_k(c)``, simultaneous by a union bound over the ``K x n_cells`` intervals, combined as
  ``(1/K) sum_c max_k U_k(c)`` (each cell charged to its worst-case group, as FARE charges each
  cell its worst-case proportion). Looser than ``rule`` except with very few cells; kept
  because every per-cell interval can be read off.

A bound is *certified* only when it is below 1. For a representation without repeated values the
rule bound is 1: no bound exists, and :func:`certified_bound` says so instead of printing one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import beta

__all__ = ["MAX_CELLS", "CellBound", "bayes_balanced_accuracy", "bound_row", "cell_codes",
           "certified_bound"]

Method = Literal["rule", "cells"]
#: A representation with more distinct rows than this (or than half its rows) is not treated as
#: discrete by :func:`cell_codes`: its plug-in optimum would be near 1 anyway.
MAX_CELLS = 4096


@dataclass(frozen=True)
class CellBound:
    """An upper bound on the balanced accuracy of any classifier predicting ``q`` from ``Z``."""

    value: float  # the bound (1.0 when nothing better can be certified)
    plug_in: float  # the empirical optimum (1/K) sum_c max_k p_hat_k(c)
    slack: float  # what the finite sample adds (value = min(1, plug_in + slack) for "rule")
    delta: float  # the bound fails with probability at most delta
    method: str
    n_rows: int
    n_cells: int  # cells seen in the rows ("rule") or the given number of cells ("cells")
    n_classes: int

    @property
    def certified(self) -> bool:
        """Whether the bound says anything (is below 1)."""
        return self.value < 1.0

    def describe(self) -> str:
        """One line for a person: the bound, or why there is none."""
        if not self.certified:
            return (f"no bound: {self.n_cells} distinct values on {self.n_rows} rows leave "
                    f"every classifier possible")  # fmt: skip
        return (f"any classifier <= {self.value:.3f} balanced accuracy with probability "
                f">= {1 - self.delta:.2f} ({self.n_cells} cells, {self.n_rows} rows)")


def bayes_balanced_accuracy(p: Any) -> float:
    """``(1/K) sum_c max_k p[k, c]`` for group-conditional cell distributions ``p`` (K x C).

    The balanced accuracy of the best classifier of a discrete ``Z`` (the closed form the
    bounds are tested against).
    """
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or np.any(arr < 0):
        raise ValueError(f"p must be a (groups >= 2) x cells array of probabilities, but got "
                         f"shape {arr.shape}")  # fmt: skip
    if not np.allclose(arr.sum(1), 1.0, atol=1e-9):
        raise ValueError(f"each row of p must sum to 1, but got sums {arr.sum(1).tolist()}")
    return float(arr.max(0).sum() / arr.shape[0])


def cell_codes(Z: Any, *, max_cells: int = MAX_CELLS) -> np.ndarray | None:
    """Cell ids ``0..C-1`` of the distinct rows of ``Z``, or None when ``Z`` is not discrete.

    ``Z`` is discrete when it has at most ``max_cells`` distinct rows and at most half as many
    distinct rows as rows (so that cells repeat). Rows are compared exactly: a quantized model
    outputs the same vector for every row of a cell.
    """
    arr = np.ascontiguousarray(np.asarray(Z))
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"Z must be a non-empty (rows x dims) array, but got shape {arr.shape}")
    _, codes = np.unique(arr, axis=0, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    n_cells = int(codes.max()) + 1
    if n_cells > max_cells or 2 * n_cells > arr.shape[0]:
        return None
    return codes


def _counts(cells: Any, q: Any) -> tuple[np.ndarray, np.ndarray]:
    c, g = np.asarray(cells), np.asarray(q)
    if c.ndim != 1 or g.ndim != 1 or c.shape != g.shape or c.size == 0:
        raise ValueError(f"cells and q must be 1-D arrays of the same non-zero length, but got "
                         f"shapes {c.shape} and {g.shape}")  # fmt: skip
    _, ci = np.unique(c, return_inverse=True)
    groups, gi = np.unique(g, return_inverse=True)
    if groups.size < 2:
        raise ValueError(f"q must hold at least 2 groups, but got only {groups.tolist()!r}")
    table = np.zeros((groups.size, int(ci.max()) + 1))
    np.add.at(table, (gi.reshape(-1), ci.reshape(-1)), 1.0)
    return table, table.sum(1)


def certified_bound(cells: Any, q: Any, *, delta: float = 0.05, method: Method = "rule",
                    n_cells: int | None = None) -> CellBound:  # fmt: skip
    """Upper bound on any classifier's balanced accuracy for ``q`` from the cells ``Z`` falls in.

    ``cells``: one cell id per held-out row (any hashable labels; e.g. :func:`cell_codes`);
    ``q``: the protected group of each row. Holds with probability at least ``1 - delta`` over
    the rows (see the module docstring for both methods). ``n_cells`` (``method="cells"`` only):
    how many values ``Z`` can take, at least the number seen.
    """
    if not (isinstance(delta, int | float) and 0.0 < delta < 1.0):
        raise ValueError(f"delta must be a number in (0, 1), but got {delta!r}")
    if method not in ("rule", "cells"):
        raise ValueError(f"method must be one of ['rule', 'cells'], but got {method!r}")
    table, n_k = _counts(cells, q)
    k, seen = table.shape
    n = int(n_k.sum())
    plug_in = float((table / n_k[:, None]).max(0).sum() / k)
    if method == "rule":
        if n_cells is not None:
            raise ValueError("n_cells is only used by method='cells', but got "
                             f"n_cells={n_cells!r} with method='rule'")  # fmt: skip
        slack = math.sqrt(math.log(1.0 / delta) * float(np.sum(1.0 / n_k)) / (2.0 * k * k))
        return CellBound(min(1.0, plug_in + slack), plug_in, slack, float(delta), method, n,
                         seen, k)  # fmt: skip
    if isinstance(n_cells, bool) or not isinstance(n_cells, int | np.integer) or n_cells < seen:
        raise ValueError(f"n_cells must be an integer >= the {seen} cells seen in the rows for "
                         f"method='cells', but got {n_cells!r}")  # fmt: skip
    level = delta / (k * int(n_cells))
    full = np.zeros((k, int(n_cells)))
    full[:, :seen] = table
    # one-sided Clopper-Pearson upper limit of each group proportion
    rest = np.maximum(n_k[:, None] - full, 1e-12)  # all rows in one cell: the limit is 1
    upper = np.where(full >= n_k[:, None], 1.0, beta.ppf(1.0 - level, full + 1.0, rest))
    value = min(1.0, float(upper.max(0).sum() / k))
    return CellBound(value, plug_in, value - plug_in, float(delta), method, n, int(n_cells), k)


def bound_row(model: str, Z: Any, q: Any, *, floor: float = float("nan"),
              delta: float = 0.05) -> dict[str, Any] | None:  # fmt: skip
    """The audit table's ``certified_bound`` row of one representation of held-out rows, or None
    where no bound exists (``Z`` not discrete, or the bound would be 1: a bound that says
    nothing is not printed).

    ``value`` (and ``ci_low`` = ``ci_high``: the bound already accounts for the finite sample)
    is the ``rule`` bound; ``selected`` notes its confidence, cells and plug-in optimum.
    """
    codes = cell_codes(Z)
    if codes is None:
        return None
    b = certified_bound(codes, q, delta=delta)
    if not b.certified:
        return None
    return dict(model=model, target="q", probe="certified_bound", metric="balanced_accuracy",
                value=b.value, ci_low=b.value, ci_high=b.value, chance=1.0 / b.n_classes,
                floor=floor, selected=f"any classifier, p >= {1 - delta:.2f}; {b.n_cells} cells, "
                f"plug-in {b.plug_in:.3f}")  # fmt: skip
