"""Work, model factories and actors for the stall-message tests (imported by Ray workers
through PYTHONPATH)."""

from __future__ import annotations

import os
import time
from typing import Any

import ray
from torch import nn


def sleepy_work(item: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A lane's work function: sleeps ``item["sleep_s"]`` seconds, then succeeds."""
    time.sleep(float(item.get("sleep_s", 0.0)))
    return {"status": "completed", "slept_s": float(item.get("sleep_s", 0.0))}


def make_slow_net(input_dim: int, output_dim: int, sleep_s: float,
                  driver_pid: int) -> nn.Module:  # fmt: skip
    """A small MLP whose building takes ``sleep_s`` seconds in a lane (not in the driver, which
    builds one model to check the spec)."""
    if os.getpid() != driver_pid:
        time.sleep(sleep_s)
    return nn.Sequential(nn.Linear(input_dim, 8), nn.ReLU(), nn.Linear(8, output_dim))


@ray.remote(num_cpus=1)
class ResourceHolder:
    """Holds the resources it was created with (``.options(num_cpus=...)``) while it lives."""

    def ready(self) -> bool:
        return True
