"""``fairsearch repair RUN_DIR``: rebuild a corrupt or empty study from ``trials.parquet``.

The Optuna study (``study.journal``, or ``study.db`` in run folders of earlier versions) is the
search's state, and ``trials.parquet`` (written after every result) holds every finished trial:
number, status, error, parameters, objectives and metrics, timings. When the study is damaged
(a full disk, a copy cut short, a line that is not a journal operation, a ``study.db`` that is
not SQLite), a new journal is created with the spec's directions and each finished trial is
added back with
``optuna.trial.create_trial`` + ``study.add_trial``: parameters with the distributions of the
spec's space, objective values, and the user attributes the recorder reads (status, error,
metrics, run_id, seed, node, started_at, ended_at). Trial numbers are kept: a gap (a trial that
was running when the study broke) is filled with a failed trial without a status, which the
recorder counts as interrupted, outside the budget. The damaged file is kept beside it as
``<name>.corrupt-<time>``.

:func:`check_study` is the cheap check to call when a run folder's study is opened.
No Ray here.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fairsearch.io.atomic import match_umask
from fairsearch.io.lock import RunLock
from fairsearch.search.study import STUDY_FILE, study_file, study_storage
from fairsearch.search.tables import RECORD, RETRY_OF
from fairsearch.spec.schema import load_spec
from fairsearch.spec.space import Param, distribution
from fairsearch.spec.validated import Spec

__all__ = ["RepairResult", "check_study", "repair_study", "study_problem"]

#: Tables every Optuna RDB storage has (the ones the search reads).
OPTUNA_TABLES = ("studies", "study_directions", "trials", "trial_values", "trial_params",
                 "trial_user_attributes", "version_info")  # fmt: skip


def study_problem(path: str | Path) -> str | None:
    """Why the study file ``path`` (journal, or SQLite ``.db``) is not a usable Optuna study,
    or None when it is. Read-only: never creates, migrates or locks the file for writing."""
    path = Path(path)
    if not path.is_file():
        return "the file is missing"
    if path.stat().st_size == 0:
        return "the file is empty"
    if path.suffix == ".db":
        return _sqlite_problem(path)
    return _journal_problem(path)


def _journal_problem(path: Path) -> str | None:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    studies = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                break  # a torn last append: dropped when the study is next opened
            try:
                op = json.loads(line)
            except ValueError:
                return f"line {number} is not a journal operation"
            if not isinstance(op, dict) or "op_code" not in op:
                return f"line {number} is not a journal operation"
            studies += op["op_code"] == 0  # CREATE_STUDY
    if studies == 0:
        return "it holds no study"
    try:  # replay it as Optuna will (a well-formed line can still name what is not there)
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        for name in optuna.get_all_study_names(storage):
            optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except Exception as exc:  # noqa: BLE001 - any failure to replay is the problem to name
        return f"optuna cannot replay it ({type(exc).__name__}: {exc})"[:300]
    return None


def _sqlite_problem(path: Path) -> str | None:
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            missing = [t for t in OPTUNA_TABLES if t not in tables]
            if missing:
                return f"tables missing: {', '.join(missing)}"
            check = con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return f"sqlite integrity check: {check}"
            if con.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 0:
                return "it holds no study"
        finally:
            con.close()
    except sqlite3.Error as exc:
        return f"sqlite: {exc}"
    return None


def check_study(run_dir: str | Path) -> None:
    """``ValueError`` naming the repair command when the run folder's study is corrupt or empty."""
    run = Path(run_dir)
    path = study_file(run)
    problem = study_problem(path)
    if problem is not None:
        raise ValueError(
            f"{path.name} in {str(run)!r} is corrupt ({problem}): run `fairsearch repair "
            f"{run}` to rebuild it from trials.parquet"
        )


@dataclass(frozen=True)
class RepairResult:
    trials: int
    completed: int
    gaps: int
    kept_as: Path | None


def _seconds(v: Any) -> float | None:
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    return pd.Timestamp(v).timestamp()


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _param_value(p: Param, v: Any) -> Any:
    v = _plain(v)
    if p.type == "float":
        return float(v)
    if p.type == "int":
        return int(v)
    kinds = {type(c) for c in p.choices if c is not None}
    if isinstance(v, str) and not kinds <= {str}:
        v = json.loads(v)  # mixed choices are stored as JSON text (docs/schemas.md)
    for c in p.choices:  # the choice itself (1 and 1.0, True and 1 are told apart)
        if c == v and type(c) is type(v) or (c == v and {type(c), type(v)} <= {int, float}):
            return c
    raise ValueError(f"trials.parquet: `param.{p.name}` holds {v!r}, which is not among the "
                     f"space's choices {list(p.choices)}")  # fmt: skip


def _seed_record(row: dict[str, Any]) -> dict[str, Any]:
    """The record's seed keys from a table row: the seeds (``seed`` .. ``seed + n_seeds - 1``),
    each metric's standard error (``se.*``) and per-seed values (``per_seed.*``)."""
    seed, n = _plain(row.get("seed")), _plain(row.get("n_seeds"))
    if seed is None or n is None:
        return {}
    se = {k.removeprefix("se."): _plain(v) for k, v in row.items() if k.startswith("se.")}
    per_seed = {k.removeprefix("per_seed."): v for k, v in row.items() if k.startswith("per_seed.")}
    out: dict[str, Any] = {"seeds": list(range(int(seed), int(seed) + int(n)))}
    if any(v is not None for v in se.values()):
        out["seed_se"] = {k: (math.nan if v is None else float(v)) for k, v in se.items()}
    values = {k: [float(x) for x in v] for k, v in per_seed.items() if v is not None and len(v)}
    if values:
        out["seed_metrics"] = values
    return out


