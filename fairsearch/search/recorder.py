"""The search's bookkeeping: Optuna ask/tell on a persistent study, and the run folder's tables.

No Ray here. The study itself is :mod:`fairsearch.search.study`, the tables
:mod:`fairsearch.search.tables`. :class:`Recorder` is the search's work source for the lanes
(:mod:`fairsearch.executor.lanes`): it asks the study for one configuration when a lane is free
(never more than ``max_concurrent`` asked and untold), turns each result into one user attribute
(``record``) and one ``tell``, and rewrites ``trials.parquet``/``history.parquet`` from the
study. A non-finite objective, a diverged or crashed configuration, or one whose lane died is
told as ``FAIL`` with its reason, so the search goes on. With ``search.halving`` on, a
configuration stopped at a rung is told ``PRUNED`` (:mod:`fairsearch.search.halving`): finished,
counted against the budget, never retried; each ask hands out the rung values told so far.

The study is the truth: the tables are a function of it (every value they hold, the per-epoch
history included, is in the trial's ``record``), written atomically after each tell, and rebuilt
by :meth:`Recorder.recover` on resume. A kill between the ``record`` write and the ``tell`` leaves
a ``RUNNING`` trial whose record may say ``completed``: recovery tells it ``FAIL`` and it counts
as ``interrupted``, like the configurations in flight when SIGINT/SIGTERM stopped the search.
Interrupted configurations do not count against ``search.trials``; resuming enqueues each one
once (``retry_of``), so it is trained again with the same parameters.

A proposal that repeats a completed configuration exactly (in a space used up before the
budget, or by chance: NSGA-II avoids it otherwise) is not trained again: every trial of a
search trains with the same seeds, so it would only reproduce the earlier result. The trial is
told that result at once (metrics and history; ``same_as``: the earlier trial's number) and
counts against the budget, and the sampler is asked again for the free lane.
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
import yaml
from optuna.trial import TrialState

from fairsearch.io.atomic import write_atomic
from fairsearch.runfolder.tables import write_table
from fairsearch.search.halving import comparable_group, halving_rule, rung_table
from fairsearch.search.tables import (
    RECORD,
    RETRY_OF,
    SAME_AS,
    STATUSES,
    history_frame,
    history_rows,
    status_of,
    trials_frame,
)
from fairsearch.spec.space import complete, sample
from fairsearch.spec.validated import Spec

__all__ = ["Recorder", "is_population", "population_key", "write_spec"]


def write_spec(spec: Spec, path: Path) -> None:
    text = yaml.safe_dump(spec.to_dict(), sort_keys=False)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))


class Recorder:
    """The search's :class:`~fairsearch.executor.contract.Source`: asks, tells, tabulates.

    A result (from a lane) carries ``key`` (the trial number), ``status`` (completed | failed |
    diverged | pruned), ``metrics``, with halving on ``rungs`` and ``pruned_at``, ``error``, ``history`` (per-epoch dicts), ``seed``, ``lane``,
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
        # successive halving (None: off): the rule, and each told trial's rung values with the
        # group of configurations they compare with
        self.rule = halving_rule(spec)
        self._rungs: list[tuple[str, dict[str, Any]]] = []
        self._recount()

    def _recount(self) -> None:
        self.counts = {s: 0 for s in STATUSES}
        self._rungs = []
        for t in self.study.get_trials(deepcopy=False):
            if t.state.is_finished():
                self.counts[status_of(t)] += 1
                self._remember_rungs(t.params, status_of(t), t.user_attrs.get(RECORD) or {})
            if t.state == TrialState.COMPLETE:
                self._remember(t.number, t.params, list(t.values), t.user_attrs.get(RECORD) or {})

    def _remember(self, number: int, params: Mapping[str, Any], values: list[float],
                  record: Mapping[str, Any]) -> None:  # fmt: skip
        self._completed.setdefault(_config_key(params), (number, values, dict(record)))

    def _remember_rungs(self, params: Mapping[str, Any], status: str,
                        record: Mapping[str, Any]) -> None:  # fmt: skip
        if self.rule is not None and status in ("completed", "pruned") and record.get("rungs") \
                and record.get(SAME_AS) is None:  # a repeat is not a second configuration
            self._rungs.append((comparable_group(params, self.family.rung_shared), dict(record)))

    def _rung_tables(self, group: list[tuple[int, dict[str, Any]]]) -> dict[int, Any]:
        """Each configuration's rung table (:func:`~fairsearch.search.halving.rung_table`): the
        rung values of the configurations told before it was asked."""
        assert self.rule is not None
        return {n: rung_table(self._rungs, self.rule, comparable_group(p, self.family.rung_shared))
                for n, p in group}  # fmt: skip

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
        rungs = {"rung_tables": self._rung_tables(group)} if self.rule is not None else {}
        if len(group) == 1:
            number, params = group[0]
            return {"key": number, "params": params, "attempt": 0, "seed": seeds[0],
                    "seeds": seeds, **rungs}  # fmt: skip
        return {"key": population_key([n for n, _ in group]), "attempt": 0, "seed": seeds[0],
                "seeds": seeds, "members": [{"key": n, "params": p} for n, p in group],
                **rungs}  # fmt: skip

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
            **{k: result[k] for k in ("rungs", "pruned_at") if k in result},
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
        elif status == "pruned":  # stopped at a rung: finished, never retried
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
        self._remember_rungs(trial.params, status, record)
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
