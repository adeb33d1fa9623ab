"""A user's own auto-encoder for the embedding translator: encoder and decoder with a skip path.

The spec names :func:`make_autoencoder` (``model: {family: translator, factory:
"examples.residual_autoencoder:make_autoencoder"}``); the translator family calls it with the
embedding size as ``input_dim`` and the searched ``width`` / ``code`` sizes, and trains the
returned ``(encoder, decoder)`` pair in place of its built-in MLPs, with its own control head,
fairness loss and reconstruction term.
"""

from __future__ import annotations

from torch import nn


def make_autoencoder(input_dim: int, *, width: int = 128, code: int = 32,
                     dropout: float = 0.0) -> tuple[nn.Module, nn.Module]:  # fmt: skip
    """``input_dim -> width -> code`` and back, GELU and LayerNorm in between."""
    encoder = nn.Sequential(
        nn.Linear(input_dim, int(width)), nn.LayerNorm(int(width)), nn.GELU(),
        nn.Dropout(float(dropout)), nn.Linear(int(width), int(code)),
    )  # fmt: skip
    decoder = nn.Sequential(
        nn.GELU(), nn.Linear(int(code), int(width)), nn.GELU(), nn.Linear(int(width), input_dim),
    )  # fmt: skip
    return encoder, decoder
