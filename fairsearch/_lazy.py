"""Package exports imported on first use (PEP 562), so that importing a package for one light
name (a spec checking a family's options, the audit's probe names) does not import torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps each name to the module that
    defines it; the value is imported when first asked for and then kept in the package."""

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
