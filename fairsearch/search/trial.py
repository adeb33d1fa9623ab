"""One search configuration as a lane trains it: its seeds as one population (no Ray here: the
lane passes its place in the Train run through :class:`~fairsearch.search.lanes.LaneContext`)."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fairsearch.families import Member, TrialSettings, train_population
from fairsearch.nets import DivergenceError

__all__ = ["seed_summary", "train_configuration"]


def seed_summary(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """``{metric: {"mean", "se", "values"}}`` over the seeds (``se``: standard error of the
    mean, ``std / sqrt(S)`` with the ``S - 1`` std; NaN for one seed)."""
    names = list(dict.fromkeys(k for m in per_seed for k in m))
    out: dict[str, dict[str, Any]] = {}
    for k in names:
        v = np.array([float(m.get(k, math.nan)) for m in per_seed], dtype=np.float64)
        se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
        out[k] = {"mean": float(v.mean()), "se": se, "values": [float(x) for x in v]}
    return out


def train_configuration(item: Mapping[str, Any], ctx: Any, *,
                        settings: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Train ``item["params"]`` once per seed of ``item["seeds"]`` (one population) and return
    its outcome for :meth:`Recorder.tell`: ``metrics`` are the seed means, ``seed_metrics`` the
    per-seed values and ``seed_se`` the standard errors.

    ``settings``: ``model``, ``model_args``, ``epochs``, ``batch_size``, ``split_seed``. A
    configuration that diverges on any seed is ``diverged`` (the seeds and reasons are named);
    a failing one is ``failed``: outcomes, never exceptions.
    """
    seeds = [int(s) for s in item.get("seeds") or [item.get("seed", 0)]]
    trial_settings = TrialSettings(
        epochs=int(settings["epochs"]), batch_size=int(settings["batch_size"]),
        seed=seeds[0], split_seed=int(settings.get("split_seed", 0)), device=ctx.device,
        rank=ctx.rank, world_size=ctx.world_size, prepare_module=ctx.prepare_module,
        model=dict(settings.get("model_args") or {}),
    )  # fmt: skip
    histories: list[list[dict[str, float]]] = [[] for _ in seeds]
    out: dict[str, Any] = {"seed": seeds[0], "seeds": seeds, "started_at": time.time()}
    params = dict(item["params"])
    try:
        results = train_population(settings["model"], [Member(params, s) for s in seeds], ctx.data,
                                   trial_settings, [h.append for h in histories])  # fmt: skip
        diverged = [(s, r) for s, r in zip(seeds, results, strict=True)
                    if isinstance(r, DivergenceError)]  # fmt: skip
        if diverged:
            reasons = "; ".join(f"seed {s}: {r}" for s, r in diverged)
            out.update(status="diverged",
                       error=f"diverged on {len(diverged)} of {len(seeds)} seeds ({reasons})")
        else:
            summary = seed_summary(results)  # type: ignore[arg-type]
            out.update(status="completed", metrics={k: v["mean"] for k, v in summary.items()},
                       seed_metrics={k: v["values"] for k, v in summary.items()},
                       seed_se={k: v["se"] for k, v in summary.items()})  # fmt: skip
    except DivergenceError as exc:
        out.update(status="diverged", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad configuration must not end the lane
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        out.update(status="failed", error=tail[-2000:])
    # the per-epoch history of every seed, each row marked with its seed
    out.update(ended_at=time.time(),
               history=[{**row, "seed": s} for s, h in zip(seeds, histories, strict=True) for row in h])
    return out
