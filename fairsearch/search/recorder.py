"""The search's bookkeeping: Optuna ask/tell on a persistent study, and the run folder's tables.

No Ray here. :class:`Recorder` is the search's work source for the lanes
(:mod:`fairsearch.executor.lanes`): it asks the study for one configuration when a lane is free
(never more than ``max_concurrent`` asked and untold), turns each result into one user attribute
(``record``) and one ``tell``, and rewrites ``trials.parquet``/``history.parquet`` from the
study. A non-finite objective, a diverged or crashed configuration, or one whose lane died is
told as ``FAIL`` with its reason, so the search goes on.

The study is the truth: the tables are a function of it (every value they hold, the per-epoch
history included, is in the trial's ``record``), written atomically after each tell, and rebuilt
by :meth:`Recorder.recover` on resume. A kill between the ``record`` write and the ``tell`` leaves
a ``RUNNING`` trial whose record may say ``completed``: recovery tells it ``FAIL`` and it counts
as ``interrupted``, like the configurations in flight when SIGINT/SIGTERM stopped the search.
Interrupted configurations do not count against ``search.trials``; resuming enqueues each one
once (``retry_of``), so it is trained again with the same parameters.

A proposal that repeats a completed configuration exactly (NSGA-II copies a parent unchanged
now and then) is not trained again: every trial of a search trains with the same seeds, so it
would only reproduce the earlier result. The trial is told that result at once (metrics and
history; ``same_as``: the earlier trial's number) and counts against the budget, and the
sampler is asked again for the free lane.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from fairsearch.io.atomic import write_atomic
from fairsearch.spec.space import Space, complete, sample
from fairsearch.spec.validated import Objective, Spec

__all__ = [
    "LEGACY_STUDY_FILE",
    "STUDY_FILE",
    "Recorder",
    "history_frame",
    "load_run_study",
    "make_sampler",
    "open_study",
    "settle_journal",
    "study_file",
    "study_storage",
    "trials_frame",
    "write_atomic",
    "write_spec",
]

STATUSES = ("completed", "failed", "diverged", "interrupted")
INTERRUPTED = "interrupted: the search stopped before this configuration finished"
RECORD = "record"  # the one user attribute holding a trial's outcome
RETRY_OF = "retry_of"  # user attribute of a trial enqueued to re-run an interrupted one
SAME_AS = "same_as"  # record key: the completed trial whose configuration a trial repeats


# ----------------------------------------------------------------------------- atomic files
def write_table(df: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_spec(spec: Spec, path: Path) -> None:
    text = yaml.safe_dump(spec.to_dict(), sort_keys=False)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))


# ----------------------------------------------------------------------------- the sampler
def startup_trials(trials: int) -> int:
    """Random configurations before TPE/GP model the results: a quarter of the budget, 4 to 10."""
    return int(max(4, min(10, trials // 4)))


def make_sampler(algorithm: str, seed: int, trials: int = 250, *,
                 max_concurrent: int = 1) -> optuna.samplers.BaseSampler:  # fmt: skip
    """Seeded Optuna sampler for ``nsga2`` | ``tpe`` | ``random`` | ``gp``.

    NSGA-II's population is ``trials // 5`` clamped to [4, 50] (Optuna's default, 50, would make
    a 20-trial search pure random sampling); TPE and GP start after :func:`startup_trials`
    random ones; TPE uses ``constant_liar`` when configurations run in parallel. Constraints
    (``post.select.subject_to``) reach NSGA-II, TPE and GP through ``Trial.set_constraint``
    before each tell (Optuna 5's replacement for ``constraints_func``); random ignores them.
    """
    if algorithm == "nsga2":
        population = int(min(50, max(4, trials // 5)))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(trials),
                                          constant_liar=max_concurrent > 1)
    if algorithm == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(trials),
                                         warn_independent_sampling=False)
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"algorithm must be one of nsga2, tpe, random, gp, but got {algorithm!r}")


# ----------------------------------------------------------------------------- the study file
#: The run folder's study: Optuna's append-only journal (one JSON line per operation). Ask and
#: tell cost a fraction of what they cost on SQLite (``benchmarks/bench_orchestration.py``
#: prints both), and the file needs no SQLite locking (Optuna locks appends with a symlink,
#: which works on NFS).
STUDY_FILE = "study.journal"
#: The SQLite study of run folders made by earlier versions: still opened, resumed and repaired.
LEGACY_STUDY_FILE = "study.db"
_JOURNAL_LOCK_SUFFIX = ".lock"  # Optuna's lock beside the journal while a process appends


def study_file(run_dir: str | Path) -> Path:
    """The study of a run folder: its journal, or the SQLite file of an older run folder."""
    run = Path(run_dir)
    legacy, journal = run / LEGACY_STUDY_FILE, run / STUDY_FILE
    return legacy if legacy.is_file() and not journal.exists() else journal


def study_storage(path: str | Path) -> Any:
    """Optuna storage for a study file (journal, or SQLite for a ``.db``)."""
    path = Path(path)
    if path.suffix == ".db":
        return f"sqlite:///{path.resolve()}"
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


def load_run_study(run_dir: str | Path, name: str | None = None) -> optuna.Study:
    """A run folder's study, read as it is (``name``: the spec's, default: the only study)."""
    storage = study_storage(study_file(run_dir))
    if name is None:
        name = optuna.get_all_study_names(storage)[0]
    return optuna.load_study(study_name=name, storage=storage)


def settle_journal(path: str | Path) -> None:
    """Before a driver appends to a journal a killed driver left: drop a torn last line (an
    append cut short by the kill: the operation never happened) and the stale append lock.
    Only for the holder of the run folder's lock (:class:`~fairsearch.io.lock.RunLock`)."""
    path = Path(path)
    if path.suffix == ".db" or not path.is_file():
        return
    Path(f"{path}{_JOURNAL_LOCK_SUFFIX}").unlink(missing_ok=True)
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        keep, offset = 0, 0
        f.seek(0)
        for line in f:  # the last complete line's end
            offset += len(line)
            if line.endswith(b"\n"):
                keep = offset
        f.truncate(keep)


