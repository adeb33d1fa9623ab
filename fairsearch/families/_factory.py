"""A user's own ``torch.nn.Module``, named in a spec by import path: ``"my_pkg.models:make_net"``.

The factory is called with keyword arguments only: the spec's ``factory_args``, the searched
parameters its signature names, and ``input_dim`` / ``output_dim`` when its signature names them.
It must return a ``torch.nn.Module``, which the family then trains unchanged (see
:mod:`fairsearch.plugins` for how Ray workers import it).

A spec the user runs names its factory, so training imports it. A saved model's ``config.json``
names one too, but a file is not a user: :func:`check_trusted` refuses a factory read from a
file unless the caller named that exact path (``load_model(folder, factories=[...])``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fairsearch.plugins import resolve_import

if TYPE_CHECKING:
    from torch import nn

__all__ = ["SHAPE_ARGS", "accepted_parameters", "build_module", "call_factory", "check_trusted",
           "resolve_factory"]

#: Arguments fairsearch fills in from the data when the factory's signature names them.
SHAPE_ARGS = ("input_dim", "output_dim")
#: ``accepted_parameters`` of a factory that takes ``**kwargs``.
ANY = "*"


def check_trusted(path: Any, trusted: Iterable[str], *, where: str) -> None:
    """``ValueError`` unless ``path`` (a factory named in the file ``where``) is None or one of
    the ``trusted`` import paths the caller passed; nothing is imported either way."""
    if path is None:
        return
    trusted = [trusted] if isinstance(trusted, str) else sorted(trusted)
    if isinstance(path, str) and path in trusted:
        return
    given = f"the caller trusts {trusted}" if trusted else "the caller named none"
    raise ValueError(
        f"{where} names the model factory {path!r}, but loading only imports a factory the "
        f"caller names ({given}): if you trust it, pass factories=[{path!r}]"
    )


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
    from torch import nn

    module = call_factory(path, args, searched, input_dim=input_dim, output_dim=output_dim)
    if not isinstance(module, nn.Module):
        raise ValueError(
            f"`model.factory` {path!r} must return a torch.nn.Module, but returned "
            f"{type(module).__name__}"
        )
    return module
