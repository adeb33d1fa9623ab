"""The translator network: an auto-encoder over embeddings with a control head.

``d -> hidden... -> bottleneck -> ...hidden -> d`` (the decoder mirrors the encoder), a linear
control head on the *translated* embedding, and the small MLPs used as adversary or protected head.
Inputs are standardised with the training set's mean and scale, kept as buffers so that a saved
``state_dict`` carries them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fairsearch.nets import activation_module, build_mlp, parse_layers


def parse_bottleneck(value: str | int | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """``"256-60"`` / ``60`` / ``[256, 60]`` -> ``(256, 60)``; at least one layer."""
    sizes = parse_layers(value, "bottleneck")
    if not sizes:
        raise ValueError(f"bottleneck must name at least one layer size, but got {value!r}")
    return sizes


def mlp(d_in: int, d_out: int, *, depth: int, width: int, activation: str = "relu") -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units (``depth = 0``: a linear map)."""
    return build_mlp(d_in, d_out, (width,) * depth, activation)


class TranslatorNet(nn.Module):
    """Embedding ``e`` (original units) -> translated ``e_fair`` (standardised units) + control logits."""

    def __init__(
        self, d: int, n_control: int, *, bottleneck: tuple[int, ...], activation: str = "relu",
        autoencoder: tuple[nn.Module, nn.Module] | None = None,
    ) -> None:
        """``autoencoder``: a user's ``(encoder, decoder)`` pair (``d -> k -> d``) used in place
        of the MLPs that ``bottleneck`` describes."""
        super().__init__()
        self.control_head = nn.Linear(d, n_control)
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("scale", torch.ones(d))
        if autoencoder is not None:
            self.encoder, self.decoder = autoencoder
            return
        enc: list[nn.Module] = []
        prev = d
        for h in bottleneck:
            enc += [nn.Linear(prev, h), activation_module(activation)]
            prev = h
        dec: list[nn.Module] = []
        for h in reversed(bottleneck[:-1]):
            dec += [nn.Linear(prev, h), activation_module(activation)]
            prev = h
        dec.append(nn.Linear(prev, d))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def standardise(self, e: Tensor) -> Tensor:
        return (e - self.mean) / self.scale

    def translate_std(self, z: Tensor) -> Tensor:
        """Standardised input -> standardised translated embedding."""
        return self.decoder(self.encoder(z))

    def forward(self, e: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``(z, z_fair, control_logits)``: standardised input, its translation, logits."""
        z = self.standardise(e)
        z_fair = self.translate_std(z)
        return z, z_fair, self.control_head(z_fair)

    def to_original_units(self, z_fair: Tensor) -> Tensor:
        return z_fair * self.scale + self.mean


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, lam: float) -> Tensor:  # type: ignore[override]
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return -ctx.lam * grad, None


def grad_reverse(x: Tensor, lam: float = 1.0) -> Tensor:
    """Identity forward; multiplies the gradient by ``-lam`` on the way back (Ganin & Lempitsky)."""
    return _GradReverse.apply(x, lam)