def _trial(row: dict[str, Any], spec: Spec, history: dict[int, list[dict[str, Any]]]) -> Any:
    import optuna
    from optuna.trial import TrialState

    status = _plain(row.get("status")) or "failed"
    params, dists = {}, {}
    for p in spec.space:
        v = row.get(f"param.{p.name}")
        if _plain(v) is not None:
            params[p.name] = _param_value(p, v)
            dists[p.name] = distribution(p)
    metrics = {o.metric: _plain(row.get(f"objective.{o.metric}")) for o in spec.objectives}
    metrics.update({k.removeprefix("metric."): _plain(v) for k, v in row.items()
                    if k.startswith("metric.")})  # fmt: skip
    metrics = {k: float(v) for k, v in metrics.items() if v is not None}
    attrs: dict[str, Any] = {}
    if _plain(row.get("retry_of")) is not None:
        attrs[RETRY_OF] = int(_plain(row["retry_of"]))
    if status != "interrupted":  # the recorder reads a missing record as interrupted
        attrs[RECORD] = {
            "status": status, "error": _plain(row.get("error")), "metrics": metrics,
            "history": history.get(int(row["number"]), []),
            **{k: _plain(row.get(k)) for k in ("seed", "node", "node_id", "lane", "attempt",
                                               "train_s", "overhead_s", "same_as")},
            "started_at": _seconds(row.get("started_at")),
            "ended_at": _seconds(row.get("ended_at")),
            **_seed_record(row),
        }  # fmt: skip
    complete = status == "completed"
    return optuna.trial.create_trial(
        state=TrialState.COMPLETE if complete else
        TrialState.PRUNED if status == "pruned" else TrialState.FAIL,
        values=[metrics[o.metric] for o in spec.objectives] if complete else None,
        params=params, distributions=dists, user_attrs=attrs,
    )  # fmt: skip


def repair_study(run_dir: str | Path, *, force: bool = False) -> RepairResult | None:
    """Rebuild the study of ``RUN_DIR`` from ``trials.parquet`` as ``study.journal`` (see the
    module doc).

    Returns None, changing nothing, when the study is healthy and ``force`` is False.
    """
    import optuna
    from optuna.trial import TrialState

    run = Path(run_dir)
    for name in ("spec.yaml", "trials.parquet"):
        if not (run / name).is_file():
            raise ValueError(f"RUN_DIR {str(run)!r} has no {name}: cannot rebuild its study")
    old = study_file(run)
    if not force and study_problem(old) is None:
        return None
    spec = load_spec(run / "spec.yaml")
    rows = pd.read_parquet(run / "trials.parquet").sort_values("number").to_dict("records")
    history: dict[int, list[dict[str, Any]]] = {}
    if (run / "history.parquet").is_file():
        for h in pd.read_parquet(run / "history.parquet").to_dict("records"):
            epoch = {k: _plain(v) for k, v in h.items() if k not in ("trial_id", "number")}
            if epoch.get("seed") is None:  # a history written before seeds were recorded
                epoch.pop("seed", None)
            history.setdefault(int(h["number"]), []).append(epoch)
    trials = {int(r["number"]): _trial(r, spec, history) for r in rows}  # before touching the study
    kept = None
    if old.exists():
        kept = run / f"{old.name}.corrupt-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        old.rename(kept)
    for suffix in ("-journal", "-wal", "-shm", ".lock"):  # side files belong to the old file
        side = run / f"{old.name}{suffix}"
        if side.exists() or side.is_symlink():
            side.rename(Path(f"{kept or old}{suffix}"))
    new = run / STUDY_FILE
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=spec.name, storage=study_storage(new),
                                directions=[o.direction for o in spec.objectives])  # fmt: skip
    gaps = 0
    for number in range(max(trials, default=-1) + 1):
        if number not in trials:  # running when the study broke: interrupted, not budget
            gaps += 1
            trials[number] = optuna.trial.create_trial(state=TrialState.FAIL)
        study.add_trial(trials[number])
    match_umask(new)
    completed = sum(t.state == TrialState.COMPLETE for t in trials.values())
    return RepairResult(len(rows), completed, gaps, kept)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder with trials.parquet")
    parser.add_argument("--force", action="store_true",
                        help="rebuild even when the study looks healthy")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    run = Path(args.run_dir)
    if not run.is_dir():
        raise ValueError(f"RUN_DIR must be a run folder, but {args.run_dir!r} is not a folder")
    with RunLock(run):
        result = repair_study(run, force=args.force)
    if result is None:
        print(f"{study_file(run)} is healthy; nothing to repair (--force rebuilds it anyway)")
        return 0
    kept = f"; the damaged file is kept as {result.kept_as}" if result.kept_as else ""
    print(f"rebuilt {run / STUDY_FILE} from trials.parquet: {result.trials} trials "
          f"({result.completed} completed, {result.gaps} gaps filled as interrupted){kept}")
    print(f"continue the search with `fairsearch resume {run}`", file=sys.stderr)
    return 0
