"""How the retrain's units run: the small interface every runner meets, and the in-process one.

A runner is called with the units (a :class:`~fairsearch.executor.contract.Source`, the plan's
``ItemList``), the work function (:func:`~fairsearch.analysis.retrain.units.unit_work`), the data
and a ``stop`` event; it trains units until the source is finished or ``stop`` is set, telling
each result to the source. :class:`InProcess` is a plain loop in this process, without Ray;
:class:`~fairsearch.analysis.retrain.on_ray.RayLanes` (the default) runs them on Ray lanes. A
runner that stops on a signal raises :class:`~fairsearch.io.signals.Interrupted`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from fairsearch.executor.contract import Work

__all__ = ["InProcess", "UnitRunner"]

class UnitRunner(Protocol):
    """Runs the retrain's units (see the module's docstring)."""

    def __call__(self, units: Any, work: Work, data: Any, *, stop: threading.Event) -> None:
        """Train ``units`` with ``work`` until finished or ``stop`` is set."""


@dataclass(frozen=True)
class InProcess:
    """The units one after another in this process (``device``: default CUDA when available;
    ``threads``: torch's thread count meanwhile, None: as it is)."""

    device: str | None = None
    threads: int | None = None

    def __call__(self, units: Any, work: Work, data: Any, *, stop: threading.Event) -> None:
        import torch

        from fairsearch.executor.inprocess import run_inprocess

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        run_inprocess(units, work, data, stop=stop, device=device, threads=self.threads)
