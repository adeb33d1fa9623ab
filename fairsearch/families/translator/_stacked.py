"""``S`` translator networks of one shape as one batched network.

A :class:`StackedTranslatorNet` is built from ``S`` ordinary :class:`TranslatorNet` members (each
built, and so initialised, exactly as a lone ``Translator.fit`` of its seed builds it): encoder
and decoder become stacked MLPs (:class:`~fairsearch.population.StackedMLP`), the control head a
stacked linear layer and a quantized member's codebook one ``[S, K, k]`` tensor. Every method
takes and returns ``[S, rows, ...]`` tensors and follows its :class:`TranslatorNet` counterpart
member by member; :meth:`write_into` copies each member's trained weights back into its own
network. Members share the standardisation (the same training rows). No Ray here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fairsearch.families.translator._model import TranslatorNet
from fairsearch.families.translator._quantize import COMMITMENT
from fairsearch.population import StackedLinear, StackedMLP, stack_mlps
from fairsearch.population.layers import is_plain_mlp

__all__ = ["StackedTranslatorNet", "stackable"]


def stackable(net: TranslatorNet) -> bool:
    """Whether ``net`` has the built-in encoder and decoder (plain MLPs) that stack."""
    return is_plain_mlp(net.encoder) and is_plain_mlp(net.decoder)


class StackedTranslatorNet(nn.Module):
    """The members' networks, each its own slice of every weight."""

    def __init__(self, nets: Sequence[TranslatorNet]) -> None:
        super().__init__()
        if not nets or not all(stackable(n) for n in nets):
            raise ValueError("a stacked translator needs built-in (bottleneck) networks, but got "
                             "none or a model.factory autoencoder")  # fmt: skip
        first = nets[0]
        if any(not (torch.equal(n.mean, first.mean) and torch.equal(n.scale, first.scale))
               for n in nets):  # fmt: skip
            raise ValueError("stacked translator members must share their standardisation")
        self.size, self.q_dim = len(nets), first.q_dim
        self.register_buffer("mean", first.mean.detach().clone())
        self.register_buffer("scale", first.scale.detach().clone())
        self.encoder: StackedMLP = stack_mlps([n.encoder for n in nets])  # type: ignore[arg-type]
        self.decoder: StackedMLP = stack_mlps([n.decoder for n in nets])  # type: ignore[arg-type]
        self.control_head = StackedLinear([n.control_head for n in nets])
        self.codes: nn.Parameter | None = None
        if first.codebook is not None:
            self.codes = nn.Parameter(torch.stack([n.codebook.codes.detach()  # type: ignore[union-attr]
                                                   for n in nets]).contiguous())  # fmt: skip

    def standardise(self, e: Tensor) -> Tensor:
        return (e - self.mean) / self.scale

    def encode(self, z: Tensor, q_onehot: Tensor | None = None) -> Tensor:
        if self.q_dim:
            if q_onehot is None:
                raise ValueError("this translator reads q (q_input=true): pass q, but got None")
            z = torch.cat([z, q_onehot.to(z.dtype)], -1)
        return self.encoder(z)

    def distances(self, h: Tensor) -> Tensor:
        """Squared distances ``[S, rows, K]`` of every member's ``h`` to its own codes."""
        c = self.codes
        assert c is not None
        return (h.pow(2).sum(-1, keepdim=True) + c.pow(2).sum(-1)[:, None, :]
                - 2.0 * torch.bmm(h, c.transpose(1, 2))).clamp_min(0)  # fmt: skip

    def quantize(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`Codebook.forward` of every member: ``(h_q, assign, vq [S])``."""
        c = self.codes
        assert c is not None
        d2 = self.distances(h)
        idx = d2.argmin(-1)
        hard = F.one_hot(idx, c.shape[1]).to(h.dtype)
        tau = d2.detach().min(-1).values.mean(-1).clamp_min(1e-6)[:, None, None]
        soft = torch.softmax(-d2 / tau, dim=-1)
        hq = torch.gather(c, 1, idx[..., None].expand(-1, -1, c.shape[2]))
        vq = ((hq - h.detach()).pow(2).mean((1, 2))
              + COMMITMENT * (h - hq.detach()).pow(2).mean((1, 2)))  # fmt: skip
        return h + (hq - h).detach(), hard + soft - soft.detach(), vq

    def translate_parts(self, z: Tensor, q_onehot: Tensor | None = None
                        ) -> tuple[Tensor, Tensor | None, Tensor]:  # fmt: skip
        """Training path: ``(z_fair, cell assignment or None, codebook loss [S])``."""
        h = self.encode(z, q_onehot)
        if self.codes is None:
            return self.decoder(h), None, h.new_zeros(self.size)
        hq, assign, vq = self.quantize(h)
        return self.decoder(hq), assign, vq

    @property
    def linear_output(self) -> bool:
        """:attr:`TranslatorNet.linear_output` (the decoder's last layer is always linear)."""
        return self.codes is None

    def fair_parts(self, z: Tensor, q_onehot: Tensor | None, fairness: str
                   ) -> tuple[Tensor, Tensor | None, Tensor | None]:  # fmt: skip
        """:meth:`TranslatorNet.fair_parts` of every member (the weight ``[S, r, d]``)."""
        layers = self.decoder.layers
        if fairness == "linear_guard" and self.linear_output:
            return layers[:-1](self.encode(z, q_onehot)), None, layers[-1].weight
        if fairness == "none" and self.codes is not None:
            h = self.encode(z, q_onehot)
            return h, self.quantize(h)[1], None
        z_fair, assign, _ = self.translate_parts(z, q_onehot)
        return z_fair, assign, None

    def translate_std(self, z: Tensor, q_onehot: Tensor | None = None) -> Tensor:
        """:meth:`TranslatorNet.translate_std`: in eval mode a quantized member returns exactly
        the decoded code of each row's cell."""
        if self.codes is not None and not self.training:
            decoded = self.decoder(self.codes)  # [S, K, d]
            cells = self.distances(self.encode(z, q_onehot)).argmin(-1)
            return torch.gather(decoded, 1, cells[..., None].expand(-1, -1, decoded.shape[2]))
        return self.translate_parts(z, q_onehot)[0]

    @torch.no_grad()
    def keep(self, slots: Tensor) -> None:
        """Keep only the members at ``slots`` (in that order); the others leave the batch."""
        self.encoder.keep(slots)
        self.decoder.keep(slots)
        self.control_head.keep(slots)
        if self.codes is not None:
            self.codes.data = self.codes.data.index_select(0, slots.to(self.codes.device)).contiguous()
            self.codes.grad = None
        self.size = len(slots)

    @torch.no_grad()
    def write_into(self, s: int, net: TranslatorNet) -> TranslatorNet:
        """Member ``s``'s weights copied into ``net`` (a network of the same shape)."""
        net.encoder = self.encoder.member(s).to(self.mean.device)
        net.decoder = self.decoder.member(s).to(self.mean.device)
        net.control_head = self.control_head.member(s).to(self.mean.device)
        if self.codes is not None:
            net.codebook.codes.copy_(self.codes[s])  # type: ignore[union-attr]
        return net
