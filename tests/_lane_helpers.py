"""Model factories for the lane tests (imported by Ray workers through PYTHONPATH)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn


def make_crashing_net(input_dim: int, output_dim: int, marker: str,
                      driver_pid: int) -> nn.Module:  # fmt: skip
    """A small MLP; the first time it is built outside the driver, its process dies (as a
    worker killed by the OOM killer would): ``os._exit`` skips every handler."""
    if os.getpid() != driver_pid and not Path(marker).exists():
        Path(marker).write_text("crashed\n")
        os._exit(3)
    return nn.Sequential(nn.Linear(input_dim, 16), nn.ReLU(), nn.Linear(16, output_dim))
