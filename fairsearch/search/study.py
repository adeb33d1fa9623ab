"""The search's persistent Optuna study: its journal file in the run folder, the seeded sampler
for ``search.algorithm``, and opening it new or to resume.

No Ray here. The study is the truth a run folder's search tables are built from
(:mod:`fairsearch.search.tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from fairsearch.spec.validated import Spec

__all__ = ["LEGACY_STUDY_FILE", "STUDY_FILE", "load_run_study", "make_sampler", "open_study", "settle_journal",
           "startup_trials", "study_file", "study_storage"]  # fmt: skip

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
