"""The whole ladder on one representation: every kind cross-fitted over fold seeds, the nested
worst case, pooled intervals, the floors and the online code length, as one
:class:`LadderResult` and its tidy table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairsearch.probes.interval import Interval
from fairsearch.probes.ladder._crossfit import CrossFit, fit_kinds
from fairsearch.probes.ladder._floor import floor_interval
from fairsearch.probes.ladder._inputs import (
    Engine,
    check_engine,
    check_kinds,
    check_positive,
    validate_inputs,
)
from fairsearch.probes.ladder._mdl import MDLResult, online_code_length
from fairsearch.probes.ladder._scoring import bootstrap_ci
from fairsearch.probes.ladder._selection import nested_selection
from fairsearch.probes.registry import PROBE_KINDS

__all__ = ["COLUMNS", "LadderResult", "ladder_result", "run_ladder"]

COLUMNS = ["probe", "metric", "value", "ci_low", "ci_high", "chance", "floor", "selected"]


@dataclass(frozen=True)
class LadderResult:
    """Everything :func:`run_ladder` measured; :meth:`to_frame` gives the tidy table."""

    n_rows: int
    n_classes: int
    chance: float
    kinds: dict[str, Interval]
    worst_case: Interval
    selected: str  # kind chosen most often across outer folds and repeats
    selections: tuple[str, ...]
    naive_max: float
    floors: dict[str, Interval]  # control_label, control_prediction: those measured
    mdl: MDLResult | None

    @property
    def floor(self) -> float:
        """Strongest label-only predictor (NaN without a control label)."""
        return max((iv.value for iv in self.floors.values()), default=float("nan"))

    def to_frame(self) -> pd.DataFrame:
        """One row per kind, then ``worst_case``, the floors and ``mdl_bits``."""
        ba, nan, rows = "balanced_accuracy", np.nan, []
        for name, iv in self.kinds.items():
            rows.append([name, ba, iv.value, iv.ci_low, iv.ci_high, self.chance, self.floor, ""])
        wc = self.worst_case
        rows.append(["worst_case", ba, wc.value, wc.ci_low, wc.ci_high, self.chance, self.floor,
                     self.selected])
        for name, iv in self.floors.items():
            rows.append([name, ba, iv.value, iv.ci_low, iv.ci_high, self.chance, nan, ""])
        if self.mdl is not None:
            m = self.mdl
            rows.append(["mdl", "mdl_bits", m.online_bits, nan, nan, m.uniform_bits, nan, ""])
            rows.append(["mdl", "compression", m.compression, nan, nan, 1.0, nan, ""])
        return pd.DataFrame(rows, columns=COLUMNS)


def run_ladder(
    Z: Any, q: Any, *, y: Any = None, y_pred: Any = None,
    kinds: Sequence[str] = PROBE_KINDS, folds: int = 5, repeats: int = 3,
    n_boot: int = 1000, seed: int = 0, mdl: bool = True, n_jobs: int = 1,
    n_threads: int | None = 1, engine: Engine = "auto", device: Any = None,
) -> LadderResult:
    """Run the whole ladder: every kind cross-fitted ``repeats`` times (fold seeds ``seed + r``),
    the nested worst case per repeat, pooled bootstrap intervals
    (:func:`~fairsearch.probes.ladder.bootstrap_ci`), the floors from ``y`` / ``y_pred`` and the
    online code length. scikit-learn fits run in ``n_jobs`` processes, each limited to
    ``n_threads`` BLAS/OpenMP threads; the kinds of
    :func:`~fairsearch.probes.ladder.batched_kinds` (``engine`` on ``device``, default a GPU when
    there is one) run as batched torch models."""
    Z, codes, k = validate_inputs(Z, q, folds)
    names = check_kinds(kinds)
    check_positive("repeats", repeats)
    check_positive("n_boot", n_boot)
    check_positive("n_jobs", n_jobs)
    check_engine(engine)
    runs = fit_kinds(Z, codes, k, names, folds, repeats, seed, n_jobs=n_jobs,
                     n_threads=n_threads, engine=engine, device=device)
    return ladder_result(Z, codes, k, runs, y=y, y_pred=y_pred, folds=folds, n_boot=n_boot,
                         seed=seed, mdl=mdl, n_threads=n_threads)


def ladder_result(Z: np.ndarray, codes: np.ndarray, k: int,
                  runs: Sequence[dict[str, CrossFit]], *, y: Any = None, y_pred: Any = None,
                  folds: int = 5, n_boot: int = 1000, seed: int = 0, mdl: bool = True,
                  n_threads: int | None = 1) -> LadderResult:
    """The ladder's statistics from cross-fits already made (one dict of kinds per repeat):
    intervals, the nested worst case, floors and MDL, exactly as :func:`run_ladder`. A later
    repeat may lack kinds (:func:`~fairsearch.probes.ladder.refined_kinds` dropped them): a
    kind's interval then pools the repeats it has, and that repeat's worst case selects among
    the kinds it has."""
    repeats = len(runs)
    code_length = online_code_length(Z, codes, seed=seed, n_threads=n_threads) if mdl else None
    ci = {f: bootstrap_ci(codes, np.stack([run[f].predictions for run in runs if f in run]),
                          n_boot=n_boot, seed=seed) for f in runs[0]}
    wcs = [nested_selection(run, codes, k) for run in runs]
    head = bootstrap_ci(codes, np.stack([wc.predictions for wc in wcs]), n_boot=n_boot, seed=seed)
    selections = tuple(s for wc in wcs for s in wc.selected)
    floors = {probe: floor_interval(codes, labels, k, name, folds, repeats, n_boot, seed)
              for probe, name, labels in (("control_label", "y", y),
                                          ("control_prediction", "y_pred", y_pred))
              if labels is not None}
    naive = float(np.mean([wc.naive_max for wc in wcs]))
    return LadderResult(codes.size, k, 1.0 / k, ci, head, Counter(selections).most_common(1)[0][0],
                        selections, naive, floors, code_length)
