"""Torch building blocks every model family shares: one activation table, one MLP builder,
device resolution and the divergence error a trial reports as ``diverged``.

Torch is imported where a module is built: a spec is checked, and a search driven, without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ACTIVATIONS", "Activation", "DivergenceError", "MemberStopped", "activation_module",
    "build_mlp", "parse_layers", "resolve_device",
]  # fmt: skip

Activation = Literal["relu", "tanh", "gelu", "silu", "elu"]
#: The one activation table (name -> ``torch.nn`` class name): spec validation, the wrapper's
#: MLP and the translator use it.
ACTIVATIONS: dict[str, str] = {
    "relu": "ReLU", "tanh": "Tanh", "gelu": "GELU", "silu": "SiLU", "elu": "ELU",
}  # fmt: skip


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, or one beyond ``loss_bound``.

    Carries where it happened so that a search can record the trial as diverged, not crashed.
    """

    def __init__(self, message: str, *, epoch: int, step: int, value: float) -> None:
        super().__init__(f"{message} (epoch={epoch}, step={step}, value={value!r})")
        self.epoch, self.step, self.value = epoch, step, value


class MemberStopped(DivergenceError):
    """A member's per-epoch report stopped its training: successive halving judged its
    configuration at a rung (:mod:`fairsearch.search.halving`). A kind of
    :class:`DivergenceError` so that every path which ends one member early and lets the others
    go on (the batched populations, ``fit_population``) ends it the same way; the search records
    it as ``pruned``, never as ``diverged``."""

    def __init__(self, epoch: int) -> None:
        super().__init__("stopped by successive halving", epoch=epoch, step=-1,
                         value=float("nan"))  # fmt: skip


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` picks CUDA when present, else CPU."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def activation_module(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, but got {name!r}")
    from torch import nn

    return getattr(nn, ACTIVATIONS[name])()


def parse_layers(value: str | int | Sequence[int], what: str = "hidden") -> tuple[int, ...]:
    """``"256-60"`` / ``60`` / ``[256, 60]`` -> ``(256, 60)``; ``""`` -> ``()`` (no hidden layer)."""
    if isinstance(value, bool):
        parts: list[str] = ["x"]
    elif isinstance(value, int):
        parts = [str(value)]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split("-") if p.strip()]
    else:
        parts = [str(v) for v in value]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = (0,)
    if any(s < 1 for s in sizes):
        raise ValueError(
            f"{what} must be positive layer sizes such as '60' or '256-60', but got {value!r}"
        )
    return sizes


def build_mlp(d_in: int, d_out: int, hidden: str | int | Sequence[int] = "32-32",
              activation: str = "relu") -> nn.Sequential:  # fmt: skip
    """The one MLP builder: ``d_in -> hidden... -> d_out`` (no hidden layer: a linear map)."""
    from torch import nn

    layers: list[nn.Module] = []
    prev = d_in
    for h in parse_layers(hidden):
        layers += [nn.Linear(prev, h), activation_module(activation)]
        prev = h
    layers.append(nn.Linear(prev, d_out))
    return nn.Sequential(*layers)
