"""Stacked layers: ``S`` linear layers of one shape as one ``[S, in, out]`` weight.

``StackedLinear(x)`` with ``x`` of shape ``[S, b, in]`` computes ``x[s] @ W[s] + b[s]`` for every
member in one ``torch.baddbmm``. :func:`stack_mlps` builds a :class:`StackedMLP` from ``S``
ordinary ``nn.Sequential`` MLPs (built the usual way, so each member starts from exactly the
weights the same seed gives a lone model) and :meth:`StackedMLP.member` turns a member back into
an ordinary ``nn.Sequential`` with that member's trained weights.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["StackedLinear", "StackedMLP", "is_plain_mlp", "stack_mlps"]

#: Activations a stacked MLP applies element-wise (shared by every member).
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.SiLU, nn.ELU, nn.Identity)


class StackedLinear(nn.Module):
    """``S`` independent ``nn.Linear`` layers of one shape (weight ``[S, in, out]``)."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        shapes = {tuple(layer.weight.shape) for layer in layers}
        if len(shapes) != 1:
            raise ValueError(f"stacked layers must share one shape, but got {sorted(shapes)}")
        self.weight = nn.Parameter(torch.stack([layer.weight.detach().T for layer in layers]).contiguous())
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers])[:, None, :].contiguous())

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    @torch.no_grad()
    def keep(self, slots: Tensor) -> None:
        """Keep only the members at ``slots`` (in that order); the others leave the batch."""
        self.weight.data = self.weight.data.index_select(0, slots.to(self.weight.device)).contiguous()
        self.bias.data = self.bias.data.index_select(0, slots.to(self.bias.device)).contiguous()
        self.weight.grad = self.bias.grad = None

    def member(self, s: int) -> nn.Linear:
        d_in, d_out = self.weight.shape[1:]
        layer = nn.Linear(int(d_in), int(d_out))
        with torch.no_grad():
            layer.weight.copy_(self.weight[s].T)
            layer.bias.copy_(self.bias[s, 0])
        return layer


def is_plain_mlp(module: nn.Module) -> bool:
    """True for an ``nn.Sequential`` of ``nn.Linear`` layers and element-wise activations."""
    return isinstance(module, nn.Sequential) and len(module) > 0 and all(
        isinstance(m, (nn.Linear, *_ELEMENTWISE)) and (not isinstance(m, nn.Linear) or m.bias is not None)
        for m in module
    )


class StackedMLP(nn.Module):
    """``S`` MLPs of one architecture; ``forward`` maps ``[S, b, in]`` to ``[S, b, out]``."""

    def __init__(self, mlps: Sequence[nn.Sequential]) -> None:
        super().__init__()
        if not mlps:
            raise ValueError("a stacked MLP needs at least one member, but got none")
        if not all(is_plain_mlp(m) for m in mlps):
            raise ValueError("stack_mlps takes nn.Sequential MLPs of Linear layers and activations only")
        arch = [tuple(type(m).__name__ for m in mlp) for mlp in mlps]
        if len(set(arch)) != 1:
            raise ValueError(f"stacked MLPs must share one architecture, but got {sorted(set(arch))}")
        self.size = len(mlps)
        self._template = [copy.deepcopy(mlps[0])]  # a list: not a registered submodule
        layers: list[nn.Module] = []
        for i, m in enumerate(mlps[0]):
            if isinstance(m, nn.Linear):
                layers.append(StackedLinear([mlp[i] for mlp in mlps]))  # type: ignore[misc]
            else:
                layers.append(copy.deepcopy(m))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    def keep(self, slots: Tensor) -> None:
        """Keep only the members at ``slots`` (in that order); the others leave the batch."""
        for layer in self.layers:
            if isinstance(layer, StackedLinear):
                layer.keep(slots)
        self.size = len(slots)

    def member(self, s: int) -> nn.Sequential:
        """Member ``s`` as an ordinary ``nn.Sequential`` (its own copy of the weights)."""
        out = copy.deepcopy(self._template[0])
        for i, layer in enumerate(self.layers):
            if isinstance(layer, StackedLinear):
                out[i] = layer.member(s)
        return out


def stack_mlps(mlps: Sequence[nn.Sequential]) -> StackedMLP:
    return StackedMLP(mlps)
