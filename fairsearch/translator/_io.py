"""Save and load a fitted ``Translator``: parameters and classes as JSON, weights as a state dict.

Loading never executes code: ``config.json`` is plain JSON and ``weights.pt`` is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairsearch.translator._model import TranslatorNet, mlp
from fairsearch.translator._train import Translator

__all__ = ["load_translator", "save_translator"]

_CONFIG, _WEIGHTS = "config.json", "weights.pt"
FORMAT_VERSION = 1


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    return v


def save_translator(translator: Translator, path: str | os.PathLike[str]) -> Path:
    """Write ``path/config.json`` and ``path/weights.pt``; returns the folder."""
    net = translator._check_fitted()
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "params": {k: _jsonable(v) for k, v in translator.params.items()},
        "dim": int(net.mean.shape[0]),
        "control_classes": [_jsonable(c) for c in translator.control_classes_.tolist()],
        "protected_classes": [_jsonable(c) for c in translator.protected_classes_.tolist()],
        "has_head": translator.head_ is not None,
    }
    state = {f"net.{k}": v.cpu() for k, v in net.state_dict().items()}
    if translator.head_ is not None:
        state.update({f"head.{k}": v.cpu() for k, v in translator.head_.state_dict().items()})
    tmp = out / (_WEIGHTS + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out / _WEIGHTS)
    (out / _CONFIG).write_text(json.dumps(config, indent=2))
    return out


def load_translator(path: str | os.PathLike[str]) -> Translator:
    """Rebuild a fitted ``Translator`` saved by :func:`save_translator` (CPU tensors)."""
    folder = Path(path)
    config = json.loads((folder / _CONFIG).read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"format_version must be {FORMAT_VERSION}, but got {config.get('format_version')!r} "
            f"in {folder / _CONFIG}"
        )
    params = {**config["params"], "device": "cpu"}
    tr = Translator(**params)
    p = tr._validated()
    state = torch.load(folder / _WEIGHTS, map_location="cpu", weights_only=True)
    d = config["dim"]
    net = TranslatorNet(d, len(config["control_classes"]), bottleneck=p["bottleneck"],
                        activation=p["activation"])  # fmt: skip
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    net.eval()
    head = None
    if config["has_head"]:
        d_head = d + (len(config["control_classes"]) if p["adversary_control"] else 0)
        head = mlp(d_head, len(config["protected_classes"]), depth=p["adversary_depth"],
                   width=p["adversary_width"], activation=p["activation"])  # fmt: skip
        head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    tr.net_, tr.head_ = net, head
    tr.n_head_inputs_ = d + (len(config["control_classes"]) if p["adversary_control"] else 0)
    tr.control_classes_ = np.asarray(config["control_classes"])
    tr.protected_classes_ = np.asarray(config["protected_classes"])
    tr.history_ = []
    return tr
