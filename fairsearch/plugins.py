"""User code named in a spec by import path, ``"package.module:attribute"``.

A model factory (``model.factory``) or a data loader (``data.loader``). On a Ray cluster the
package must be importable on every node: ship it with the job (``--working-dir`` or
``py_modules`` in ``jobs/runtime_env.yaml``) or install it in the image.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["import_from_cwd", "resolve_import"]


def resolve_import(path: Any, key: str) -> Callable[..., Any]:
    """The callable at ``path``; ``ValueError`` naming ``key``, the path and the reason."""
    if not isinstance(path, str) or path.count(":") != 1 or not all(path.split(":")):
        raise ValueError(
            f"`{key}` must be an import path 'package.module:function', but got {path!r}"
        )
    module_name, attr = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see, in one line
        raise ValueError(
            f"`{key}` {path!r} cannot be imported: {type(exc).__name__}: {exc} (is its package "
            f"on PYTHONPATH, or shipped with --working-dir / py_modules on a cluster?)"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"`{key}` {path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"`{key}` {path!r} must be callable, but got {type(obj).__name__}")
    return obj


def import_from_cwd() -> None:
    """Make packages in the current folder importable, here and in the Ray workers this process
    starts (they inherit ``PYTHONPATH``), as ``python -m`` does for its own process."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if cwd not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([cwd, *parts])
