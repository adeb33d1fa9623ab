"""Save and load a fitted ``Translator``: parameters and classes as JSON, weights as a state dict.

Loading never executes code: ``config.json`` is plain JSON and ``weights.pt`` is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fairsearch.families.translator._model import TranslatorNet, mlp
from fairsearch.families.translator._train import Translator
from fairsearch.io.atomic import write_atomic

__all__ = ["load_translator", "restore_translator", "save_translator", "translator_state"]

_CONFIG, _WEIGHTS = "config.json", "weights.pt"
FORMAT_VERSION = 1


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    return v


def translator_state(translator: Translator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A fitted translator as tensors (``net.*``, ``head.*``) and JSON metadata."""
    net = translator._check_fitted()
    meta = {
        "format_version": FORMAT_VERSION,
        "params": {k: _jsonable(v) for k, v in translator.params.items()},
        "dim": int(net.mean.shape[0]),
        "control_classes": [_jsonable(c) for c in translator.control_classes_.tolist()],
        "protected_classes": [_jsonable(c) for c in translator.protected_classes_.tolist()],
        "has_head": translator.head_ is not None,
    }
    state = {f"net.{k}": v.detach().cpu() for k, v in net.state_dict().items()}
    if translator.head_ is not None:
        state.update({f"head.{k}": v.detach().cpu() for k, v in translator.head_.state_dict().items()})
    return state, meta


def restore_translator(state: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                       autoencoder: tuple[nn.Module, nn.Module] | None = None) -> Translator:
    """The fitted ``Translator`` of :func:`translator_state` (CPU tensors, eval mode);
    ``autoencoder``: the user's fresh ``(encoder, decoder)`` when it was trained with one."""
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"format_version must be {FORMAT_VERSION}, but got {meta.get('format_version')!r}"
        )
    tr = Translator(**{**meta["params"], "device": "cpu"})
    p = tr.validated_params()
    d = int(meta["dim"])
    net = TranslatorNet(d, len(meta["control_classes"]), bottleneck=p["bottleneck"],
                        activation=p["activation"], autoencoder=autoencoder,
                        q_dim=len(meta["protected_classes"]) if p["q_input"] else 0,
                        quantize=p["quantize"])  # fmt: skip
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    head = None
    d_head = d + (len(meta["control_classes"]) if p["adversary_control"] else 0)
    if meta["has_head"]:
        head = mlp(d_head, len(meta["protected_classes"]), depth=p["adversary_depth"],
                   width=p["adversary_width"], activation=p["activation"])  # fmt: skip
        head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    tr.net_, tr.head_ = net.eval(), head
    tr.n_head_inputs_ = d_head
    tr.control_classes_ = np.asarray(meta["control_classes"])
    tr.protected_classes_ = np.asarray(meta["protected_classes"])
    tr.history_ = []
    return tr


def save_translator(translator: Translator, path: str | os.PathLike[str]) -> Path:
    """Write ``path/config.json`` and ``path/weights.pt``; returns the folder."""
    state, meta = translator_state(translator)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / _WEIGHTS, lambda tmp: torch.save(state, tmp))
    write_atomic(out / _CONFIG, lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))
    return out


def load_translator(path: str | os.PathLike[str]) -> Translator:
    """Rebuild a fitted ``Translator`` saved by :func:`save_translator` (CPU tensors)."""
    folder = Path(path)
    meta = json.loads((folder / _CONFIG).read_text())
    state = torch.load(folder / _WEIGHTS, map_location="cpu", weights_only=True)
    try:
        return restore_translator(state, meta)
    except ValueError as exc:
        raise ValueError(f"{exc} in {folder / _CONFIG}") from None
