"""The order the audit's units run in: every representation x kind on the first fold seed, the
costliest kinds first; then, with successive halving, later fold seeds only for the kinds worth
them. Finished units come from the store when they were fitted before, and go to it as they
finish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fairsearch.analysis.audit.progress import AuditProgress
from fairsearch.analysis.audit.units import Executor, SerialExecutor, Settings, Unit, UnitStore
from fairsearch.probes.ladder import CrossFit, refined_kinds
from fairsearch.probes.registry import by_cost

__all__ = ["fit_units", "fold_seed_rows", "runs_of"]


def _what(unit: Unit, settings: Settings) -> str:
    return f"{unit.kind}, fold seed {unit.repeat + 1}/{settings.repeats}"


def _wave(units: Sequence[Unit], fitted: dict[Unit, CrossFit],
          arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int, settings: Settings,
          run: Executor, store: UnitStore | None, progress: AuditProgress | None) -> None:
    """Fit ``units`` into ``fitted``: those in ``store`` read from it, the others on ``run``,
    each stored and counted as it finishes."""
    todo = []
    # the costliest first: units running at once then end together, with no core idle
    # behind a last boosted-trees unit (the order changes no fit)
    for unit in sorted(units, key=lambda u: by_cost(u.kind)):
        fit = store.get(arrays[unit.representation], codes, unit, settings) if store else None
        if fit is None:
            todo.append(unit)
        else:
            fitted[unit] = fit
            if progress is not None:
                progress.finish()
    left = list(todo)
    if left and progress is not None:
        progress.start(left[0].representation, _what(left[0], settings))
    for unit, fit in run.run(arrays, codes, k, todo, settings):
        fitted[unit] = fit
        left.remove(unit)
        if store is not None:
            store.put(arrays[unit.representation], codes, unit, settings, fit)
        if progress is not None:
            progress.finish()
            if left:  # the earliest unit still running or waiting
                progress.start(left[0].representation, _what(left[0], settings))


def fit_units(arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int,
              kinds: Sequence[str], settings: Settings, executor: Executor | None,
              store: UnitStore | None, progress: AuditProgress | None, halving: bool,
              n_boot: int) -> tuple[dict[Unit, CrossFit], dict[str, tuple[str, ...]]]:
    """Every representation x kind x fold seed unit: from ``store`` when finished before, the
    others from ``executor``, each written to ``store`` as it finishes. The first fold seed of
    every unit runs first; with ``halving``, only the kinds
    :func:`~fairsearch.probes.ladder.refined_kinds` keeps get the later ones. Returns the
    fits and, per representation, the kinds that got every fold seed."""
    fitted: dict[Unit, CrossFit] = {}
    run = executor or SerialExecutor()
    steps: tuple[Any, ...] = (arrays, codes, k, settings, run, store, progress)
    _wave([Unit(m, f, 0) for m in arrays for f in kinds], fitted, *steps)
    refined: dict[str, tuple[str, ...]] = {}
    for m in arrays:
        first = {f: fitted[Unit(m, f, 0)] for f in kinds}
        refined[m] = (refined_kinds(first, codes, k, n_boot=n_boot, seed=settings.seed)
                      if halving and settings.repeats > 1 else tuple(kinds))
        if progress is not None:
            progress.finish((len(kinds) - len(refined[m])) * (settings.repeats - 1))
    _wave([Unit(m, f, r) for r in range(1, settings.repeats) for m in arrays for f in refined[m]],
          fitted, *steps)
    return fitted, refined


def runs_of(fits: Mapping[Unit, CrossFit], model: str, kinds: Sequence[str], repeats: int
            ) -> list[dict[str, CrossFit]]:
    """The ladder's runs of ``model``: per fold seed, the kinds fitted on it."""
    return [{f: fits[Unit(model, f, r)] for f in kinds if Unit(model, f, r) in fits}
            for r in range(repeats)]


def fold_seed_rows(model: str, kinds: Sequence[str], refined: Sequence[str], repeats: int
                   ) -> list[dict[str, Any]]:
    """How many fold seeds each kind was cross-fitted on (``chance`` holds the audit's
    number): fewer for a kind successive halving stopped refining."""
    base = dict(model=model, target="q", metric="fold_seeds", ci_low=np.nan, ci_high=np.nan,
                chance=float(repeats), floor=np.nan, selected="")
    return [dict(base, probe=f, value=float(repeats if f in refined else 1)) for f in kinds]
