"""The search's bookkeeping: Optuna ask/tell on a persistent study, and the run folder's tables.

No Ray here. :class:`Recorder` asks the study for configurations, turns each trial's report (a
plain dict, see :func:`fairsearch.search.engine`) into an Optuna ``tell`` and rows of
``trials.parquet``/``history.parquet``; a non-finite objective, a diverged or crashed trial, or
one that never reported is told as ``FAIL`` with its reason, so no Optuna trial stays ``RUNNING``
and the search goes on. Every table is written atomically (temporary file, then ``os.replace``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from fairsearch.io.atomic import write_atomic
from fairsearch.spec.schema import Objective, Spec
from fairsearch.spec.space import Space, sample

__all__ = [
    "Recorder",
    "history_frame",
    "make_sampler",
    "open_study",
    "trials_frame",
    "write_atomic",
    "write_spec",
]

STATUSES = ("completed", "failed", "diverged", "interrupted")
INTERRUPTED = "interrupted: the search stopped before this trial reported"


# ----------------------------------------------------------------------------- atomic files
def write_table(df: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_spec(spec: Spec, path: Path) -> None:
    text = yaml.safe_dump(spec.to_dict(), sort_keys=False)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))


# ----------------------------------------------------------------------------- the study
def make_sampler(algorithm: str, seed: int, trials: int = 250) -> optuna.samplers.BaseSampler:
    """Seeded Optuna sampler for ``nsga2`` | ``tpe`` | ``random``.

    NSGA-II's population is ``trials // 5`` clamped to [4, 50] (Optuna's default, 50, would make
    a 20-trial search pure random sampling).
    """
    if algorithm == "nsga2":
        population = int(min(50, max(4, trials // 5)))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"algorithm must be one of nsga2, tpe, random, but got {algorithm!r}")


def open_study(spec: Spec, run_dir: Path, *, resume: bool = False) -> optuna.Study:
    """Create (or, resuming, load) the run's SQLite study.

    Resuming re-seeds the sampler with ``seed + number of existing trials``: a seeded
    random generator restarted with the same seed would re-propose the same configurations.
    """
    storage = f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"
    seed = spec.search.seed
    if resume:
        existing = optuna.load_study(study_name=spec.name, storage=storage)
        seed += len(existing.trials)
    return optuna.create_study(
        study_name=spec.name,
        storage=storage,
        directions=[o.direction for o in spec.objectives],
        sampler=make_sampler(spec.search.algorithm, seed, spec.search.trials),
        load_if_exists=resume,
    )


class Recorder:
    """Asks Optuna for configurations and records what each trial reported.

    ``report`` dicts carry: ``number``, ``status`` (completed | failed | diverged), ``metrics``,
    ``error``, ``history`` (list of per-epoch dicts), ``run_id``, ``node``, ``seed``,
    ``started_at``/``ended_at`` (UNIX seconds).
    """

    def __init__(
        self,
        study: optuna.Study,
        spec: Spec,
        run_dir: Path,
        *,
        on_change: Callable[[Recorder], None] | None = None,
    ) -> None:
        self.study, self.spec, self.run_dir = study, spec, Path(run_dir)
        self.on_change = on_change
        self.pending: dict[int, tuple[optuna.Trial, str]] = {}  # number -> (trial, run id)
        self.history: list[dict[str, Any]] = []
        hist = self.run_dir / "history.parquet"
        if hist.exists():
            self.history = pd.read_parquet(hist).to_dict("records")
        self.started = time.time()
        self.front_size = 0
        self.counts = {s: 0 for s in STATUSES}
        for t in study.get_trials(deepcopy=False):
            if t.state.is_finished():
                self.counts[_status(t)] += 1

    # -- sampling ---------------------------------------------------------------------------
    def recover(self) -> int:
        """Resume: tell every trial still RUNNING (the driver died) as FAIL and re-enqueue its
        configuration so the sampler's proposal is not lost. Returns how many."""
        stale = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for t in stale:
            self.study.tell(t.number, state=TrialState.FAIL)
            self.study.enqueue_trial(dict(t.params), skip_if_exists=False)
            self.counts["interrupted"] += 1
        # A record written to history but not told (killed in between) is dropped.
        told = {t.number for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()
                and "status" in t.user_attrs}  # fmt: skip
        self.history = [h for h in self.history if h["number"] in told]
        self.write_tables()
        return len(stale)

    def done(self) -> int:
        """Trials that count against the budget (every finished one except interrupted)."""
        return sum(v for k, v in self.counts.items() if k != "interrupted")

    def ask(self, k: int, run_id: str) -> list[dict[str, Any]]:
        """Ask Optuna for ``k`` configurations for one Train run."""
        out = []
        for _ in range(k):
            trial = self.study.ask()
            params = sample(trial, self.spec.space)
            trial.set_user_attr("run_id", run_id)
            self.pending[trial.number] = (trial, run_id)
            out.append({"number": trial.number, "params": params})
        self._changed()
        return out

    # -- telling ----------------------------------------------------------------------------
    def record(self, report: Mapping[str, Any]) -> None:
        """Tell Optuna one trial's outcome and add its rows (ignored when already told)."""
        number = int(report["number"])
        if number not in self.pending:
            return  # a duplicate (a restarted Train run re-reports) or an unknown trial
        trial, run_id = self.pending.pop(number)
        status = report.get("status", "failed")
        metrics = {k: float(v) for k, v in (report.get("metrics") or {}).items()}
        values = [metrics.get(o.metric, math.nan) for o in self.spec.objectives]
        error = report.get("error")
        if status == "completed" and not all(math.isfinite(v) for v in values):
            status = "failed"
            missing = {o.metric: metrics.get(o.metric) for o in self.spec.objectives}
            error = f"objective values must be finite numbers, but got {missing}"
        attrs = {
            "status": status,
            "error": error,
            "metrics": metrics,
            "seed": report.get("seed"),
            "node": report.get("node"),
            "started_at": report.get("started_at"),
            "ended_at": report.get("ended_at"),
            "run_id": run_id,
            "timing": report.get("timing"),
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        for row in report.get("history") or []:
            self.history.append({"trial_id": trial_id(run_id, number), "number": number, **row})
        if status == "completed":
            self.study.tell(trial, values)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
        self.counts[status] += 1
        self._changed(told=True)

    def fail_unreported(self, run_id: str | None, reason: str) -> int:
        """Tell every pending trial of ``run_id`` (all, when None) as failed with ``reason``."""
        numbers = [n for n, (_, r) in self.pending.items() if run_id is None or r == run_id]
        now = time.time()
        for n in numbers:
            self.record({"number": n, "status": "failed", "error": reason, "started_at": now,
                         "ended_at": now})  # fmt: skip
        return len(numbers)

    def _changed(self, told: bool = False) -> None:
        if told:
            self.write_tables()
            if len(self.spec.objectives) > 1:
                self.front_size = len(self.study.best_trials)
            else:
                self.front_size = int(self.counts["completed"] > 0)
        if self.on_change is not None:
            self.on_change(self)

    def write_tables(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        write_table(history_frame(self.history), self.run_dir / "history.parquet")
        write_table(trials_frame(trials, self.spec.space, self.spec.objectives),
                    self.run_dir / "trials.parquet")  # fmt: skip


def trial_id(run_id: str, number: int) -> str:
    """A trial's id: the Ray Tune trial (one Train run) and the Optuna number it trained."""
    return f"{run_id}_n{number:04d}"


def _status(t: optuna.trial.FrozenTrial) -> str:
    if t.state == TrialState.COMPLETE:
        return "completed"
    return t.user_attrs.get("status", "interrupted")


# ----------------------------------------------------------------------------- tables
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
        a = t.user_attrs
        status = _status(t)
        metrics = a.get("metrics") or {}
        run_id = a.get("run_id") or ""
        started, ended = a.get("started_at"), a.get("ended_at")
        row: dict[str, Any] = {
            "trial_id": trial_id(run_id, t.number),
            "run_id": run_id,
            "number": t.number,
            "status": status,
            "error": a.get("error") if status != "interrupted" else INTERRUPTED,
            "seed": a.get("seed"),
            "started_at": started,
            "ended_at": ended,
            "duration_s": (ended - started) if started is not None and ended is not None else None,
            "node": a.get("node"),
        }
        for p in space:
            row[f"param.{p.name}"] = t.params.get(p.name)
        for o in objectives:
            row[f"objective.{o.metric}"] = metrics.get(o.metric) if status == "completed" else None
        for k, v in metrics.items():
            if k not in names:
                row[f"metric.{k}"] = v
        rows.append(row)
    return _typed_trials(pd.DataFrame(rows), space, objectives)


def _typed_trials(df: pd.DataFrame, space: Space, objectives: list[Objective]) -> pd.DataFrame:
    base = ["trial_id", "run_id", "number", "status", "error", "seed", "started_at", "ended_at",
            "duration_s", "node"]  # fmt: skip
    cols = base + [f"param.{p.name}" for p in space] + [f"objective.{o.metric}" for o in objectives]
    for c in cols:
        if c not in df:
            df[c] = None
    extra = sorted(c for c in df.columns if c not in cols)
    df = df[cols + extra].copy()
    for c in ("trial_id", "run_id", "status", "error", "node"):
        df[c] = df[c].astype("string")
    df["number"] = df["number"].astype("int64")
    df["seed"] = df["seed"].astype("Int64")
    for c in ("started_at", "ended_at"):
        df[c] = pd.to_datetime(df[c].astype("float64"), unit="s", utc=True).astype(
            "datetime64[us, UTC]"
        )
    for c in ["duration_s", *(f"objective.{o.metric}" for o in objectives), *extra]:
        df[c] = df[c].astype("float64")
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
    """One row per trial and epoch: ``trial_id``, ``number``, ``epoch``, then float64 terms."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame({"trial_id": pd.Series(dtype="string"),
                             "number": pd.Series(dtype="int64"),
                             "epoch": pd.Series(dtype="int64")})  # fmt: skip
    df["trial_id"] = df["trial_id"].astype("string")
    df["number"] = df["number"].astype("int64")
    df["epoch"] = df["epoch"].astype("int64")
    terms = sorted(c for c in df.columns if c not in ("trial_id", "number", "epoch"))
    for c in terms:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df[["trial_id", "number", "epoch", *terms]].sort_values(
        ["number", "epoch"], ignore_index=True
    )
