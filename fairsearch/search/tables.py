"""The run folder's search tables, a function of the study: ``trials.parquet`` (one row per
trial: status, parameters, objectives, seed means and spreads) and ``history.parquet`` (per
epoch), both built from each trial's ``record`` user attribute, with their column types.

No Ray here; :class:`~fairsearch.search.recorder.Recorder` writes them after each tell.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from fairsearch.spec.space import Space
from fairsearch.spec.validated import Objective

__all__ = ["INTERRUPTED", "RECORD", "RETRY_OF", "SAME_AS", "STATUSES", "history_frame", "history_rows",
           "status_of", "trial_id", "trials_frame"]  # fmt: skip

STATUSES = ("completed", "failed", "diverged", "pruned", "interrupted")
INTERRUPTED = "interrupted: the search stopped before this configuration finished"
RECORD = "record"  # the one user attribute holding a trial's outcome
RETRY_OF = "retry_of"  # user attribute of a trial enqueued to re-run an interrupted one
SAME_AS = "same_as"  # record key: the completed trial whose configuration a trial repeats


def status_of(t: optuna.trial.FrozenTrial) -> str:
    """completed | failed | diverged | pruned | interrupted (the study is the truth: a record
    that says completed on a trial that is not COMPLETE is interrupted; a PRUNED trial was
    stopped at a rung by ``search.halving``)."""
    if t.state == TrialState.COMPLETE:
        return "completed"
    if t.state == TrialState.PRUNED:
        return "pruned"
    status = (t.user_attrs.get(RECORD) or {}).get("status")
    if t.state == TrialState.FAIL and status in ("failed", "diverged"):
        return status
    return "interrupted"


def trial_id(number: int) -> str:
    """A trial's id in every table: its Optuna number, as in the retrain folders' ``trial-3``."""
    return f"trial-{number}"


def history_rows(trials: Iterable[optuna.trial.FrozenTrial]) -> list[dict[str, Any]]:
    rows = []
    for t in trials:
        if t.state.is_finished() and status_of(t) != "interrupted":
            for row in (t.user_attrs.get(RECORD) or {}).get("history") or []:
                rows.append({"trial_id": trial_id(t.number), "number": t.number, **row})
    return rows


def trials_frame(
    trials: Iterable[optuna.trial.FrozenTrial], space: Space, objectives: Iterable[Objective]
) -> pd.DataFrame:
    """One row per finished trial (schema in docs/schemas.md)."""
    objectives = list(objectives)
    names = {o.metric for o in objectives}
    rows = []
    for t in trials:
        if not t.state.is_finished():
            continue
        status = status_of(t)
        a = (t.user_attrs.get(RECORD) or {}) if status != "interrupted" else {}
        metrics = a.get("metrics") or {}
        started, ended = a.get("started_at"), a.get("ended_at")
        row: dict[str, Any] = {
            "trial_id": trial_id(t.number),
            "number": t.number,
            "status": status,
            "error": a.get("error") if status != "interrupted" else INTERRUPTED,
            "seed": a.get("seed"),
            "n_seeds": len(a.get("seeds") or [a.get("seed")]) if a else None,
            "started_at": started,
            "ended_at": ended,
            "duration_s": (ended - started) if started is not None and ended is not None else None,
            "train_s": a.get("train_s"),
            "overhead_s": a.get("overhead_s"),
            "lane": a.get("lane"),
            "attempt": a.get("attempt"),
            "retry_of": t.user_attrs.get(RETRY_OF),
            "same_as": a.get(SAME_AS),
            "node": a.get("node"),
            "node_id": a.get("node_id"),
        }
        for p in space:
            row[f"param.{p.name}"] = t.params.get(p.name)
        for o in objectives:
            row[f"objective.{o.metric}"] = metrics.get(o.metric) if status == "completed" else None
        for k, v in metrics.items():
            if k not in names:
                row[f"metric.{k}"] = v
        # seed noise: the standard error of each seed mean, and every seed's own value
        completed = status == "completed"
        for k, v in (a.get("seed_se") or {}).items():
            row[f"se.{k}"] = v if completed else None
        for k, v in (a.get("seed_metrics") or {}).items():
            row[f"per_seed.{k}"] = [float(x) for x in v] if completed else None
        row.update(_rung_columns(a))
        rows.append(row)
    return _typed_trials(pd.DataFrame(rows), space, objectives)


def _rung_columns(record: dict[str, Any]) -> dict[str, Any]:
    """With halving on: ``rung.epoch`` (the last rung the trial reached), ``rung.pruned_at``
    (the rung it was stopped at), and each rung term's seed mean (``rung.<term>``) and standard
    error (``rung_se.<term>``) there; nothing for a search without halving."""
    if "rungs" not in record:
        return {}
    rungs = record.get("rungs") or {}
    out: dict[str, Any] = {"rung.epoch": None, "rung.pruned_at": record.get("pruned_at")}
    if rungs:
        last = max(rungs, key=int)
        out["rung.epoch"] = int(last)
        for term, values in rungs[last].items():
            v = [float(x) for x in values]
            mean = sum(v) / len(v)
            se = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else None
            out[f"rung.{term}"], out[f"rung_se.{term}"] = mean, se
    return out


def _typed_trials(df: pd.DataFrame, space: Space, objectives: list[Objective]) -> pd.DataFrame:
    base = ["trial_id", "number", "status", "error", "seed", "n_seeds", "started_at", "ended_at",
            "duration_s", "train_s", "overhead_s", "lane", "attempt", "retry_of", "same_as", "node",
            "node_id"]
    cols = base + [f"param.{p.name}" for p in space] + [f"objective.{o.metric}" for o in objectives]
    for c in cols:
        if c not in df:
            df[c] = None
    extra = sorted(c for c in df.columns if c not in cols)
    df = df[cols + extra].copy()
    for c in ("trial_id", "status", "error", "node", "node_id"):
        df[c] = df[c].astype("string")
    df["number"] = df["number"].astype("int64")
    for c in ("seed", "n_seeds", "lane", "attempt", "retry_of", "same_as",
              *(c for c in ("rung.epoch", "rung.pruned_at") if c in df)):
        df[c] = df[c].astype("Float64").astype("Int64")
    for c in ("started_at", "ended_at"):  # to the nearest microsecond (a round trip is exact)
        micros = (df[c].astype("float64") * 1e6).round()
        df[c] = pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[us, UTC]")
    lists = [c for c in extra if c.startswith("per_seed.")]
    ints = ("rung.epoch", "rung.pruned_at")
    for c in ["duration_s", "train_s", "overhead_s", *(f"objective.{o.metric}" for o in objectives),
              *(c for c in extra if c not in lists and c not in ints)]:
        df[c] = df[c].astype("float64")
    for c in lists:  # list<double> columns: one value per seed
        df[c] = df[c].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                          else [float(x) for x in v])  # fmt: skip
    for p in space:
        c = f"param.{p.name}"
        df[c] = _param_column(df[c], p)
    return df.sort_values("number", ignore_index=True)


def _param_column(col: pd.Series, p: Any) -> pd.Series:
    if p.type == "float":
        return col.astype("float64")
    if p.type == "int":
        return col.astype("Int64")
    kinds = {type(c) for c in p.choices if c is not None}
    if kinds <= {str}:
        return col.astype("string")
    if kinds <= {int}:
        return col.astype("Int64")
    if kinds <= {int, float}:
        return col.astype("float64")
    if kinds <= {bool}:
        return col.astype("boolean")
    return col.map(lambda v: None if v is None else json.dumps(v)).astype("string")


def history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per trial, seed and epoch: ``trial_id``, ``number``, ``seed``, ``epoch``, then
    float64 terms."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame({"trial_id": pd.Series(dtype="string"),
                             "number": pd.Series(dtype="int64"),
                             "seed": pd.Series(dtype="Int64"),
                             "epoch": pd.Series(dtype="int64")})  # fmt: skip
    df["trial_id"] = df["trial_id"].astype("string")
    df["number"] = df["number"].astype("int64")
    df["epoch"] = df["epoch"].astype("int64")
    if "seed" not in df:
        df["seed"] = None
    df["seed"] = df["seed"].astype("Float64").astype("Int64")
    terms = sorted(c for c in df.columns if c not in ("trial_id", "number", "seed", "epoch"))
    for c in terms:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df[["trial_id", "number", "seed", "epoch", *terms]].sort_values(
        ["number", "seed", "epoch"], ignore_index=True
    )