def open_study(spec: Spec, run_dir: Path, *, resume: bool = False) -> optuna.Study:
    """Create (or, resuming, load) the run's study (:data:`STUDY_FILE`).

    Resuming re-seeds the sampler with ``seed + number of existing trials``: a seeded
    random generator restarted with the same seed would re-propose the same configurations.
    """
    path = study_file(run_dir) if resume else Path(run_dir) / STUDY_FILE
    if resume:
        settle_journal(path)
    storage = study_storage(path)
    seed = spec.search.seed
    if resume:
        existing = optuna.load_study(study_name=spec.name, storage=storage)
        seed += len(existing.trials)
    sampler = make_sampler(spec.search.algorithm, seed, spec.search.trials,
                           max_concurrent=spec.search.max_concurrent)  # fmt: skip
    return optuna.create_study(
        study_name=spec.name,
        storage=storage,
        directions=[o.direction for o in spec.objectives],
        sampler=sampler,
        load_if_exists=resume,
    )


def status_of(t: optuna.trial.FrozenTrial) -> str:
    """completed | failed | diverged | interrupted (the study is the truth: a record that says
    completed on a trial that is not COMPLETE is interrupted)."""
    if t.state == TrialState.COMPLETE:
        return "completed"
    status = (t.user_attrs.get(RECORD) or {}).get("status")
    if t.state == TrialState.FAIL and status in ("failed", "diverged"):
        return status
    return "interrupted"


