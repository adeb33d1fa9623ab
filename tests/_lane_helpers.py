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


class _RowLog(nn.Module):
    """Identity that appends every training row it sees to ``<folder>/rows-<pid>.txt``."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def forward(self, x):  # noqa: ANN001, ANN201 - a torch module
        if self.training:
            with open(Path(self.folder) / f"rows-{os.getpid()}.txt", "a") as f:
                for row in x.detach().cpu().tolist():
                    f.write(" ".join(f"{v:.6f}" for v in row) + "\n")
        return x


def make_row_logging_net(input_dim: int, output_dim: int, folder: str,
                         driver_pid: int) -> nn.Module:  # fmt: skip
    """A small MLP whose first layer logs the rows each training process sees (not the driver's,
    which builds one model to check the spec)."""
    layers = [nn.Linear(input_dim, 16), nn.ReLU(), nn.Linear(16, output_dim)]
    if os.getpid() != driver_pid:
        layers.insert(0, _RowLog(folder))
    return nn.Sequential(*layers)


def add_offset(item: dict, ctx) -> dict:  # noqa: ANN001 - a LaneContext
    """Work for the lane-pool test: the item's ``x`` plus the lanes' data ``offset``."""
    return {"status": "completed", "value": item["x"] + ctx.data["offset"], "pid": os.getpid()}


def die_on_zero(item: dict, ctx) -> dict:  # noqa: ANN001 - a LaneContext
    """Work for the warm-lane fault tests: item ``x == 0`` ends its process (as the OOM killer
    would) while ``ctx.data["marker"]`` holds fewer lines than ``ctx.data["deaths"]``; every
    other item is :func:`add_offset`'s."""
    marker = Path(ctx.data["marker"])
    if item["x"] == 0:
        deaths = len(marker.read_text().splitlines()) if marker.exists() else 0
        if deaths < ctx.data["deaths"]:
            with open(marker, "a") as f:
                f.write(f"{os.getpid()}\n")
            os._exit(3)
    return {"status": "completed", "value": item["x"] + ctx.data["offset"], "pid": os.getpid()}
