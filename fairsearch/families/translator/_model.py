"""The translator network: an auto-encoder over embeddings with a control head.

``d -> hidden... -> bottleneck -> ...hidden -> d`` (the decoder mirrors the encoder), a linear
control head on the *translated* embedding, and the small MLPs used as adversary or protected head.
Inputs are standardised with the training set's mean and scale, kept as buffers so that a saved
``state_dict`` carries them.

Two options change the map itself: ``q_dim > 0`` (group-aware, ``q_input``) feeds the one-hot
protected attribute to the encoder next to the embedding; ``quantize > 0`` puts a codebook of that
many cells between encoder and decoder (:mod:`._quantize`), so that the output is one of
``quantize`` decoded codes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fairsearch.families.translator._quantize import Codebook
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
        autoencoder: tuple[nn.Module, nn.Module] | None = None, q_dim: int = 0,
        quantize: int = 0,
    ) -> None:
        """``autoencoder``: a user's ``(encoder, decoder)`` pair (``d -> k -> d``) used in place
        of the MLPs that ``bottleneck`` describes; ``q_dim``: width of the one-hot ``q`` the
        encoder also reads (0: none); ``quantize``: cells of the codebook (0: none)."""
        super().__init__()
        self.control_head = nn.Linear(d, n_control)
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("scale", torch.ones(d))
        self.q_dim = int(q_dim)
        self.codebook = Codebook(int(quantize), bottleneck[-1]) if quantize else None
        if autoencoder is not None:
            if q_dim or quantize:
                raise ValueError("q_input and quantize need the built-in encoder (`bottleneck`), "
                                 "but got a model.factory autoencoder")  # fmt: skip
            self.encoder, self.decoder = autoencoder
            return
        enc: list[nn.Module] = []
        prev = d + self.q_dim
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

    def encode(self, z: Tensor, q_onehot: Tensor | None = None) -> Tensor:
        """Standardised input (and one-hot ``q`` when the encoder reads it) -> bottleneck."""
        if self.q_dim:
            if q_onehot is None:
                raise ValueError("this translator reads q (q_input=true): pass q, but got None")
            z = torch.cat([z, q_onehot.to(z.dtype)], 1)
        return self.encoder(z)

    def translate_parts(self, z: Tensor, q_onehot: Tensor | None = None
                        ) -> tuple[Tensor, Tensor | None, Tensor]:  # fmt: skip
        """Training path: ``(z_fair, cell assignment or None, codebook loss)``."""
        h = self.encode(z, q_onehot)
        if self.codebook is None:
            return self.decoder(h), None, h.new_zeros(())
        hq, assign, vq = self.codebook(h)
        return self.decoder(hq), assign, vq

    @property
    def linear_output(self) -> bool:
        """Whether the output is a linear map of the decoder's last hidden layer (no codebook, a
        decoder ending in a ``Linear``): :meth:`fair_parts` then hands that layer's input on."""
        dec = self.decoder
        return (self.codebook is None and isinstance(dec, nn.Sequential) and len(dec) > 0
                and isinstance(dec[-1], nn.Linear))  # fmt: skip

    def fair_parts(self, z: Tensor, q_onehot: Tensor | None, fairness: str
                   ) -> tuple[Tensor, Tensor | None, Tensor | None]:  # fmt: skip
        """What a head-free fairness term on many rows reads: ``(z_fair, cells or None, None)``;
        for ``linear_guard`` with :attr:`linear_output`, ``(last layer's input, None, its
        [r, d] weight)`` (``linear_guard(weight=...)``); with no term of its own a quantized net
        computes only the cells (the encoder's output stands in for the unread translation)."""
        if fairness == "linear_guard" and self.linear_output:
            return self.decoder[:-1](self.encode(z, q_onehot)), None, self.decoder[-1].weight.T
        if fairness == "none" and self.codebook is not None:
            h = self.encode(z, q_onehot)
            return h, self.codebook(h)[1], None
        z_fair, assign, _ = self.translate_parts(z, q_onehot)
        return z_fair, assign, None

    def translate_std(self, z: Tensor, q_onehot: Tensor | None = None) -> Tensor:
        """Standardised input -> standardised translated embedding. In eval mode a quantized
        net returns exactly the decoded code of each row's cell (equal rows for equal cells)."""
        if self.codebook is not None and not self.training:
            decoded = self.decoder(self.codebook.codes)
            return decoded[self.codebook.cells(self.encode(z, q_onehot))]
        return self.translate_parts(z, q_onehot)[0]

    def forward(self, e: Tensor, q_onehot: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``(z, z_fair, control_logits)``: standardised input, its translation, logits."""
        z = self.standardise(e)
        z_fair = self.translate_std(z, q_onehot)
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
