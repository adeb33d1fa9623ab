"""A user's own model: a small residual MLP for tabular data (Gorishniy et al. 2021's ResNet).

fairsearch never sees this class. The spec names :func:`make_resnet` by import path
(``model: {family: wrapper, factory: "examples.tabular_resnet:make_resnet"}``); searched
parameters whose names the factory takes (``width``, ``blocks``, ``dropout``) are passed to it,
and the wrapper trains the returned module unchanged with ``task_loss + mu * CKA(ŷ, q)``. Run it
from the repository root (``fairsearch run search_spaces/adult_resnet.yaml``): the current folder
is importable there; on a cluster ship the folder with ``--working-dir .``.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """``x + Dropout(Linear(ReLU(Linear(BatchNorm(x)))))``."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm1d(width), nn.Linear(width, 2 * width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(2 * width, width), nn.Dropout(dropout),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TabularResNet(nn.Module):
    def __init__(self, input_dim: int, output_dim: int, width: int, blocks: int,
                 dropout: float) -> None:  # fmt: skip
        super().__init__()
        self.stem = nn.Linear(input_dim, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, dropout) for _ in range(blocks)))
        self.head = nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def make_resnet(input_dim: int, output_dim: int, *, width: int = 64, blocks: int = 2,
                dropout: float = 0.1) -> TabularResNet:  # fmt: skip
    """The factory a spec names: fairsearch passes the data's dimensions and searched values."""
    return TabularResNet(input_dim, output_dim, int(width), int(blocks), float(dropout))
