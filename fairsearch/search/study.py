"""The search's persistent Optuna study: its journal file in the run folder, the seeded sampler
for ``search.algorithm``, and opening it new or to resume.

No Ray here. The study is the truth a run folder's search tables are built from
(:mod:`fairsearch.search.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from fairsearch.spec.validated import Spec

__all__ = ["LEGACY_STUDY_FILE", "STUDY_FILE", "NoRepeatNSGAIISampler", "load_run_study", "make_sampler",
           "open_study", "settle_journal", "startup_trials", "study_file", "study_storage"]  # fmt: skip


def startup_trials(trials: int) -> int:
    """Random configurations before TPE/GP model the results: a quarter of the budget, 4 to 10."""
    return int(max(4, min(10, trials // 4)))


def make_sampler(algorithm: str, seed: int, trials: int = 250, *,
                 max_concurrent: int = 1) -> optuna.samplers.BaseSampler:  # fmt: skip
    """Seeded Optuna sampler for ``nsga2`` | ``tpe`` | ``random`` | ``gp``.

    NSGA-II's population is ``trials // 5`` clamped to [4, 50] (Optuna's default, 50, would make
    a 20-trial search pure random sampling), and it does not propose a configuration the study
    already holds (:class:`NoRepeatNSGAIISampler`); TPE and GP start after :func:`startup_trials`
    random ones; TPE uses ``constant_liar`` when configurations run in parallel. Constraints
    (``post.select.subject_to``) reach NSGA-II, TPE and GP through ``Trial.set_constraint``
    before each tell (Optuna 5's replacement for ``constraints_func``); random ignores them.
    """
    if algorithm == "nsga2":
        population = int(min(50, max(4, trials // 5)))
        return NoRepeatNSGAIISampler(population_size=population, seed=seed)
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(trials),
                                          constant_liar=max_concurrent > 1)
    if algorithm == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(trials),
                                         warn_independent_sampling=False)
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"algorithm must be one of nsga2, tpe, random, gp, but got {algorithm!r}")


class NoRepeatNSGAIISampler(optuna.samplers.BaseSampler):
    """Optuna's NSGA-II, except that it does not propose a configuration the study holds (a
    complete, running or waiting trial's).

    NSGA-II copies a parent unchanged now and then (no crossover, no mutation), or crossover and
    mutation rebuild a held configuration; in a small budget each copy wastes a trial. Such a
    child is drawn again, ``draws`` children in all, then ``draws`` random configurations of
    NSGA-II's search space; when all repeat, each parameter is sampled at random. A
    parameter sampled at random (the first generation's, a mutated one, a conditional one
    outside NSGA-II's search space) is drawn again, ``draws`` times at most, while the values
    known so far make it repeat a held configuration. In a space with fewer configurations
    than the budget, repeats remain once the space is used up. The seeded generators only
    advance, so a seed still fixes every proposal.

    The parameters NSGA-II leaves to random sampling are drawn before the child is compared,
    so a child holds all of NSGA-II's search space (the parameters of every completed trial);
    conditional parameters outside it are drawn then too, and the trial takes those values when
    it suggests them. A trial must repeat a held configuration when each of that configuration's
    parameters has the child's value or its one possible value: given the same values, a trial
    suggests the same parameters.

    It wraps :class:`optuna.samplers.NSGAIISampler` rather than subclassing it: a subclass
    records its generations under its own name, and a study begun with plain NSGA-II would
    resume from generation 0.
    """

    def __init__(self, *, population_size: int, seed: int | None = None, draws: int = 16) -> None:
        self._nsga = optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed)
        # its own stream: a generator seeded like NSGA-II's random one would redraw generation 0
        stream = None if seed is None else int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
        self._random = optuna.samplers.RandomSampler(seed=stream)
        self._draws = draws
        # trial number -> (its child and fixed values, its guesses for parameters outside NSGA-II's search space
        # with their distributions, the configurations held when it was drawn), until told
        self._drawn: dict[int, tuple[dict[str, Any], dict[str, tuple[Any, BaseDistribution]],
                                     _Held]] = {}  # fmt: skip

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:  # fmt: skip
        return self._nsga.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:  # fmt: skip
        held = _Held(study, trial.number)
        # parameters of one possible value, and conditional ones outside the search space (drawn
        # now too, to compare the child whole; the trial takes them in sample_independent)
        fixed = held.fixed
        others = {name: dist for name, dist in held.distributions.items()
                  if name not in fixed and name not in search_space}  # fmt: skip
        chosen: dict[str, Any] = {}  # generation 0, or nothing new found: each parameter at random
        guess: dict[str, tuple[Any, BaseDistribution]] = {}
        child = self._nsga.sample_relative(study, trial, search_space)
        for draw in range(2 * self._draws if child else 0):
            if draw:  # NSGA-II's children, then random configurations of its search space
                child = self._nsga.sample_relative(study, trial, search_space) \
                    if draw < self._draws else {}  # fmt: skip
            full = {name: child[name] if name in child else
                    self._random.sample_independent(study, trial, name, dist)
                    for name, dist in search_space.items()}  # fmt: skip
            extra = {name: self._random.sample_independent(study, trial, name, dist)
                     for name, dist in others.items()}  # fmt: skip
            if not held.repeated_by({**fixed, **full, **extra}):
                chosen, guess = full, {name: (extra[name], others[name]) for name in extra}
                break
        self._drawn[trial.number] = ({**fixed, **chosen}, guess, held)
        return chosen

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:  # fmt: skip
        child, guess, held = self._drawn.get(trial.number) or \
            ({}, {}, _Held(study, trial.number))  # fmt: skip
        known = {**child, **trial.params}  # values this trial takes
        value, dist = guess.get(param_name, (None, None))
        for draw in range(self._draws):
            if draw or dist != param_distribution:  # the guess first, if drawn from the same
                value = self._nsga.sample_independent(study, trial, param_name, param_distribution)
            known[param_name] = value
            if not held.repeated_by(known):
                break
        return value

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._nsga.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:  # fmt: skip
        self._drawn.pop(trial.number, None)
        self._nsga.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._nsga.reseed_rng()
        self._random.reseed_rng()


class _Held:
    """The configurations the study holds (its complete, pruned, running and waiting trials' other than
    trial ``number``; a waiting, enqueued trial's are the parameters it was given), hashed by
    their parameter names, so that a check costs one lookup per set of names, not one
    comparison per trial; and every parameter's distribution, with the value of each that has
    one possible value."""

    def __init__(self, study: optuna.Study, number: int) -> None:
        self.configurations: dict[frozenset[str], set[frozenset[tuple[str, Any]]]] = {}
        self.distributions: dict[str, BaseDistribution] = {}
        self.fixed: dict[str, Any] = {}
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING,
                  TrialState.WAITING)
        for t in study.get_trials(deepcopy=False, states=states):
            params = t.system_attrs.get("fixed_params", {}) if t.state == TrialState.WAITING \
                else t.params  # fmt: skip
            if t.number == number or not params:
                continue
            self.configurations.setdefault(frozenset(params), set()).add(frozenset(params.items()))
            for name, dist in t.distributions.items():
                if name not in self.distributions:
                    self.distributions[name] = dist
                    if dist.single():
                        self.fixed[name] = params[name]

    def repeated_by(self, known: Mapping[str, Any]) -> bool:
        """Whether a trial that takes the ``known`` values must repeat a held configuration: it
        does when each of that configuration's parameters is known with the same value (given
        the same values, a trial suggests the same parameters)."""
        for names, held in self.configurations.items():
            if names <= known.keys() and frozenset((n, known[n]) for n in names) in held:
                return True
        return False


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
