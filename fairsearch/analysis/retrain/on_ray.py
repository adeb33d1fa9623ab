"""The retrain's units on Ray lanes: the Ray part of the retrain stage, kept apart from it.

:class:`RayLanes` starts (or joins) Ray (:func:`fairsearch.executor.ray_start.init_ray`), runs the
units on the same lanes and ``ScalingConfig`` as the search
(:func:`fairsearch.executor.lanes.run_lanes`), and turns SIGINT/SIGTERM into a graceful stop: the
units in flight finish, the others are not started, and it raises
:class:`~fairsearch.io.signals.Interrupted`.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from typing import Any

from fairsearch.executor.contract import Work
from fairsearch.io import signals

__all__ = ["RayLanes"]


@dataclass(frozen=True)
class RayLanes:
    """``lanes`` lanes of ``scaling`` (a :class:`~fairsearch.executor.scaling.LaneScaling`) on the
    Ray at ``address`` (None: this machine's, started if need be); Ray Train's files go to
    ``storage``."""

    lanes: int
    scaling: Any
    storage: str
    address: str | None = None

    @classmethod
    def for_spec(cls, spec: Any, units: int, storage: str, address: str | None = None) -> RayLanes:
        """As many lanes as the spec's ``search.max_concurrent`` (at most one per unit), each
        scaled like one of the search's trials (``trial``)."""
        from fairsearch.executor.scaling import LaneScaling

        return cls(max(1, min(spec.search.max_concurrent, units)),
                   LaneScaling.from_trial(spec.trial), storage, address)

    def __call__(self, units: Any, work: Work, data: Any, *, stop: threading.Event) -> None:
        from fairsearch.executor.lanes import run_lanes
        from fairsearch.executor.ray_start import init_ray, stop_on_signals

        init_ray(self.address)
        signals.install()  # ray.init put its own SIGTERM handler (a stack dump) in place
        received: list[int] = []
        with stop_on_signals(stop, received):
            run_lanes(units, work, data, lanes=self.lanes, scaling=self.scaling,
                      storage=self.storage, stop=stop, name="retrain")  # fmt: skip
        if stop.is_set():
            raise signals.Interrupted(received[0] if received else signal.SIGINT)
