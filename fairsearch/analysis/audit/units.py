"""The audit's independent units, who runs them, and where finished ones are kept.

A **unit** is one representation x one probe kind x one fold seed: that kind's cross-fit
(:func:`fairsearch.probes.ladder.fit_kinds`), the costly part of an audit. Units are
independent, so an executor may run them in any order and at once:

* :class:`SerialExecutor` runs them one after another in this process (the default);
* :class:`fairsearch.analysis.audit.on_ray.RayExecutor` runs them as Ray tasks (the only Ray part
  of the audit, a separate module).

Both yield each unit's fits as it finishes. A :class:`UnitStore` (``RUN_DIR/audit_units/``)
writes each finished unit at once, keyed by a fingerprint of its inputs (the representation's
rows, ``q``, the probe kind and its recipe, the fold seed, folds and engine), so a killed audit
resumes without refitting a finished unit, and a unit whose inputs changed is never reused.
No Ray here.
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
from fairsearch.probes.ladder import CrossFit, Engine, fit_kinds, make_probe

__all__ = ["LADDER_FOLDS", "LADDER_REPEATS", "Executor", "SerialExecutor", "Settings", "Unit",
           "UnitStore", "fit_unit"]

#: Cross-fitting of the ladder: folds over all held-out rows, repeats with new fold seeds.
LADDER_FOLDS, LADDER_REPEATS = 5, 2


@dataclass(frozen=True)
class Settings:
    """What every unit of one audit shares."""

    folds: int
    repeats: int
    seed: int
    engine: Engine


@dataclass(frozen=True)
class Unit:
    """One representation x probe kind x fold seed (``repeat``: fold seed ``settings.seed + r``)."""

    representation: str
    kind: str
    repeat: int = 0


def fit_unit(Z: np.ndarray, codes: np.ndarray, k: int, unit: Unit, settings: Settings
             ) -> CrossFit:
    """The cross-fit of one unit (validated ``Z`` and codes ``0..k-1``): the very fit of repeat
    ``unit.repeat`` in :func:`~fairsearch.probes.ladder.fit_kinds` over all repeats."""
    run = fit_kinds(Z, codes, k, [unit.kind], settings.folds, 1,
                       settings.seed + unit.repeat, engine=settings.engine)[0]
    return run[unit.kind]


class Executor(Protocol):
    def run(self, arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int,
            units: Sequence[Unit], settings: Settings) -> Iterator[tuple[Unit, CrossFit]]:
        """Fit every unit (``arrays[unit.representation]``); yield each as it finishes."""
        ...


class SerialExecutor:
    """Every unit in this process, in order."""

    def run(self, arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int,
            units: Sequence[Unit], settings: Settings) -> Iterator[tuple[Unit, CrossFit]]:
        for unit in units:
            yield unit, fit_unit(arrays[unit.representation], codes, k, unit, settings)


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
        # the kind's recipe too: a unit fitted by another version of a probe is not reused
        recipe = make_probe(unit.kind, settings.seed + unit.repeat).get_params(deep=True)
        # ("family": the key units were stored under before, so that they are still found)
        meta = json.dumps({"family": unit.kind, "repeat": unit.repeat, "shape": list(Z.shape),
                           "recipe": sorted((k, repr(v)) for k, v in recipe.items()),
                           **asdict(settings)}, sort_keys=True)
        return _digest(np.ascontiguousarray(Z).tobytes(), np.ascontiguousarray(codes).tobytes(),
                       meta.encode())[:32]

    def _path(self, Z: np.ndarray, codes: np.ndarray, unit: Unit, settings: Settings) -> Path:
        name = f"{unit.kind}-r{unit.repeat}-{self._key(Z, codes, unit, settings)}.npz"
        return self.folder / name

    def get(self, Z: np.ndarray, codes: np.ndarray, unit: Unit, settings: Settings
            ) -> CrossFit | None:
        """The unit's fit when it was stored for these very inputs, else None."""
        path = self._path(Z, codes, unit, settings)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                proba = f["proba"] if bool(f["has_proba"]) else None
                return CrossFit(unit.kind, f["predictions"], proba, f["fold"],
                                f["inner_scores"], float(f["score"]))
        except (OSError, ValueError, KeyError, EOFError):
            return None  # damaged: fitted again

    def put(self, Z: np.ndarray, codes: np.ndarray, unit: Unit, settings: Settings,
            fit: CrossFit) -> Path:
        path = self._path(Z, codes, unit, settings)
        arrays = {
            "predictions": fit.predictions,
            "fold": fit.fold,
            "inner_scores": fit.inner_scores,
            "score": np.array(fit.score),
            "has_proba": np.array(fit.proba is not None),
            "proba": fit.proba if fit.proba is not None else np.zeros(0),
        }
        self.folder.mkdir(parents=True, exist_ok=True)

        def save(p: Path) -> None:
            with open(p, "wb") as fh:
                np.savez(fh, **arrays)

        write_atomic(path, save)
        return path
