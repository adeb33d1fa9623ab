"""Reading what the retrain stage saved: a seed's ``config.json`` and ``model.pt``, and the model
rebuilt from them (loading never runs code named in the run folder's files)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from fairsearch.families import get_family
from fairsearch.families._factory import check_trusted

__all__ = ["load_model", "read_config", "read_weights", "weights_load"]


def load_model(folder: str | Path, *,
               factories: Iterable[str] = ()) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The retrained model in ``folder`` and its exact config; loading never runs code named in
    the folder's files.

    ``model.pt`` is read with ``torch.load(weights_only=True)`` and the model is rebuilt by its
    family from ``config.json``: a ``torch.nn.Module`` in eval mode for the wrapper (its output is
    the prediction, or the class logits), a fitted ``Translator`` for the translator.

    A user's module is rebuilt by its factory only when the caller names that factory in
    ``factories`` (import paths ``"package.module:function"``): ``config.json`` is data, and the
    factory it names is imported only if the caller already trusts that exact path. A folder
    received from someone else therefore cannot make ``load_model`` import or call anything.
    """
    folder = Path(folder)
    config = read_config(folder)
    if not isinstance(config.get("family"), str):
        raise ValueError(f"{folder / 'config.json'}: `family` must be a family's name, but got "
                         f"{config.get('family')!r}; re-run `fairsearch retrain` on the run "
                         f"folder to rewrite it")  # fmt: skip
    family = get_family(config["family"])  # a built-in family by name: nothing is imported
    model = config.get("model") or {}
    known = {"factory", "factory_args", *family.model_options}
    if not isinstance(model, dict) or set(model) - known:
        *rest, last = [f"`{k}`" for k in sorted(known)]
        raise ValueError(f"{folder / 'config.json'}: `model` must hold only {', '.join(rest)} "
                         f"and {last}, but got {model!r}; re-run `fairsearch retrain` on the run "
                         f"folder to rewrite it")  # fmt: skip
    check_trusted(model.get("factory"), factories, where=str(folder / "config.json"))
    if not (folder / "model.pt").is_file():
        raise ValueError(f"{folder} has no model.pt: this seed ended {config.get('status')!r}")
    state = read_weights(folder / "model.pt")
    return family.restore(state, config.get("meta") or {}, config), config


def read_config(folder: str | Path) -> dict[str, Any]:
    """``folder/config.json`` as a dict; ``ValueError`` naming the file and the recovery."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is missing: {_RECOVER}") from None
    except (OSError, ValueError) as exc:
        raise _damaged(path, "is unreadable", exc) from None
    return _holding(path, config, "a JSON object")


def read_weights(path: str | Path) -> dict[str, Any]:
    """A state dict written by the retrain stage (``weights_only``: no code runs);
    ``ValueError`` naming the file and the recovery when it is truncated or not a state dict."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling error means a damaged file
        raise _damaged(path, "cannot be loaded", exc) from None
    return _holding(path, state, "a state dict")


#: How a damaged or missing retrain file is recovered.
_RECOVER = "re-run `fairsearch retrain` on the run folder"


def _damaged(path: str | Path, what: str, exc: Exception) -> ValueError:
    return ValueError(f"{path} {what} ({type(exc).__name__}: {exc}): {_RECOVER}")


def _holding(path: str | Path, value: Any, want: str) -> dict[str, Any]:
    """``value`` when it is a dict, else the error naming ``path`` and what it must hold."""
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold {want}, but holds {type(value).__name__}: {_RECOVER}")
    return value


def weights_load(folder: str | Path) -> bool:
    """True when ``folder/model.pt`` is a loadable state dict (a truncated or damaged one is
    never offered for deployment)."""
    path = Path(folder) / "model.pt"
    if not path.is_file():
        return False
    try:
        read_weights(path)
    except ValueError:
        return False
    return True
