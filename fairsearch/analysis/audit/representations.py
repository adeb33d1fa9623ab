"""The audit of named representations of the same held-out rows: one tidy row per number.

For a categorical ``q`` every representation climbs the probe ladder
(:mod:`fairsearch.probes.ladder`), cross-fitted over all held-out rows in units
(:mod:`~fairsearch.analysis.audit.units`, run in the order of
:mod:`~fairsearch.analysis.audit.schedule`), beside the floor
(:mod:`~fairsearch.analysis.audit.floor`), the shuffled-q control
(:mod:`~fairsearch.analysis.audit.control`), the neighbour mix and the certified bound; a
continuous ``q`` gets kernel dependence and regression probes
(:mod:`~fairsearch.analysis.audit.dependence`). Every representation then gets the fresh probes
of the other labels on the audit-train / audit-test split
(:mod:`~fairsearch.analysis.audit.split_probes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fairsearch.analysis.audit.control import CONTROL, leak_free_rows, shuffled
from fairsearch.analysis.audit.dependence import continuous_rows, knn_mix
from fairsearch.analysis.audit.floor import floor_rows
from fairsearch.analysis.audit.metrics import codes_of
from fairsearch.analysis.audit.progress import AuditProgress
from fairsearch.analysis.audit.schedule import fit_units, fold_seed_rows, runs_of
from fairsearch.analysis.audit.split_probes import TransferSource, label_rows, transfer_probes
from fairsearch.analysis.audit.units import (
    LADDER_FOLDS,
    LADDER_REPEATS,
    Executor,
    Settings,
    Unit,
    UnitStore,
)
from fairsearch.probes.bound import bound_row
from fairsearch.probes.ladder import CrossFit, Engine, ladder_result, validate_inputs
from fairsearch.probes.registry import BASELINE_KIND, PROBE_KINDS

__all__ = ["COLUMNS", "QKind", "audit_representations", "audit_units", "q_kind_of"]

QKind = Literal["categorical", "continuous"]
COLUMNS = ["model", "target", "probe", "metric", "value", "ci_low", "ci_high", "chance", "floor",
           "selected"]  # fmt: skip


def q_kind_of(q: np.ndarray) -> QKind:
    """``continuous`` for a float ``q`` with more than 10 values, else ``categorical``."""
    return "continuous" if q.dtype.kind == "f" and len(np.unique(q)) > 10 else "categorical"


def _kinds(probes: Sequence[str]) -> tuple[str, ...]:
    """The kinds the ladder fits: the baseline, then ``probes``."""
    return tuple(dict.fromkeys((BASELINE_KIND, *probes)))


def audit_units(representations: int, probes: Sequence[str], q_kind: QKind = "categorical",
                repeats: int = LADDER_REPEATS) -> int:
    """How many progress units :func:`audit_representations` reports: per representation and
    for the shuffled-q control, one per kind x fold seed (a fold seed successive halving
    skips counts as done), then one per representation for the rest."""
    if q_kind != "categorical":
        return representations
    return (representations + 1) * len(_kinds(probes)) * repeats + representations


@dataclass(frozen=True)
class _LadderFits:
    """Every representation's ladder cross-fits: validated arrays, the codes ``0..k-1`` of
    ``q``, the kinds, each unit's fit and the kinds that got every fold seed."""

    arrays: dict[str, np.ndarray]
    codes: np.ndarray
    k: int
    kinds: tuple[str, ...]
    repeats: int
    fits: dict[Unit, CrossFit]
    refined: dict[str, tuple[str, ...]]

    def runs(self, model: str) -> list[dict[str, CrossFit]]:
        return runs_of(self.fits, model, self.kinds, self.repeats)


def _fit_ladders(representations: Mapping[str, np.ndarray], qc: np.ndarray, kinds: tuple[str, ...],
                 settings: Settings, executor: Executor | None, store: UnitStore | None,
                 progress: AuditProgress | None, halving: bool, n_boot: int) -> _LadderFits:
    """The units of every representation and of the shuffled-q control (:data:`CONTROL`)."""
    n = len(qc)
    arrays = {m: validate_inputs(np.asarray(X, dtype=np.float64).reshape(n, -1), qc,
                                 LADDER_FOLDS)[0] for m, X in representations.items()}
    first = next(iter(arrays.values()))
    _, codes, k = validate_inputs(first, qc, LADDER_FOLDS)
    everything = {CONTROL: shuffled(first, settings.seed), **arrays}
    fits, refined = fit_units(everything, codes, k, kinds, settings, executor, store, progress,
                              halving, n_boot)
    return _LadderFits(everything, codes, k, kinds, settings.repeats, fits, refined)


