"""What a lane holds from Ray and what the driver saw: :class:`LaneScaling` (the spec's ``trial``
section as a lane's Train scaling), :class:`LaneStats` (one driver loop's timings) and
:func:`stall_message` (why nothing finished for a while)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LaneScaling", "LaneStats", "stall_message"]


@dataclass(frozen=True)
class LaneScaling:
    """The spec's ``trial`` section as one lane's Ray Train ``ScalingConfig``."""

    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_failures: int = 1

    @classmethod
    def from_trial(cls, trial: Any) -> LaneScaling:
        return cls(workers=int(trial.workers), cpus_per_worker=float(trial.cpus_per_worker),
                   gpus_per_worker=float(trial.gpus_per_worker),
                   max_failures=int(trial.max_failures))  # fmt: skip

    @property
    def local(self) -> bool:
        """One CPU worker: Train's local mode, the item trains in the Tune trial's process."""
        return self.workers == 1 and self.gpus_per_worker == 0

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus_per_worker))

    #: CPU of a worker-group lane's own Tune trial (it only runs Train's controller). Ray
    #: places no bundle without a resource, so it takes this much out of the workers' share:
    #: a lane holds exactly ``workers x cpus_per_worker`` (2 workers of 1 CPU fit 2 CPUs).
    LANE_CPU = 0.01

    def worker_resources(self) -> dict[str, float]:
        """``resources_per_worker`` of a worker-group lane (see :attr:`LANE_CPU`)."""
        share = math.ceil(self.LANE_CPU / self.workers * 1e4) / 1e4  # Ray counts 1e-4 units
        out = {"CPU": max(self.cpus_per_worker - share, share)}
        if self.gpus_per_worker:
            out["GPU"] = self.gpus_per_worker
        return out

    def needs(self) -> dict[str, float]:
        """What one lane holds from Ray while it runs (for the stall message)."""
        if self.local:
            return {"CPU": self.cpus_per_worker}
        worker = self.worker_resources()
        out = {"CPU": self.LANE_CPU + self.workers * worker["CPU"]}
        if self.gpus_per_worker:
            out["GPU"] = self.workers * self.gpus_per_worker
        return out


@dataclass
class LaneStats:
    """What one driver loop saw (timings in seconds)."""

    started_at: float = field(default_factory=time.perf_counter)
    started_epoch: float = field(default_factory=time.time)
    first_pull_s: float | None = None
    wall_s: float = 0.0
    told: int = 0
    stopped: bool = False
    lane_errors: list[str] = field(default_factory=list)
    #: lanes that ran on warm lanes of ``fairsearch up`` (the rest were Tune trials)
    warm: int = 0
    lanes: list[dict[str, Any]] = field(default_factory=list)
    #: per lane, seconds after ``run_lanes`` began: ``trainable`` (Tune placed the lane and its
    #: function started), ``loop`` (Train's loop started), ``ready`` (imports and data done),
    #: ``pulled`` (the dispatcher got its first pull)
    start_marks: dict[int, dict[str, float]] = field(default_factory=dict)


def stall_message(dispatcher: Any, scaling: LaneScaling, lanes: int, stats: LaneStats,
                   idle_s: float, granted: set[int] | None = None) -> str:  # fmt: skip
    """Why nothing finished for ``idle_s`` seconds: lanes training, lanes still starting (Ray
    placed their trial; a worker-group lane may still wait for its workers), lanes waiting for
    resources no node has free, lane restarts and the last lane error."""
    import ray

    state = ray.get(dispatcher.state.remote())
    pulled = set(state["started"])
    starting = set(granted or ()) - pulled
    pending = lanes - len(pulled) - len(starting)
    available = ray.available_resources()
    needs = scaling.needs()
    parts = [f"search: no configuration finished for {idle_s:.0f}s; "
             f"{len(pulled)}/{lanes} lanes started, {len(state['in_flight'])} training"]
    if starting:
        parts.append(f", {len(starting)} starting")
    if pending > 0 or (starting and not scaling.local):
        need = ", ".join(f"{k} {v:g}" for k, v in needs.items())
        have = ", ".join(f"{k} {available.get(k, 0.0):g}" for k in needs)
        parts.append(f"; a lane needs {need} and Ray has {have} free")
        short = any(available.get(k, 0.0) + 1e-9 < v for k, v in needs.items())
        if pending > 0 and short:
            parts.append(f" ({pending} lane{'s' * (pending > 1)} waiting for resources: add "
                         f"nodes or lower trial.workers/cpus/gpus)")  # fmt: skip
    if state["restarts"] or stats.lane_errors:
        last = stats.lane_errors[-1] if stats.lane_errors else "no message"
        parts.append(f"; {state['restarts']} lane restarts, last: {last}")
    return "".join(parts)

