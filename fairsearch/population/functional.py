"""Any ``nn.Module`` as a population, with ``torch.func``.

``stack_module_state`` stacks the members' parameters and buffers (``[S, ...]``),
``functional_call`` runs the module with one member's slice, and ``vmap`` maps that over the
members in one call. Buffers that a module updates in place while training (batch-norm running
statistics) cannot be written under ``vmap``: such a module is trained member by member instead
(:meth:`FunctionalPopulation.supported`), which is exact but not batched.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["FunctionalPopulation"]


class FunctionalPopulation(nn.Module):
    """``S`` copies of one module architecture; ``forward`` maps ``[S, b, ...]`` to ``[S, b, ...]``.

    Dropout draws different masks per member (``randomness="different"``), so with dropout a
    member is an independent model but not bit-equal to the same seed trained alone.
    """

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        super().__init__()
        from torch.func import stack_module_state

        if not modules:
            raise ValueError("a population needs at least one module, but got none")
        self.size = len(modules)
        self._template = [copy.deepcopy(modules[0])]  # lists: not registered submodules
        params, buffers = stack_module_state(list(modules))
        self.names = list(params)
        self.stacked = nn.ParameterList([nn.Parameter(params[k].detach().clone()) for k in self.names])
        self.buffer_names = list(buffers)
        for i, k in enumerate(self.buffer_names):
            self.register_buffer(f"_buffer{i}", buffers[k].detach().clone())
        self._base = [copy.deepcopy(modules[0]).to("meta")]

    @staticmethod
    def supported(module: nn.Module) -> bool:
        """False for modules whose forward writes buffers while training (batch norm)."""
        norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
        return not any(isinstance(m, norms) for m in module.modules())

    def _buffers_dict(self) -> dict[str, Tensor]:
        return {k: getattr(self, f"_buffer{i}") for i, k in enumerate(self.buffer_names)}

    def forward(self, x: Tensor) -> Tensor:
        from torch.func import functional_call, vmap

        base = self._base[0]
        base.train(self.training)

        def one(params: dict[str, Tensor], buffers: dict[str, Tensor], xb: Tensor) -> Tensor:
            return functional_call(base, (params, buffers), (xb,))

        params = dict(zip(self.names, self.stacked, strict=True))
        return vmap(one, randomness="different")(params, self._buffers_dict(), x)

    @torch.no_grad()
    def keep(self, slots: Tensor) -> None:
        """Keep only the members at ``slots`` (in that order); the others leave the batch."""
        for p in self.stacked:
            p.data = p.data.index_select(0, slots.to(p.device)).contiguous()
            p.grad = None
        for i in range(len(self.buffer_names)):
            b = getattr(self, f"_buffer{i}")
            setattr(self, f"_buffer{i}", b.index_select(0, slots.to(b.device)).contiguous())
        self.size = len(slots)

    def member(self, s: int) -> nn.Module:
        """Member ``s`` as an ordinary module with its own copy of the trained weights."""
        out = copy.deepcopy(self._template[0])
        state = {k: p[s].detach().clone() for k, p in zip(self.names, self.stacked, strict=True)}
        state.update({k: b[s].detach().clone() for k, b in self._buffers_dict().items()})
        out.load_state_dict(state)
        return out