class Recorder:
    """The search's :class:`~fairsearch.executor.lanes.Source`: asks, tells, tabulates.

    A result (from a lane) carries ``key`` (the trial number), ``status`` (completed | failed |
    diverged), ``metrics``, ``error``, ``history`` (per-epoch dicts), ``seed``, ``lane``,
    ``attempt``, ``node``, ``node_id``, ``started_at``/``ended_at`` (UNIX s), ``train_s``/``overhead_s``.
    """

    def __init__(self, study: optuna.Study, spec: Spec, run_dir: Path, *,
                 on_change: Callable[[Recorder], None] | None = None,
                 background: bool = False) -> None:  # fmt: skip
        self.study, self.spec, self.run_dir = study, spec, Path(run_dir)
        self.on_change = on_change
        # ``background``: tables and progress are rewritten by a thread, off the lanes' path
        self._wake = threading.Event() if background else None
        self._writer: threading.Thread | None = None
        self._closing = False
        self.constraints = spec.post.constraints
        self.pending: dict[int, optuna.Trial] = {}
        # configurations asked for a free lane that did not share its population's shape: the
        # next free lanes take them before anything new is asked (still asked and untold)
        self.ready: list[list[tuple[int, dict[str, Any]]]] = []
        self.family = spec.family
        self.untold_at_ask: list[int] = []  # asked-and-untold count at each ask (instrumented)
        self.peak_untold = 0
        self.front_size = 0
        self.counts = {s: 0 for s in STATUSES}
        self.started = time.time()
        self._dirty = False
        # completed configurations: parameters -> (number, objective values, record)
        self._completed: dict[str, tuple[int, list[float], dict[str, Any]]] = {}
        self._recount()

    def _recount(self) -> None:
        self.counts = {s: 0 for s in STATUSES}
        for t in self.study.get_trials(deepcopy=False):
            if t.state.is_finished():
                self.counts[status_of(t)] += 1
            if t.state == TrialState.COMPLETE:
                self._remember(t.number, t.params, list(t.values), t.user_attrs.get(RECORD) or {})

    def _remember(self, number: int, params: Mapping[str, Any], values: list[float],
                  record: Mapping[str, Any]) -> None:  # fmt: skip
        self._completed.setdefault(_config_key(params), (number, values, dict(record)))

    # -- resume -----------------------------------------------------------------------------
    def recover(self) -> list[int]:
        """Resume: trials left RUNNING by a dead driver are told FAIL (interrupted); every
        interrupted configuration not yet re-enqueued is enqueued once. Returns the numbers
        enqueued. Tables are rebuilt from the study."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(t.number, state=TrialState.FAIL)
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get(RETRY_OF) for t in trials}
        enqueued = []
        for t in trials:
            # a trial killed between its ask and its last parameter held no configuration yet:
            # nothing to retry (the sampler proposes a fresh one in its place)
            if t.state.is_finished() and status_of(t) == "interrupted" and t.params and \
                    complete(t.params, self.spec.space) and t.number not in retried:  # fmt: skip
                self.study.enqueue_trial(dict(t.params), user_attrs={RETRY_OF: t.number})
                enqueued.append(t.number)
        self._recount()
        self.write_tables()
        return enqueued

    def done(self) -> int:
        """Trials that count against the budget (every finished one except interrupted)."""
        return sum(v for k, v in self.counts.items() if k != "interrupted")

    def remaining(self) -> int:
        """Configurations still to ask for."""
        return max(0, self.spec.search.trials - self.done() - len(self.pending))

    # -- the lanes' source ------------------------------------------------------------------
    def capacity(self) -> int:
        """The most configurations ever asked and untold: ``population x max_concurrent``."""
        return self.spec.search.population * self.spec.search.max_concurrent

    def ask(self, lane: int = 0) -> dict[str, Any] | None:
        """Work for a free lane, or None when the budget is asked for: one configuration, or a
        population of up to ``search.population`` configurations that share their shapes
        (:meth:`ModelFamily.population_key`). A configuration with no partner trains alone:
        the population size is an upper bound, never a wait."""
        if not self.ready:
            batch: list[tuple[int, dict[str, Any]]] = []
            while (self.remaining() > 0 and len(batch) < self.spec.search.population
                   and len(self.pending) < self.capacity()):  # fmt: skip
                untold = len(self.pending)
                trial = self.study.ask()
                params = sample(trial, self.spec.space)
                self.untold_at_ask.append(untold)
                self.peak_untold = max(self.peak_untold, untold + 1)
                earlier = self._completed.get(_config_key(params))
                if earlier is not None:
                    self._tell_repeat(trial, *earlier)
                    continue
                self.pending[trial.number] = trial
                batch.append((trial.number, params))
            groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for number, params in batch:
                groups.setdefault(self.family.population_key(params), []).append((number, params))
            self.ready.extend(groups.values())
        if not self.ready:
            return None
        group = self.ready.pop(0)
        seeds = list(self.spec.search.training_seeds)
        if len(group) == 1:
            number, params = group[0]
            return {"key": number, "params": params, "attempt": 0, "seed": seeds[0],
                    "seeds": seeds}  # fmt: skip
        return {"key": population_key([n for n, _ in group]), "attempt": 0, "seed": seeds[0],
                "seeds": seeds, "members": [{"key": n, "params": p} for n, p in group]}  # fmt: skip

    def _tell_repeat(self, trial: optuna.Trial, number: int, values: list[float],
                     record: Mapping[str, Any]) -> None:  # fmt: skip
        """Tell ``trial``, a repeat of completed trial ``number``, that trial's result."""
        now = time.time()
        self._conclude(trial, {**record, SAME_AS: number, "lane": None, "node": None,
                               "node_id": None, "attempt": None, "train_s": 0.0,
                               "overhead_s": 0.0, "started_at": now, "ended_at": now},
                       values)  # fmt: skip

    def tell(self, lane: int, result: Mapping[str, Any]) -> None:
        """Record one configuration's outcome, or each member's of a population (ignored when
        not pending: a duplicate). A population's lane timings are shared out among its
        members (``train_s``/``overhead_s`` divided by its size)."""
        if is_population(result["key"]):
            numbers = list(result["key"][1:])
            members = {int(m["key"]): m for m in result.get("members") or []}
            shared = {k: result.get(k) for k in ("lane", "attempt", "node", "node_id",
                                                 "started_at", "ended_at")}  # fmt: skip
            for k in ("train_s", "overhead_s"):
                if result.get(k) is not None:
                    shared[k] = float(result[k]) / len(numbers)
            for n in numbers:  # a member the work did not report shares the population's fate
                own = members.get(n) or {"status": result.get("status", "failed"),
                                         "error": result.get("error") or "no result for this member"}
                self._tell_one({**own, **{k: v for k, v in shared.items() if v is not None},
                                "key": n})  # fmt: skip
            return
        self._tell_one(result)

    def _tell_one(self, result: Mapping[str, Any]) -> None:
        number = int(result["key"])
        trial = self.pending.pop(number, None)
        if trial is None:
            return
        status = result.get("status", "failed")
        metrics = {k: float(v) for k, v in (result.get("metrics") or {}).items()}
        values = [metrics.get(o.metric, math.nan) for o in self.spec.objectives]
        error = result.get("error")
        if status == "completed" and not all(math.isfinite(v) for v in values):
            status = "failed"
            missing = {o.metric: metrics.get(o.metric) for o in self.spec.objectives}
            error = f"objective values must be finite numbers, but got {missing}"
        record = {
            "status": status, "error": error, "metrics": metrics,
            "history": list(result.get("history") or []),
            **{k: result.get(k) for k in ("seed", "seeds", "seed_metrics", "seed_se", "lane",
                                          "attempt", "node", "node_id", "started_at", "ended_at",
                                          "train_s", "overhead_s")},
        }  # fmt: skip
        self._conclude(trial, record, values)

    def _conclude(self, trial: optuna.Trial, record: dict[str, Any], values: list[float]) -> None:
        """Write ``record`` with its constraint violations (from its metrics), then tell the
        study: ``values`` when the record says completed, FAIL otherwise."""
        metrics, se = record["metrics"], record.get("seed_se") or {}
        n_seeds = len(record.get("seeds") or [record.get("seed")])
        violations = [c.violation(metrics.get(c.metric, math.nan), se.get(c.metric), n_seeds)
                      for c in self.constraints]  # fmt: skip
        record["constraints"] = [v if math.isfinite(v) else 1e9 for v in violations]
        trial.set_user_attr(RECORD, record)  # written before the tell: see the module doc
        for constraint, violation in zip(self.constraints, record["constraints"], strict=True):
            trial.set_constraint(str(constraint), violation)  # <= 0: the constraint holds
        status = record["status"]
        if status == "completed":
            self.study.tell(trial, values)
            self._remember(trial.number, trial.params, values, record)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
        self.counts[status] += 1
        self._dirty = True

    def flush(self) -> None:
        """After the lanes got their work: rewrite the tables and the progress line if a result
        came in (kept out of :meth:`tell` so that a lane never waits for it)."""
        if not self._dirty:
            return
        self._dirty = False
        if self._wake is None:
            self._changed(told=True)
            return
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="fairsearch-tables",
                                            daemon=True)  # fmt: skip
            self._writer.start()
        self._wake.set()

    def _write_loop(self) -> None:
        assert self._wake is not None
        while not self._closing:
            self._wake.wait()
            self._wake.clear()
            if not self._closing:
                self._changed(told=True)

    def fail(self, key: Any, reason: str) -> None:
        now = time.time()
        self.tell(-1, {"key": key, "status": "failed", "error": reason, "started_at": now,
                       "ended_at": now})  # fmt: skip

    def finished(self) -> bool:
        return self.remaining() == 0 and not self.pending and not self.ready

    def interrupt_pending(self) -> list[int]:
        """The search stopped: tell every configuration in flight FAIL, ``interrupted`` (it does
        not count against the budget; resume re-runs it)."""
        numbers = sorted(self.pending)
        self.ready.clear()
        for n in numbers:
            trial = self.pending.pop(n)
            self.study.tell(trial, state=TrialState.FAIL)
            self.counts["interrupted"] += 1
        self._dirty = self._dirty or bool(numbers)
        self.flush()
        return numbers

    def close(self) -> None:
        """Stop the table writer, write the tables and keep the largest asked-and-untold count
        of every session in the study."""
        if self._writer is not None and self._wake is not None:
            self._closing = True
            self._wake.set()
            self._writer.join()
            self._writer = None
        self._dirty = False
        self._changed(told=True)
        previous = int(self.study.user_attrs.get("max_untold", 0))
        self.study.set_user_attr("max_untold", max(previous, self.peak_untold))

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
        """Rewrite both tables from the study (atomically, each)."""
        trials = self.study.get_trials(deepcopy=False)
        write_table(history_frame(history_rows(trials)), self.run_dir / "history.parquet")
        write_table(trials_frame(trials, self.spec.space, self.spec.objectives),
                    self.run_dir / "trials.parquet")  # fmt: skip


def population_key(numbers: Iterable[int]) -> tuple[Any, ...]:
    """The key of a population item: ``("population", number, ...)``."""
    return ("population", *(int(n) for n in numbers))


def is_population(key: Any) -> bool:
    return isinstance(key, tuple | list) and len(key) > 1 and key[0] == "population"


def _config_key(params: Mapping[str, Any]) -> str:
    """A configuration's identity: its parameters, in a canonical text form."""
    return json.dumps(dict(params), sort_keys=True, default=repr)


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
        rows.append(row)
    return _typed_trials(pd.DataFrame(rows), space, objectives)


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
    for c in ("seed", "n_seeds", "lane", "attempt", "retry_of", "same_as"):
        df[c] = df[c].astype("Float64").astype("Int64")
    for c in ("started_at", "ended_at"):  # to the nearest microsecond (a round trip is exact)
        micros = (df[c].astype("float64") * 1e6).round()
        df[c] = pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[us, UTC]")
    lists = [c for c in extra if c.startswith("per_seed.")]
    for c in ["duration_s", "train_s", "overhead_s", *(f"objective.{o.metric}" for o in objectives),
              *(c for c in extra if c not in lists)]:
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
