"""The retrain stage: chosen configurations x seeds, in parallel on Ray, saved and summarised.

Reads ``spec.yaml``, ``trials.parquet`` and ``pareto.parquet``; retrains the Pareto members (the
chosen one first, at most ``post.top_k``) once per seed in ``post.seeds``; writes

* ``retrain/trial-<number>/seed-<s>/`` (``config_id`` = ``trial-<number>``, the Optuna number): ``model.pt`` (a state dict: loading never runs code),
  ``config.json`` (the exact flat config, model kind, data section, seed, epochs),
  ``test_repr.npy`` (what the audit probes see: predictions or class probabilities for the
  wrapper, translated embeddings for the translator) and ``test_pred.npy`` (control predictions);
* ``retrain.parquet``: one row per configuration and seed: ``metric.<name>`` on the validation
  split (as in the search), ``test.<name>`` on the test split, status, error, timing;
* ``retrain_summary.parquet``: mean and std per configuration and objective, the robust front on
  the seed means, and an ``unstable`` flag where the outcome flips between seeds.

All of them are written beside the previous ones and swapped in when every unit is done
(:func:`run_retrain`); a stopped or killed run leaves ``retrain.partial/``, which the next one
resumes.

The training itself (:func:`train_one`) is plain torch; only :func:`run_retrain` touches Ray.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairsearch.analysis.pareto.analysis import outcomes
from fairsearch.analysis.pareto.front import is_pareto_front, loss_matrix
from fairsearch.families import TrialSettings, get_family
from fairsearch.families import train_one as family_train_one
from fairsearch.families._factory import check_trusted
from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.files import read_json, read_parquet
from fairsearch.io.lineage import LINEAGE_FILE, fingerprint, lineage_with
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.nets import DivergenceError
from fairsearch.spec.constraints import parse_constraint
from fairsearch.spec.schema import Spec, load_spec

__all__ = ["load_model", "plan_retrain", "read_config", "read_weights", "run_retrain", "summarise",
           "train_one", "weights_load"]

#: An objective whose std over seeds exceeds this share of its spread over configs is unstable.
UNSTABLE_SPREAD = 0.25
#: The retrain's staging folder (units as they finish; swapped in when all are done).
PARTIAL = "retrain.partial"
#: A finished unit's mark, written last in its folder: its row of ``retrain.parquet``.
UNIT_MARK = "row.json"
#: In ``retrain/``: the trivial predictor's scores (``reference.json``) and the test labels
#: (``test_y.npy``) that the decision judges every model's task metric against.
REFERENCE, TEST_Y = "reference.json", "test_y.npy"


def plan_retrain(trials: pd.DataFrame, pareto: pd.DataFrame, top_k: int) -> list[dict[str, Any]]:
    """The configurations to retrain, at most ``top_k``: the Pareto stage's candidates in their
    order (``candidate``; the chosen one alone in run folders without that column), then the
    other front members by rank and number. None when no trial completed. A configuration whose
    parameters equal those of one already planned is skipped: samplers such as NSGA-II can
    propose an exact copy of an earlier configuration, and both copies sit on the front with
    the same objectives."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, but got {top_k}")
    if len(pareto) == 0 or not pareto["on_front"].astype(bool).any():
        return []
    table = pareto.copy()
    if "candidate" not in table:
        table["candidate"] = np.where(table["chosen"].astype(bool), 0, np.nan)
    table["_order"] = pd.to_numeric(table["candidate"], errors="coerce").astype(
        "float64").fillna(np.inf)
    table = table[np.isfinite(table["_order"]) | table["on_front"].astype(bool)]
    table = table.sort_values(["_order", "rank", "number"], kind="stable")
    rows = trials.set_index("trial_id")
    plan: list[dict[str, Any]] = []
    for tid in table["trial_id"]:
        if len(plan) == top_k:
            break
        row = rows.loc[tid]
        params = {
            c.removeprefix("param."): _plain(row[c])
            for c in rows.columns
            if c.startswith("param.") and not _missing(row[c])
        }
        if any(p["params"] == params for p in plan):
            continue
        plan.append({"config_id": f"trial-{int(row['number'])}", "number": int(row["number"]),
                     "trial_id": tid, "params": params})
    return plan


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def train_one(model: str, params: dict[str, Any], data: Any, *, seed: int, epochs: int,
              batch_size: int, device: str = "cpu", model_args: dict[str, Any] | None = None,
              rank: int = 0, world_size: int = 1, prepare_module: Any = None,
              split_seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Train one configuration with one seed; returns metrics, state dict and test outputs.

    ``split_seed`` (the spec's ``search.seed``) chooses the validation rows, the search's own:
    only initialisation and data order change with ``seed``.

    ``metrics`` are on the validation split (as in the search), ``test_metrics`` the same names on
    the test split; ``meta`` is what :func:`load_model` needs to rebuild the model.
    """
    settings = TrialSettings(epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                             model=model_args or {}, rank=rank, world_size=world_size,
                             prepare_module=prepare_module, split_seed=split_seed)  # fmt: skip
    return family_train_one(get_family(model), params, data, settings)


def _task(model: str, params: dict[str, Any], data: Any, seed: int, epochs: int,
          batch_size: int, model_args: dict[str, Any] | None = None, *,
          lane: Any = None, split_seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """One (config, seed); any failure is returned as a status, never raised. ``lane``: the
    lane's :class:`~fairsearch.executor.lanes.LaneContext` (device, rank, data parallelism)."""
    start = time.time()
    try:
        device = lane.device if lane is not None else (
            "cuda" if torch.cuda.is_available() else "cpu")
        dp = {"rank": lane.rank, "world_size": lane.world_size,
              "prepare_module": lane.prepare_module} if lane is not None else {}
        out = train_one(model, params, data, seed=seed, epochs=epochs, batch_size=batch_size,
                        device=device, model_args=model_args, split_seed=split_seed,
                        **dp)  # fmt: skip
        out["status"], out["error"] = "completed", None
    except DivergenceError as exc:
        out = {"status": "diverged", "error": str(exc), "metrics": {}, "test_metrics": {}}
    except Exception as exc:  # noqa: BLE001 - a failed seed is an outcome, recorded
        out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "metrics": {},
               "test_metrics": {}}  # fmt: skip
    out["duration_s"] = time.time() - start
    return out


def _lane_task(item: dict[str, Any], ctx: Any, *, settings: dict[str, Any]) -> dict[str, Any]:
    """The retrain's work function on a lane: one (config, seed) item."""
    return _task(settings["model"], item["params"], ctx.data, int(item["seed"]),
                 settings["epochs"], settings["batch_size"], settings["model_args"], lane=ctx,
                 split_seed=int(settings.get("split_seed", 0)))


def _save(folder: Path, out: dict[str, Any], config: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {**config, "meta": _jsonable(out.get("meta", {})), "status": out["status"],
              "error": out.get("error")}  # fmt: skip
    write_atomic(folder / "config.json", lambda p: p.write_text(json.dumps(config, indent=2)))
    if out["status"] != "completed":
        return
    write_atomic(folder / "model.pt", lambda p: torch.save(out["state"], p))
    for name in ("test_repr", "test_pred"):
        write_atomic(folder / f"{name}.npy", lambda p, a=out[name]: _save_npy(p, a))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return _plain(v)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file handle: np.save would append ".npy" to the temp name
        np.save(fh, array)


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
        raise ValueError(f"{path} is missing: re-run `fairsearch retrain` on the run "
                         f"folder") from None  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({type(exc).__name__}: {exc}): re-run "
                         f"`fairsearch retrain` on the run folder") from None  # fmt: skip
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, but holds {type(config).__name__}: "
                         f"re-run `fairsearch retrain` on the run folder")  # fmt: skip
    return config


