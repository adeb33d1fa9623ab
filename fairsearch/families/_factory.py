"""A user's own ``torch.nn.Module``, named in a spec by import path: ``"my_pkg.models:make_net"``.

The factory is called with keyword arguments only: the spec's ``factory_args``, the searched
parameters its signature names, and ``input_dim`` / ``output_dim`` when its signature names them.
It must return a ``torch.nn.Module``, which the family then trains unchanged (see
:mod:`fairsearch.plugins` for how Ray workers import it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from fairsearch.plugins import resolve_import

__all__ = ["SHAPE_ARGS", "accepted_parameters", "build_module", "call_factory", "resolve_factory"]

#: Arguments fairsearch fills in from the data when the factory's signature names them.
SHAPE_ARGS = ("input_dim", "output_dim")
#: ``accepted_parameters`` of a factory that takes ``**kwargs``.
ANY = "*"


def resolve_factory(path: str) -> Callable[..., Any]:
    """Import the factory at ``path`` (``ValueError`` naming the path and the reason)."""
    return resolve_import(path, "model.factory")


def accepted_parameters(path: str) -> frozenset[str]:
    """Keyword names the factory takes (``{"*"}`` when it takes ``**kwargs``)."""
    sig = inspect.signature(resolve_factory(path))
    names = set()
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            names.add(ANY)
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.add(p.name)
    return frozenset(names)


def call_factory(path: str, args: Mapping[str, Any], searched: Mapping[str, Any], *,
                 input_dim: int, output_dim: int) -> Any:  # fmt: skip
    """Call the factory (see the module doc) and return what it returns."""
    factory = resolve_factory(path)
    accepted = accepted_parameters(path)
    kwargs = dict(args)
    kwargs.update({k: v for k, v in searched.items() if k in accepted or ANY in accepted})
    shape = {"input_dim": input_dim, "output_dim": output_dim}
    kwargs.update({k: v for k, v in shape.items() if k in accepted and k not in args})
    try:
        module = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - reported with the path and arguments
        raise ValueError(
            f"`model.factory` {path!r} failed when called with {sorted(kwargs)}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return module


def build_module(path: str, args: Mapping[str, Any], searched: Mapping[str, Any], *,
                 input_dim: int, output_dim: int) -> nn.Module:  # fmt: skip
    """Call the factory; ``ValueError`` if it fails or returns no ``torch.nn.Module``."""
    module = call_factory(path, args, searched, input_dim=input_dim, output_dim=output_dim)
    if not isinstance(module, nn.Module):
        raise ValueError(
            f"`model.factory` {path!r} must return a torch.nn.Module, but returned "
            f"{type(module).__name__}"
        )
    return module
