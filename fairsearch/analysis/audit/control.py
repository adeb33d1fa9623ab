"""The shuffled-q control: what the held-out rows can resolve.

The rows of a representation are put in a seeded random order against ``q`` (as permuting
``q``), which makes them leak-free by construction; the ladder's worst case on them has the
interval a leak-free representation gets. Its rows (model ``resolution``, probe ``leak_free``)
are read back by :mod:`fairsearch.analysis.audit.resolution`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fairsearch.analysis.audit.units import LADDER_FOLDS, LADDER_REPEATS
from fairsearch.probes.ladder import CrossFit, Engine, fit_kinds, ladder_result, validate_inputs
from fairsearch.probes.registry import PROBE_KINDS

__all__ = ["CONTROL", "RESOLVE_MARGIN", "leak_free_rows", "resolution_rows", "shuffled"]

#: The margin a verdict allows above its reference (the value of
#: :data:`fairsearch.analysis.audit.leakage.MARGIN`); the resolution rows say whether the rows
#: reach it.
RESOLVE_MARGIN = 0.05
#: The key of the shuffled-q control among the audit's units (never a model of the table).
CONTROL = "(shuffled-q control)"


def shuffled(X: np.ndarray, seed: int) -> np.ndarray:
    """The rows of ``X`` in a seeded random order: paired with the unshuffled ``q`` they are
    independent of it by construction (the shuffled-q control)."""
    return X[np.random.default_rng(seed + 7919).permutation(len(X))]


def leak_free_rows(X: np.ndarray, codes: np.ndarray, k: int, runs: Sequence[dict[str, CrossFit]],
                n_boot: int, seed: int, margin: float = RESOLVE_MARGIN) -> list[dict[str, Any]]:
    wc = ladder_result(X, codes, k, runs, folds=LADDER_FOLDS, n_boot=n_boot, seed=seed,
                   mdl=False).worst_case
    half = (wc.ci_high - wc.ci_low) / 2
    need = int(np.ceil(len(codes) * (half / margin) ** 2))
    base = dict(model="resolution", target="q", probe="leak_free", ci_low=np.nan,
                ci_high=np.nan, chance=1.0 / k, floor=np.nan, selected="")
    return [dict(base, metric="held_out_rows", value=float(len(codes))),
            dict(base, metric="ci_half_width", value=float(half)),
            dict(base, metric="rows_to_resolve", value=float(need), chance=float(margin))]


def resolution_rows(X: np.ndarray, qc: np.ndarray, *,
                    kinds: Sequence[str] = PROBE_KINDS, repeats: int = LADDER_REPEATS,
                    n_boot: int = 200, seed: int = 0, engine: Engine = "auto",
                    margin: float = RESOLVE_MARGIN) -> list[dict[str, Any]]:
    """What these held-out rows can resolve: a shuffled-q control.

    The rows of ``X`` are put in a seeded random order against ``q`` (as permuting ``q``),
    which makes them leak-free by construction, and the ladder's worst case over ``kinds``
    (the audit's own probes) is cross-fitted on them with the audit's folds, repeats and
    bootstrap, so its interval is the one a leak-free representation gets. ``ci_half_width``:
    half the width of that interval, the smallest leak the rows resolve (``held_out_rows`` of
    them); ``rows_to_resolve``: held-out rows at which the half-width would reach ``margin`` (it
    shrinks as ``1/sqrt(n)``; that row's ``chance`` column holds ``margin``). Both are rows of
    model ``resolution``, probe ``leak_free``; the control's own balanced accuracy is not
    written, so no table or plot mistakes the control for a model.
    """
    Xv, qv, k = validate_inputs(X, qc, LADDER_FOLDS)
    Xs = shuffled(Xv, seed)
    runs = fit_kinds(Xs, qv, k, tuple(kinds), LADDER_FOLDS, repeats, seed, engine=engine)
    return leak_free_rows(Xs, qv, k, runs, n_boot, seed, margin)