def read_weights(path: str | Path) -> dict[str, Any]:
    """A state dict written by the retrain stage (``weights_only``: no code runs);
    ``ValueError`` naming the file and the recovery when it is truncated or not a state dict."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling error means a damaged file
        raise ValueError(f"{path} cannot be loaded ({type(exc).__name__}: {exc}): re-run "
                         f"`fairsearch retrain` on the run folder") from None  # fmt: skip
    if not isinstance(state, dict):
        raise ValueError(f"{path} must hold a state dict, but holds {type(state).__name__}: "
                         f"re-run `fairsearch retrain` on the run folder")  # fmt: skip
    return state


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


def summarise(runs: pd.DataFrame, objectives: list[tuple[str, str]],
              subject_to: tuple[str, ...] = (),
              spreads: dict[str, float] | None = None) -> pd.DataFrame:  # fmt: skip
    """Mean/std per configuration, robust front on the seed means, instability flags.

    ``spreads``: per objective, the range it took over the whole search (default: over the
    retrained configurations); a seed std above 25% of it flags the configuration unstable.
    """
    cols = [f"metric.{m}" for m, _ in objectives]
    runs = runs.assign(**{c: np.nan for c in cols if c not in runs.columns})  # all seeds failed
    ok = runs[runs["status"] == "completed"]
    shown = cols + [f"test.{m}" for m, _ in objectives if f"test.{m}" in ok.columns]
    g = ok.groupby("config_id", sort=False)[shown]
    summary = g.mean().add_suffix(".mean").join(g.std(ddof=0).add_suffix(".std"))
    summary["seeds"] = g.size()
    summary = summary.reindex(pd.Index(runs["config_id"].unique(), name="config_id"))
    summary["seeds"] = summary["seeds"].fillna(0).astype("int64")
    summary = summary.reset_index()
    means = summary[[f"{c}.mean" for c in cols]].to_numpy(dtype=float)
    finite = np.isfinite(means).all(axis=1)
    robust = np.zeros(len(summary), dtype=bool)
    if finite.any():
        robust[finite] = is_pareto_front(loss_matrix(means[finite], [d for _, d in objectives]))
    summary["robust_front"] = robust
    reasons: list[list[str]] = [[] for _ in range(len(summary))]
    tried = runs.groupby("config_id")["status"].agg(list)
    for i, cid in enumerate(summary["config_id"]):
        bad = [st for st in tried[cid] if st != "completed"]
        if 0 < len(bad) < len(tried[cid]):  # some seeds train, others do not
            reasons[i].append(f"{len(bad)} of {len(tried[cid])} seeds {'/'.join(sorted(set(bad)))}")
    for (metric, _), c in zip(objectives, cols, strict=True):
        spread = (spreads or {}).get(metric)
        if spread is None:
            values = summary[f"{c}.mean"].dropna()
            spread = float(values.max() - values.min()) if len(values) else float("nan")
        for i, std in enumerate(summary[f"{c}.std"]):
            if spread > 0 and std > UNSTABLE_SPREAD * spread:
                reasons[i].append(f"{metric} std {std:.3g} > 25% of its range {spread:.3g}")
    for text in subject_to:
        con = parse_constraint(text)
        col = f"metric.{con.metric}"
        if col not in ok.columns:
            continue
        share = ok.assign(_ok=con.plain().holds(ok[col])).groupby("config_id")["_ok"].mean()
        for i, cid in enumerate(summary["config_id"]):
            if 0 < share.get(cid, 0) < 1:
                reasons[i].append(f"'{text}' holds for some seeds only")
    summary["unstable"] = [bool(r) for r in reasons]
    summary["unstable_reason"] = ["; ".join(r) for r in reasons]
    return summary


def run_retrain(run_dir: str | Path, *, top_k: int | None = None, seeds: list[int] | None = None,
                epochs: int | None = None, address: str | None = None,
                quiet: bool = False) -> pd.DataFrame:  # fmt: skip
    """Retrain the chosen configurations of ``run_dir`` on Ray; returns ``retrain.parquet``.

    Transactional, unit by unit (a unit is one configuration x seed): finished units go to
    ``retrain.partial/`` (``models/<config>/seed-<s>/``, with ``row.json`` written last as the
    unit's mark), while the previous ``retrain/``, ``retrain.parquet`` and
    ``retrain_summary.parquet`` stay as they are. When every unit is done the new outputs replace
    them in one commit (:mod:`fairsearch.io.transaction`), the audit's cache ``audit_inputs.npz``
    is dropped with them and ``lineage.json`` records the stage. Stopped by SIGINT/SIGTERM (or
    killed), the finished units are kept; the next run with the same plan and inputs trains only
    the others. Holds the run folder's lock throughout.
    """
    run = Path(run_dir)
    with stage_lock(run):
        return _retrain(run, top_k=top_k, seeds=seeds, epochs=epochs, address=address,
                        quiet=quiet)  # fmt: skip


def _retrain(run: Path, *, top_k: int | None, seeds: list[int] | None, epochs: int | None,
             address: str | None, quiet: bool) -> pd.DataFrame:  # fmt: skip
    from fairsearch.data import load_from_spec
    from fairsearch.executor.lanes import ItemList, LaneScaling, run_lanes
    from fairsearch.executor.ray_start import init_ray, stop_on_signals

    for name in ("spec.yaml", "trials.parquet", "pareto.parquet"):
        if not (run / name).is_file():
            raise ValueError(
                f"RUN_DIR must hold {name} (run the earlier stages), but {run} has none"
            )
    spec: Spec = load_spec(run / "spec.yaml")
    trials = read_parquet(run / "trials.parquet")
    pareto = read_parquet(run / "pareto.parquet")
    subject_to = _subject_to(run, spec)  # pareto.json is read before anything trains
    plan = plan_retrain(trials, pareto, top_k or spec.post.top_k)
    if not plan:
        raise ValueError(f"nothing to retrain: the Pareto front of {str(run)!r} is empty, no "
                         f"trial completed ({outcomes(trials)})")  # fmt: skip
    seeds = list(seeds if seeds is not None else spec.retrain_seeds)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"retrain seeds must be distinct (a repeated seed only repeats its "
                         f"result), but got {seeds}")  # fmt: skip
    n_epochs = epochs or spec.post.retrain_epochs or spec.trial.epochs
    settings = {"model": spec.model, "model_args": dict(spec.model_args), "epochs": n_epochs,
                "batch_size": spec.trial.batch_size, "split_seed": spec.search.seed}  # fmt: skip
    staged = _staging(run, {**settings, "data": dict(spec.data), "inputs": {
        name: fingerprint(run / name) for name in ("trials.parquet", "pareto.parquet")}})
    # The same lanes and ScalingConfig as the search, fed a fixed list of (config, seed) items;
    # the finished ones of an interrupted run are kept.
    items = [{"key": f"{item['config_id']}/seed-{seed}", "params": item["params"], "seed": seed,
              "plan": item} for item in plan for seed in seeds]  # fmt: skip
    rows = _finished_units(staged, {it["key"] for it in items})
    todo = [it for it in items if it["key"] not in rows]
    if rows:  # said even with --quiet: what this run will not train again
        print(f"[retrain] {len(rows)} of {len(items)} (configuration, seed) units were finished "
              f"by an earlier run and are kept; training the other {len(todo)}",
              file=sys.stderr)  # fmt: skip
    stop = threading.Event()

    def kept() -> str:
        return (f"{len(rows)} of {len(items)} (configuration, seed) units are finished and kept "
                f"in {staged}; the previous retrain outputs are unchanged; `fairsearch retrain "
                f"{run}` trains the rest")  # fmt: skip

    def record(entry: dict[str, Any], out: Any) -> None:
        if stop.is_set():  # stopped in flight: not an outcome, trained again on the next run
            return
        item, seed = entry["plan"], entry["seed"]
        out = dict(out)
        out.setdefault("metrics", {})
        out.setdefault("test_metrics", {})
        out.setdefault("duration_s", float(out.get("train_s") or 0.0))
        config = {"family": spec.model, "model": dict(spec.model_args),
                  "config": item["params"], "data": dict(spec.data),
                  "seed": seed, "epochs": n_epochs, "batch_size": spec.trial.batch_size,
                  "trial_id": item["trial_id"]}  # fmt: skip
        unit = staged / "models" / item["config_id"] / f"seed-{seed}"
        _save(unit, out, config)
        row = {"config_id": item["config_id"], "number": item["number"],
               "trial_id": item["trial_id"], "seed": seed,
               "status": out["status"], "error": out.get("error"),
               "duration_s": out["duration_s"],
               **{f"metric.{k}": float(v) for k, v in out["metrics"].items()},
               **{f"test.{k}": float(v) for k, v in out["test_metrics"].items()}}  # fmt: skip
        text = json.dumps(_jsonable(row))
        write_atomic(unit / UNIT_MARK, lambda p: p.write_text(text + "\n"))  # the unit is done
        rows[entry["key"]] = row
        if not quiet:
            print(f"  retrain {len(rows)}/{len(items)}: {item['config_id']} seed {seed} "
                  f"{out['status']} in {out['duration_s']:.1f}s", file=sys.stderr)  # fmt: skip

    data = load_from_spec(spec.data)
    reference = trivial_reference(get_family(spec.model), data, spec.search.seed)
    if todo:
        init_ray(address)
        signals.install()  # ray.init put its own SIGTERM handler (a stack dump) in place
        received: list[int] = []
        with signals.interruptible(kept), stop_on_signals(stop, received):
            run_lanes(ItemList(todo, record), functools.partial(_lane_task, settings=settings),
                      data,
                      lanes=max(1, min(spec.search.max_concurrent, len(todo))),
                      scaling=LaneScaling.from_trial(spec.trial),
                      storage=str((run / "ray").resolve()), stop=stop,
                      name="retrain")  # fmt: skip
        if stop.is_set():
            raise signals.Interrupted(received[0] if received else signal.SIGINT, kept())
    signals.check(kept())
    table = pd.DataFrame([rows[it["key"]] for it in items]).sort_values(
        ["config_id", "seed"], kind="stable", ignore_index=True)
    objectives = [(o.metric, o.direction) for o in spec.objectives]
    spreads = {}
    for metric, _ in objectives:
        values = trials.loc[trials["status"] == "completed", f"objective.{metric}"].astype(float)
        spreads[metric] = float(values.max() - values.min()) if len(values) else float("nan")
    summary = summarise(table, objectives, subject_to, spreads)
    write_atomic(staged / "retrain.parquet", lambda p: table.to_parquet(p, index=False))
    write_atomic(staged / "retrain_summary.parquet", lambda p: summary.to_parquet(p, index=False))
    lineage = lineage_with(run, "retrain")
    write_atomic(staged / LINEAGE_FILE, lambda p: p.write_text(lineage))
    (staged / "models").mkdir(exist_ok=True)
    text = json.dumps(_jsonable(reference), indent=2)
    write_atomic(staged / "models" / REFERENCE, lambda p: p.write_text(text + "\n"))
    test_y = np.asarray(data.subset("test").y).reshape(-1)
    write_atomic(staged / "models" / TEST_Y, lambda p: _save_npy(p, test_y))
    signals.check(kept())
    commit(run, "retrain", [(f"{PARTIAL}/models", "retrain"),
                            (f"{PARTIAL}/retrain.parquet", "retrain.parquet"),
                            (f"{PARTIAL}/retrain_summary.parquet", "retrain_summary.parquet"),
                            (f"{PARTIAL}/{LINEAGE_FILE}", LINEAGE_FILE)],
           remove=["audit_inputs.npz", PARTIAL])  # fmt: skip
    return table


def trivial_reference(family: Any, data: Any, split_seed: int) -> dict[str, Any]:
    """The trivial predictor of ``data``'s task (the majority class of the training rows, or
    their mean for regression) and the family's utility metrics of it on the validation rows
    (those the search judged on) and on the test rows."""
    from fairsearch.data import split_train_val

    train, val = split_train_val(data, split_seed)
    y = np.asarray(train.y).reshape(-1)
    if data.task == "regression":
        constant: Any = float(y.mean())
        label, n_classes = f"the training mean ({constant:.4g})", 0
    else:
        values, counts = np.unique(y, return_counts=True)
        constant = int(values[counts.argmax()])
        names = data.classes.get("y")
        name = names[constant] if names and constant < len(names) else constant
        label = f"the majority class ({name})"
        n_classes = int(max(np.max(np.asarray(data.y)), y.max())) + 1

    def score(part: Any) -> dict[str, float]:
        if not len(part.y):
            return {}
        const = np.full(len(part.y), constant, dtype=np.asarray(part.y).dtype)
        return family.utility_scores(part.y, const, task=data.task, n_classes=n_classes)

    return {"task": data.task, "constant": constant, "label": label, "n_classes": n_classes,
            "val": score(val), "test": score(data.subset("test"))}


def _staging(run: Path, settings: dict[str, Any]) -> Path:
    """``retrain.partial/`` for these settings: kept from an interrupted run with the same
    settings and inputs, else started afresh."""
    staged = run / PARTIAL
    want = json.dumps(_jsonable(settings), sort_keys=True, default=str)
    plan = staged / "plan.json"
    if staged.exists():
        try:
            same = json.dumps(json.loads(plan.read_text()), sort_keys=True) == want
        except (OSError, ValueError):
            same = False
        if not same:
            print(f"[retrain] {staged} was left by a run with other settings or inputs: "
                  f"starting afresh", file=sys.stderr)  # fmt: skip
            shutil.rmtree(staged)
    (staged / "models").mkdir(parents=True, exist_ok=True)
    if not plan.is_file():
        write_atomic(plan, lambda p: p.write_text(want + "\n"))
    return staged


def _finished_units(staged: Path, keys: set[str]) -> dict[str, dict[str, Any]]:
    """key -> row of each finished unit in the plan; an unfinished unit (no mark, a damaged
    mark) or one no longer planned is removed."""
    rows: dict[str, dict[str, Any]] = {}
    for unit in sorted((staged / "models").glob("*/seed-*")):
        key = f"{unit.parent.name}/{unit.name}"
        try:
            row = json.loads((unit / UNIT_MARK).read_text()) if key in keys else None
        except (OSError, ValueError):
            row = None
        if isinstance(row, dict) and (row.get("status") != "completed" or weights_load(unit)):
            rows[key] = row
        else:
            shutil.rmtree(unit)
    return rows


def _subject_to(run: Path, spec: Spec) -> tuple[str, ...]:
    """The constraints of the rule the Pareto stage used (a ``--select`` override included)."""
    path = run / "pareto.json"
    meta = read_json(path) if path.is_file() else {}
    select = meta.get("select") if isinstance(meta, dict) else None
    if select is not None and not (isinstance(select, dict)
                                   and isinstance(select.get("subject_to", []), list)):
        raise ValueError(f"{path}: `select` must be a mapping with a `subject_to` list, but got "
                         f"{select!r}; to recover: `fairsearch pareto {run}`")  # fmt: skip
    return tuple(select.get("subject_to") or ()) if select else tuple(spec.post.subject_to)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder with pareto.parquet")
    parser.add_argument("--top-k", type=int, default=None, help="default: the spec's post.top_k")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--address", default=None)
    parser.add_argument("--quiet", action="store_true")


def main(args: argparse.Namespace) -> int:
    table = run_retrain(args.run_dir, top_k=args.top_k, seeds=args.seeds, epochs=args.epochs,
                        address=args.address, quiet=args.quiet)  # fmt: skip
    print(f"retrained {table['config_id'].nunique()} configurations x {table['seed'].nunique()} "
          f"seeds: {(table['status'] == 'completed').sum()} completed")  # fmt: skip
    return 0
