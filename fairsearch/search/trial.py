"""One search configuration as a lane trains it: its seeds as one population (no Ray here: the
lane passes its place in the Train run through :class:`~fairsearch.executor.lanes.LaneContext`)."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fairsearch.families import Member, TrialSettings, train_population
from fairsearch.nets import DivergenceError, MemberStopped
from fairsearch.search.halving import HalvingRule, RungWatch

__all__ = ["seed_summary", "train_configuration", "train_population_item"]


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


def _outcome(results: Sequence[Any], seeds: Sequence[int],
             watch: RungWatch | None = None) -> dict[str, Any]:  # fmt: skip
    """One configuration's outcome from its seeds' results (metrics, DivergenceError or
    MemberStopped); with halving on, its rung values (``rungs``, ``pruned_at``) too."""
    rungs = watch.record() if watch is not None else {}
    diverged = [(s, r) for s, r in zip(seeds, results, strict=True)
                if isinstance(r, DivergenceError) and not isinstance(r, MemberStopped)]  # fmt: skip
    if diverged:
        reasons = "; ".join(f"seed {s}: {r}" for s, r in diverged)
        return {"status": "diverged",
                "error": f"diverged on {len(diverged)} of {len(seeds)} seeds ({reasons})", **rungs}
    if watch is not None and any(isinstance(r, MemberStopped) for r in results):
        return {"status": "pruned", "error": watch.reason, **rungs}
    summary = seed_summary(results)
    return {"status": "completed", "metrics": {k: v["mean"] for k, v in summary.items()},
            "seed_metrics": {k: v["values"] for k, v in summary.items()},
            "seed_se": {k: v["se"] for k, v in summary.items()}, **rungs}  # fmt: skip


def _watch(item: Mapping[str, Any], settings: Mapping[str, Any], key: Any,
           n_seeds: int) -> RungWatch | None:  # fmt: skip
    """The rung watch of configuration ``key`` (None: halving off): the search's rule, and the
    rung table the driver handed out with the item."""
    rule = settings.get("halving")
    if not rule:
        return None
    tables = item.get("rung_tables") or {}
    table = tables.get(key, tables.get(str(key))) or {}
    return RungWatch(HalvingRule.from_dict(rule), {int(r): v for r, v in table.items()}, n_seeds)


def _reporter(history: list[dict[str, float]], watch: RungWatch | None, index: int) -> Any:
    """A member's report: its history row kept, then judged at the rungs (may raise
    :class:`MemberStopped`)."""
    if watch is None:
        return history.append

    def report(row: dict[str, float]) -> None:
        history.append(row)
        watch.report(index, row)

    return report


def train_population_item(item: Mapping[str, Any], ctx: Any, *,
                          settings: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Train a population item (``item["members"]``: configurations of one shape, each with
    every seed of ``item["seeds"]``) as one population; ``members`` of the result hold each
    configuration's outcome as :func:`train_configuration` returns it."""
    seeds = [int(s) for s in item["seeds"]]
    configs = [(m["key"], dict(m["params"])) for m in item["members"]]
    trial_settings = _settings(settings, ctx, seeds[0])
    histories = {(k, s): [] for k, _ in configs for s in seeds}
    started = time.time()
    out: dict[str, Any] = {"seed": seeds[0], "seeds": seeds, "started_at": started}
    members = [Member(params, s) for _, params in configs for s in seeds]
    watches = {k: _watch(item, settings, k, len(seeds)) for k, _ in configs}
    try:
        results = train_population(settings["model"], members, ctx.data, trial_settings,
                                   [_reporter(histories[(k, s)], watches[k], j) for k, _ in configs
                                    for j, s in enumerate(seeds)])  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a failing population fails its members
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        out.update(status="failed", error=tail[-2000:], ended_at=time.time())
        return out
    reports = []
    for i, (key, _) in enumerate(configs):
        own = _outcome(results[i * len(seeds) : (i + 1) * len(seeds)], seeds, watches[key])
        own.update(key=key, seed=seeds[0], seeds=seeds, history=[
            {**row, "seed": s} for s in seeds for row in histories[(key, s)]])  # fmt: skip
        reports.append(own)
    out.update(status="completed", members=reports, ended_at=time.time())
    return out


def _settings(settings: Mapping[str, Any], ctx: Any, seed: int) -> TrialSettings:
    return TrialSettings(
        epochs=int(settings["epochs"]), batch_size=int(settings["batch_size"]),
        seed=seed, split_seed=int(settings.get("split_seed", 0)), device=ctx.device,
        rank=ctx.rank, world_size=ctx.world_size, prepare_module=ctx.prepare_module,
        model=dict(settings.get("model_args") or {}),
        criterion=str(settings.get("criterion", "independence")),
        rungs=tuple(int(r) for r in (settings.get("halving") or {}).get("rungs", ())),
    )  # fmt: skip


def train_configuration(item: Mapping[str, Any], ctx: Any, *,
                        settings: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Train ``item["params"]`` once per seed of ``item["seeds"]`` (one population) and return
    its outcome for :meth:`Recorder.tell`: ``metrics`` are the seed means, ``seed_metrics`` the
    per-seed values and ``seed_se`` the standard errors.

    ``settings``: ``model``, ``model_args``, ``epochs``, ``batch_size``, ``split_seed``,
    unless independence, ``criterion``, and with halving on, ``halving`` (the
    :class:`~fairsearch.search.halving.HalvingRule` as a dict; the item's ``rung_tables`` hold
    each configuration's rung table): a configuration stopped at a rung is ``pruned``. A
    configuration that diverges on any seed is ``diverged`` (the seeds and reasons are named);
    a failing one is ``failed``: outcomes, never exceptions.
    """
    if item.get("members"):
        return train_population_item(item, ctx, settings=settings)
    seeds = [int(s) for s in item.get("seeds") or [item.get("seed", 0)]]
    trial_settings = _settings(settings, ctx, seeds[0])
    histories: list[list[dict[str, float]]] = [[] for _ in seeds]
    out: dict[str, Any] = {"seed": seeds[0], "seeds": seeds, "started_at": time.time()}
    params = dict(item["params"])
    watch = _watch(item, settings, item["key"], len(seeds))
    try:
        results = train_population(settings["model"], [Member(params, s) for s in seeds], ctx.data,
                                   trial_settings, [_reporter(h, watch, j) for j, h in enumerate(histories)])  # fmt: skip
        out.update(_outcome(results, seeds, watch))
    except DivergenceError as exc:
        out.update(status="diverged", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad configuration must not end the lane
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        out.update(status="failed", error=tail[-2000:])
    # the per-epoch history of every seed, each row marked with its seed
    out.update(ended_at=time.time(),
               history=[{**row, "seed": s} for s, h in zip(seeds, histories, strict=True) for row in h])
    return out
