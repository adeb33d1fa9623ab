"""One retrain unit (a configuration x a seed): trained, its outcome kept as a status, saved.

:func:`retrain_configuration` is plain torch; :func:`unit_work` is the work function a runner
(Ray lanes or this process, :mod:`fairsearch.analysis.retrain.runners`) calls per unit. A unit's
folder holds ``config.json``, and for a completed seed ``model.pt``, ``test_repr.npy`` and
``test_pred.npy``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairsearch.families import TrialSettings, get_family
from fairsearch.families import train_one as family_train_one
from fairsearch.io.atomic import write_atomic
from fairsearch.nets import DivergenceError

__all__ = ["jsonable", "retrain_configuration", "save_npy", "save_unit", "train_unit", "unit_row",
           "unit_work"]


def retrain_configuration(model: str, params: dict[str, Any], data: Any, *, seed: int, epochs: int,
                          batch_size: int, device: str = "cpu",
                          model_args: dict[str, Any] | None = None, rank: int = 0,
                          world_size: int = 1, prepare_module: Any = None,
                          split_seed: int = 0, criterion: str = "independence") -> dict[str, Any]:  # fmt: skip
    """Train one configuration with one seed; returns metrics, state dict and test outputs.

    ``split_seed`` (the spec's ``search.seed``) chooses the validation rows, the search's own:
    only initialisation and data order change with ``seed``.

    ``metrics`` are on the validation split (as in the search), ``test_metrics`` the same names on
    the test split; ``meta`` is what
    :func:`~fairsearch.analysis.retrain.weights.load_model` needs to rebuild the model.
    """
    settings = TrialSettings(epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                             model=model_args or {}, rank=rank, world_size=world_size,
                             prepare_module=prepare_module, split_seed=split_seed,
                             criterion=criterion)  # fmt: skip
    return family_train_one(get_family(model), params, data, settings)


def train_unit(model: str, params: dict[str, Any], data: Any, seed: int, epochs: int,
               batch_size: int, model_args: dict[str, Any] | None = None, *,
               lane: Any = None, split_seed: int = 0,
               criterion: str = "independence") -> dict[str, Any]:  # fmt: skip
    """One (config, seed); any failure is returned as a status, never raised. ``lane``: the
    lane's :class:`~fairsearch.executor.lanes.LaneContext` (device, rank, data parallelism)."""
    start = time.time()
    try:
        device = lane.device if lane is not None else (
            "cuda" if torch.cuda.is_available() else "cpu")
        dp = {"rank": lane.rank, "world_size": lane.world_size,
              "prepare_module": lane.prepare_module} if lane is not None else {}
        out = retrain_configuration(model, params, data, seed=seed, epochs=epochs,
                                    batch_size=batch_size, device=device,
                                    model_args=model_args, split_seed=split_seed,
                                    criterion=criterion, **dp)  # fmt: skip
        out["status"], out["error"] = "completed", None
    except DivergenceError as exc:
        out = {"status": "diverged", "error": str(exc), "metrics": {}, "test_metrics": {}}
    except Exception as exc:  # noqa: BLE001 - a failed seed is an outcome, recorded
        out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "metrics": {},
               "test_metrics": {}}  # fmt: skip
    out["duration_s"] = time.time() - start
    return out


def unit_work(item: dict[str, Any], ctx: Any, *, settings: dict[str, Any]) -> dict[str, Any]:
    """The retrain's work function for a runner: one (config, seed) item; ``ctx`` is the lane's
    (or this process's) context: data, device, rank."""
    return train_unit(settings["model"], item["params"], ctx.data, int(item["seed"]),
                      settings["epochs"], settings["batch_size"], settings["model_args"], lane=ctx,
                      split_seed=int(settings.get("split_seed", 0)),
                      criterion=str(settings.get("criterion", "independence")))


def unit_row(plan: dict[str, Any], seed: int, out: dict[str, Any]) -> dict[str, Any]:
    """The unit's row of ``retrain.parquet``: ids, outcome, timing, ``metric.<m>`` on
    validation and ``test.<m>`` on test."""
    return {"config_id": plan["config_id"], "number": plan["number"],
            "trial_id": plan["trial_id"], "seed": seed,
            "status": out["status"], "error": out.get("error"),
            "duration_s": out["duration_s"],
            **{f"metric.{k}": float(v) for k, v in out["metrics"].items()},
            **{f"test.{k}": float(v) for k, v in out["test_metrics"].items()}}  # fmt: skip


def save_unit(folder: Path, out: dict[str, Any], config: dict[str, Any]) -> None:
    """``config.json`` (with the family's ``meta`` and the outcome), and for a completed seed
    its weights and test outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {**config, "meta": jsonable(out.get("meta", {})), "status": out["status"],
              "error": out.get("error")}  # fmt: skip
    write_atomic(folder / "config.json", lambda p: p.write_text(json.dumps(config, indent=2)))
    if out["status"] != "completed":
        return
    write_atomic(folder / "model.pt", lambda p: torch.save(out["state"], p))
    for name in ("test_repr", "test_pred"):
        write_atomic(folder / f"{name}.npy", lambda p, a=out[name]: save_npy(p, a))


def jsonable(v: Any) -> Any:
    """``v`` with numpy scalars as Python values, in dicts and lists (for ``json.dumps``)."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v


def save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file handle: np.save would append ".npy" to the temp name
        np.save(fh, array)
