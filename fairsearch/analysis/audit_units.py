"""The audit's independent units, who runs them, and where finished ones are kept.

A **unit** is one representation x one probe family, all fold seeds: the ladder's cross-fits
(:func:`fairsearch.measures.ladder.fit_families`), the costly part of an audit. Units are
independent, so an executor may run them in any order and at once:

* :class:`SerialExecutor` runs them one after another in this process (the default);
* :class:`fairsearch.analysis.audit_ray.RayExecutor` runs them as Ray tasks (the only Ray part
  of the audit, a separate module).

Both yield each unit's fits as it finishes. A :class:`UnitStore` (``RUN_DIR/audit_units/``)
writes each finished unit at once, keyed by a fingerprint of its inputs (the representation's
rows, ``q``, the family, folds, fold seeds and engine), so a killed audit resumes without
refitting a finished unit, and a unit whose inputs changed is never reused. No Ray here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from fairsearch.io.atomic import write_atomic
from fairsearch.measures.ladder import CrossFit, Engine, fit_families

__all__ = ["Executor", "SerialExecutor", "Settings", "Unit", "UnitStore", "fit_unit"]


@dataclass(frozen=True)
class Settings:
    """What every unit of one audit shares."""

    folds: int
    repeats: int
    seed: int
    engine: Engine


@dataclass(frozen=True)
class Unit:
    representation: str
    family: str


def fit_unit(Z: np.ndarray, codes: np.ndarray, k: int, family: str, settings: Settings
             ) -> list[CrossFit]:
    """The cross-fits of one unit, one per fold seed (validated ``Z`` and codes ``0..k-1``)."""
    runs = fit_families(Z, codes, k, [family], settings.folds, settings.repeats, settings.seed,
                        engine=settings.engine)
    return [run[family] for run in runs]


class Executor(Protocol):
    def run(self, arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int,
            units: Sequence[Unit], settings: Settings
            ) -> Iterator[tuple[Unit, list[CrossFit]]]:
        """Fit every unit (``arrays[unit.representation]``); yield each as it finishes."""
        ...


class SerialExecutor:
    """Every unit in this process, in order."""

    def run(self, arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int,
            units: Sequence[Unit], settings: Settings
            ) -> Iterator[tuple[Unit, list[CrossFit]]]:
        for unit in units:
            yield unit, fit_unit(arrays[unit.representation], codes, k, unit.family, settings)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


class UnitStore:
    """Finished units as ``.npz`` files in ``folder``, one per unit and input fingerprint."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _key(self, Z: np.ndarray, codes: np.ndarray, unit: Unit, settings: Settings) -> str:
        meta = json.dumps({"family": unit.family, "shape": list(Z.shape), **asdict(settings)},
                          sort_keys=True)
        return _digest(np.ascontiguousarray(Z).tobytes(), np.ascontiguousarray(codes).tobytes(),
                       meta.encode())[:32]

    def _path(self, Z: np.ndarray, codes: np.ndarray, unit: Unit, settings: Settings) -> Path:
        return self.folder / f"{unit.family}-{self._key(Z, codes, unit, settings)}.npz"

    def get(self, Z: np.ndarray, codes: np.ndarray, unit: Unit, settings: Settings
            ) -> list[CrossFit] | None:
        """The unit's fits when they were stored for these very inputs, else None."""
        path = self._path(Z, codes, unit, settings)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                has_proba = bool(f["has_proba"])
                return [CrossFit(unit.family, f["predictions"][r],
                                 f["proba"][r] if has_proba else None, f["fold"][r],
                                 f["inner_scores"][r], float(f["score"][r]))
                        for r in range(f["predictions"].shape[0])]
        except (OSError, ValueError, KeyError, EOFError):
            return None  # damaged: fitted again

    def put(self, Z: np.ndarray, codes: np.ndarray, unit: Unit, settings: Settings,
            fits: Sequence[CrossFit]) -> Path:
        path = self._path(Z, codes, unit, settings)
        has_proba = all(f.proba is not None for f in fits)
        arrays = {
            "predictions": np.stack([f.predictions for f in fits]),
            "fold": np.stack([f.fold for f in fits]),
            "inner_scores": np.stack([f.inner_scores for f in fits]),
            "score": np.array([f.score for f in fits]),
            "has_proba": np.array(has_proba),
            "proba": (np.stack([f.proba for f in fits if f.proba is not None]) if has_proba
                      else np.zeros(0)),
        }
        self.folder.mkdir(parents=True, exist_ok=True)

        def save(p: Path) -> None:
            with open(p, "wb") as fh:
                np.savez(fh, **arrays)

        write_atomic(path, save)
        return path
