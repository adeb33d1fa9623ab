"""Ray Tune's side of a lane pool: the stopper the driver sets and the callback that reports
lane starts, restarts and deaths. Imported only when a pool starts Tune lanes (``ray.tune``
costs about a second to import, which a pool of warm lanes does not pay)."""

from __future__ import annotations

import queue
import threading
from typing import Any

import ray.tune

__all__ = ["LaneEvents", "StopAll"]


class StopAll(ray.tune.Stopper):
    """A Tune ``Stopper`` the driver thread sets (checked at every step of Tune's controller).

    It and :class:`LaneEvents` hold live objects of this process, so they pickle empty (Tune
    writes its run config to ``tuner.pkl``; the live objects are the ones used)."""

    def __init__(self, events: list[threading.Event]) -> None:
        self.events = events  # the pool's list: a stop event added later counts too

    def __getstate__(self) -> dict[str, Any]:
        return {"events": []}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return any(e.is_set() for e in self.events)


class LaneEvents(ray.tune.Callback):
    """Lane starts, restarts and deaths, for the driver loop (runs in the Tune thread)."""

    def __init__(self, events: queue.Queue[tuple[str, int, str]]) -> None:
        self.events: queue.Queue[tuple[str, int, str]] | None = events

    def __getstate__(self) -> dict[str, Any]:
        return {"events": None}

    def _put(self, kind: str, trial: Any, reason: str = "") -> None:
        if self.events is not None:
            self.events.put((kind, int(trial.config["lane"]), reason))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._put("start", trial)  # Ray placed the lane's trial: it is starting, not pending

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._put("recover", trial, _error_text(trial))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._put("error", trial, _error_text(trial))


def _error_text(trial: Any) -> str:
    try:
        error = trial.get_error()
    except Exception:  # noqa: BLE001 - only for a message
        error = None
    text = str(error or "unknown error").strip().splitlines()
    return (text[-1] if text else "unknown error")[-500:]