def _ladder_rows(model: str, X: np.ndarray, qc: np.ndarray, te: np.ndarray, ladders: _LadderFits,
                 floor: float, n_boot: int, seed: int, k_neighbors: int) -> list[dict[str, Any]]:
    """The rows of ``model`` on a categorical ``q``: the ladder (each kind, the worst case and
    MDL), its fold seeds, the neighbour mix and the certified bound (discrete outputs only)."""
    ladder = ladder_result(ladders.arrays[model], ladders.codes, ladders.k, ladders.runs(model),
                           folds=LADDER_FOLDS, n_boot=n_boot, seed=seed).to_frame()
    rows = ladder.assign(model=model, target="q", floor=floor).to_dict("records")
    rows += fold_seed_rows(model, ladders.kinds, ladders.refined[model], ladders.repeats)
    rows.append(knn_mix(X[te], qc[te], k=k_neighbors, n_boot=n_boot, seed=seed, model=model))
    if (bound := bound_row(model, X, qc, floor=floor)) is not None:
        rows.append(bound)
    return rows


def _check(representations: Mapping[str, np.ndarray], q: np.ndarray, q_kind: QKind | None
           ) -> QKind:
    n = len(q)
    if not representations:
        raise ValueError("representations must name at least one model, but got none")
    for name, X in representations.items():
        if len(X) != n:
            raise ValueError(f"representation {name!r} has {len(X)} rows but q has {n}")
    if q_kind is None:
        q_kind = q_kind_of(q)
    if q_kind not in ("categorical", "continuous"):
        raise ValueError(f"q_kind must be 'categorical' or 'continuous', but got {q_kind!r}")
    return q_kind


def audit_representations(
    representations: Mapping[str, np.ndarray],
    q: np.ndarray,
    *,
    y: np.ndarray | None = None,
    q_kind: QKind | None = None,
    probes: Sequence[str] = PROBE_KINDS,
    extras: Mapping[str, np.ndarray] | None = None,
    transfer_source: TransferSource | None = None,
    n_boot: int = 200,
    seed: int = 0,
    test_size: float = 0.5,
    k_neighbors: int = 10,
    repeats: int = LADDER_REPEATS,
    engine: Engine = "auto",
    halving: bool = True,
    progress: AuditProgress | None = None,
    executor: Executor | None = None,
    store: UnitStore | None = None,
) -> pd.DataFrame:
    """Audit each named representation of the same held-out rows; one tidy row per number.

    ``y``: control labels (classification) for a fresh control probe and its group metrics;
    ``extras``: unseen labels of the same rows; with ``transfer_source`` (original train
    embeddings + those labels), a logistic probe fitted there is scored on every representation.
    ``repeats``: the ladder's fold seeds; ``engine``: how its probes are fitted
    (:data:`fairsearch.probes.ladder.ENGINES`). ``progress`` is told each unit as it starts and
    finishes (:func:`audit_units` counts them). The representation x kind x fold seed units run
    on ``executor`` (default: one after another here); with ``store``, finished units are read
    from it and new ones written to it (resume without refitting). ``halving``: a kind far below
    its first fold seed's worst case, never selected there, gets no further fold seeds
    (:func:`~fairsearch.probes.ladder.refined_kinds`); each kind's ``fold_seeds`` row says how
    many it got.
    """
    q = np.asarray(q)
    n = len(q)
    categorical = _check(representations, q, q_kind) == "categorical"
    qc = codes_of(q)[0] if categorical else q
    tr, te = train_test_split(np.arange(n), test_size=test_size, random_state=seed,
                              stratify=qc if categorical else None)
    rows: list[dict[str, Any]] = []
    floor = np.nan
    if categorical:
        floors = [] if y is None else floor_rows(representations, qc, y, n_boot, seed, repeats)
        floor = floors[0]["value"] if floors else floor
        ladders = _fit_ladders(representations, qc, _kinds(probes),
                               Settings(LADDER_FOLDS, repeats, seed, engine), executor, store,
                               progress, halving, n_boot)
        rows += floors + leak_free_rows(ladders.arrays[CONTROL], ladders.codes, ladders.k,
                                        ladders.runs(CONTROL), n_boot, seed)
    transfer = transfer_probes(transfer_source, extras, seed)
    for model, X in representations.items():
        X = np.asarray(X, dtype=np.float64).reshape(n, -1)
        if progress is not None:
            progress.start(model, "intervals, MDL, control and other labels")
        if categorical:
            rows += _ladder_rows(model, X, qc, te, ladders, floor, n_boot, seed, k_neighbors)
        else:
            rows += continuous_rows(model, X, q.astype(np.float64), tr, te, n_boot, seed)
        rows += label_rows(model, X, tr, te, y=y, qc=qc if categorical else None, extras=extras,
                           transfer=transfer, n_boot=n_boot, seed=seed)
        if progress is not None:
            progress.finish()
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["selected"] = table["selected"].astype(object).where(table["selected"].notna(), "")
    return table
