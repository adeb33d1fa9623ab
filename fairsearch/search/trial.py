"""One search configuration as a lane trains it (no Ray here: the lane passes its place in the
Train run through :class:`~fairsearch.search.lanes.LaneContext`)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any

from fairsearch.families import TrialSettings, train_and_evaluate
from fairsearch.nets import DivergenceError

__all__ = ["train_configuration"]


def train_configuration(item: Mapping[str, Any], ctx: Any, *,
                        settings: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Train ``item["params"]`` and return its outcome for :meth:`Recorder.tell`.

    ``settings``: ``model``, ``model_args``, ``epochs``, ``batch_size``. A diverged or failing
    configuration is an outcome (``status``), never an exception.
    """
    trial_settings = TrialSettings(
        epochs=int(settings["epochs"]), batch_size=int(settings["batch_size"]),
        seed=int(item.get("seed", 0)), device=ctx.device, rank=ctx.rank,
        world_size=ctx.world_size, prepare_module=ctx.prepare_module,
        model=dict(settings.get("model_args") or {}),
    )  # fmt: skip
    history: list[dict[str, float]] = []
    out: dict[str, Any] = {"seed": trial_settings.seed, "started_at": time.time()}
    try:
        metrics = train_and_evaluate(settings["model"], dict(item["params"]), ctx.data,
                                     trial_settings, history.append)  # fmt: skip
        out.update(status="completed", metrics=metrics)
    except DivergenceError as exc:
        out.update(status="diverged", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad configuration must not end the lane
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        out.update(status="failed", error=tail[-2000:])
    out.update(ended_at=time.time(), history=history)
    return out
