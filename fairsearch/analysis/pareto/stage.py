"""Non-dominated sets, hypervolume and the pick, computed from ``trials.parquet``.

Every objective is flipped to "minimise" once (``loss_matrix``), then all the work happens on a
plain ``(trials x objectives)`` array, as in Optuna's multi-objective code. Optuna 5 has no public
hypervolume or non-dominated-sort function (only ``optuna._hypervolume`` and private helpers in
``optuna.study``, which we do not import), so both are written here: dominance by a pairwise
comparison, ranks by peeling fronts, hypervolume exactly: a sweep in 2-D, a cumulative-maximum
grid in 3-D (O(n^2)) and the WFG recursion ("A fast way of calculating exact hypervolumes",
While et al. 2012) down to 3-D above that.

Only ``completed`` trials with every objective finite take part; the others get no rank.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.files import read_parquet
from fairsearch.io.lineage import LINEAGE_FILE, lineage_with, stale_stages
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.spec.constraints import Constraint, parse_constraint

Direction = Literal["minimize", "maximize"]

#: The default reference point sits this fraction of the observed range beyond the worst value.
REFERENCE_MARGIN = 0.1
#: Candidates that meet the rule with a margin: the rule's constraints at these confidences.
MARGIN_CONFIDENCES = (0.9, 0.99)

__all__ = [
    "Constraint",
    "ParetoResult",
    "SelectionRule",
    "default_reference_point",
    "hypervolume",
    "hypervolume_curve",
    "is_pareto_front",
    "knee_point",
    "loss_matrix",
    "non_dominated_ranks",
    "outcomes",
    "pareto_analysis",
    "parse_constraint",
    "parse_select",
    "rule_mapping",
    "run_pareto",
    "write_atomic",
]



# ---------------------------------------------------------------------------- array core
def loss_matrix(values: np.ndarray, directions: Sequence[Direction]) -> np.ndarray:
    """``values`` (trials x objectives) with maximised columns negated: smaller is better."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(
            f"values must be (trials x {len(directions)}) for {len(directions)} directions, "
            f"but got shape {values.shape}"
        )
    sign = np.ones(len(directions))
    for i, d in enumerate(directions):
        if d not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', but got {d!r}")
        sign[i] = -1.0 if d == "maximize" else 1.0
    return values * sign


def _dominated(loss: np.ndarray) -> np.ndarray:
    """``True`` where some other row is <= everywhere and < somewhere (duplicates do not)."""
    le = (loss[:, None, :] <= loss[None, :, :]).all(-1)  # le[j, i]: j weakly dominates i
    lt = (loss[:, None, :] < loss[None, :, :]).any(-1)
    return (le & lt).any(0)


def is_pareto_front(loss: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of a loss matrix (ties all stay on the front)."""
    loss = np.asarray(loss, dtype=np.float64)
    return ~_dominated(loss) if len(loss) else np.zeros(0, dtype=bool)


def non_dominated_ranks(loss: np.ndarray) -> np.ndarray:
    """0 for the Pareto front, 1 for the front once it is removed, and so on."""
    loss = np.asarray(loss, dtype=np.float64)
    ranks = np.full(len(loss), -1, dtype=np.int64)
    remaining = np.arange(len(loss))
    rank = 0
    while len(remaining):
        front = is_pareto_front(loss[remaining])
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
        rank += 1
    return ranks


def default_reference_point(loss: np.ndarray, margin: float = REFERENCE_MARGIN) -> np.ndarray:
    """Worst observed loss per objective plus ``margin`` of its range (of ``|worst|`` or 1 if flat)."""
    loss = np.asarray(loss, dtype=np.float64)
    if len(loss) == 0:
        raise ValueError("a reference point needs at least one completed trial, but got none")
    worst, best = loss.max(0), loss.min(0)
    span = worst - best
    span = np.where(span > 0, span, np.maximum(np.abs(worst), 1.0))
    return worst + margin * span


def _hv_2d(front: np.ndarray, ref: np.ndarray) -> float:
    pts = front[np.lexsort((front[:, 1], front[:, 0]))]
    hv, y_prev = 0.0, ref[1]
    for x, y in pts:
        if y < y_prev:
            hv += (ref[0] - x) * (y_prev - y)
            y_prev = y
    return float(hv)


def _hv_3d(front: np.ndarray, ref: np.ndarray) -> float:
    # Grid of cells (x-rank i, y-rank j); the height over a cell is the best z among points with
    # x-rank <= i and y-rank <= j: two cumulative maxima, O(n^2).
    pts = front[np.argsort(front[:, 0], kind="stable")]
    n = len(pts)
    y_rank = np.argsort(np.argsort(pts[:, 1], kind="stable"), kind="stable")
    height = np.zeros((n, n))
    height[np.arange(n), y_rank] = ref[2] - pts[:, 2]
    height = np.maximum.accumulate(np.maximum.accumulate(height, axis=0), axis=1)
    xs, ys = pts[:, 0], np.sort(pts[:, 1])
    dx = np.append(xs[1:], ref[0]) - xs
    dy = np.append(ys[1:], ref[1]) - ys
    return float(dx @ height @ dy)


def _wfg(front: np.ndarray, ref: np.ndarray) -> float:
    if len(front) == 0:
        return 0.0
    if front.shape[1] == 1:
        return float(ref[0] - front[:, 0].min())
    if front.shape[1] == 2:
        return _hv_2d(front, ref)
    if front.shape[1] == 3:
        return _hv_3d(front, ref)
    front = front[np.argsort(front[:, 0])]
    total = 0.0
    for i, p in enumerate(front):
        limited = np.maximum(front[i + 1 :], p)
        limited = np.unique(limited, axis=0)
        total += float(np.prod(ref - p)) - _wfg(limited[is_pareto_front(limited)], ref)
    return total


def hypervolume(loss: np.ndarray, reference_point: np.ndarray) -> float:
    """Volume dominated by ``loss`` rows and bounded by ``reference_point`` (all minimised).

    Rows not strictly better than the reference point in every objective add nothing.
    """
    loss = np.asarray(loss, dtype=np.float64).reshape(-1, len(reference_point))
    ref = np.asarray(reference_point, dtype=np.float64)
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference_point must be finite, but got {ref.tolist()}")
    loss = loss[np.all(loss < ref, axis=1) & np.all(np.isfinite(loss), axis=1)]
    if len(loss) == 0:
        return 0.0
    front = np.unique(loss[is_pareto_front(loss)], axis=0)
    return _wfg(front, ref)


def hypervolume_curve(loss: np.ndarray, reference_point: np.ndarray) -> np.ndarray:
    """Hypervolume of the first ``i + 1`` rows, for every ``i`` (rows in trial order)."""
    loss = np.asarray(loss, dtype=np.float64)
    out = np.zeros(len(loss))
    front = loss[:0]
    ref = np.asarray(reference_point, dtype=np.float64)
    hv = 0.0
    for i, row in enumerate(loss):
        if np.all(row < ref) and not (front <= row).all(1).any():
            # HV(S + p) = HV(S) + vol(box p) - HV(S limited to the box of p)
            hv += float(np.prod(ref - row)) - hypervolume(np.maximum(front, row), ref)
            cand = np.vstack([front, row[None, :]])
            front = cand[is_pareto_front(cand)]
        out[i] = hv
    return out


def knee_point(loss: np.ndarray) -> int:
    """Index of the knee of a front, after scaling each objective to [0, 1] over the front.

    2-D: the point farthest from the line through the two extremes. Otherwise (or with fewer
    than three distinct points): the point closest to the ideal point (the origin after scaling).
    """
    loss = np.asarray(loss, dtype=np.float64)
    if len(loss) == 0:
        raise ValueError("the knee point needs at least one point, but got none")
    lo, hi = loss.min(0), loss.max(0)
    z = (loss - lo) / np.where(hi > lo, hi - lo, 1.0)
    if z.shape[1] == 2 and len(np.unique(z, axis=0)) >= 3:
        a, b = z[np.argmin(z[:, 0])], z[np.argmin(z[:, 1])]
        d = b - a
        dist = np.abs(d[0] * (z[:, 1] - a[1]) - d[1] * (z[:, 0] - a[0])) / np.hypot(*d)
        return int(np.argmax(dist))
    return int(np.argmin(np.linalg.norm(z, axis=1)))


# ---------------------------------------------------------------------------- selection rule
@dataclass(frozen=True)
class SelectionRule:
    """Pick the best ``target`` (maximised or minimised) among trials meeting ``subject_to``,
    or, with ``knee=True`` (or no target), the knee of the feasible part of the front."""

    target: str | None = None
    direction: Direction = "maximize"
    subject_to: tuple[Constraint, ...] = ()
    knee: bool = False

    @classmethod
    def from_mapping(cls, select: dict[str, Any] | None) -> SelectionRule:
        """From ``post.select`` (``{maximize|minimize: m, subject_to: [...]}`` or ``{knee: true}``)."""
        select = dict(select or {})
        allowed = {"maximize", "minimize", "subject_to", "knee"}
        unknown = sorted(set(select) - allowed)
        if unknown:
            raise ValueError(
                f"post.select has unknown key(s) {unknown}; allowed: {sorted(allowed)}"
            )
        if "maximize" in select and "minimize" in select:
            raise ValueError(
                "post.select takes one of 'maximize' or 'minimize', but got both "
                f"(maximize={select['maximize']!r}, minimize={select['minimize']!r})"
            )
        subject = select.get("subject_to") or ()
        if isinstance(subject, str):
            subject = (subject,)
        cons = tuple(parse_constraint(s) for s in subject)
        knee = bool(select.get("knee", False))
        for key in ("maximize", "minimize"):
            if key in select and select[key] is not None:
                if not isinstance(select[key], str) or not select[key]:
                    raise ValueError(f"post.select.{key} must be a metric name, got {select[key]!r}")
                return cls(select[key], key, cons, knee)  # type: ignore[arg-type]
        return cls(None, "maximize", cons, True)

    def describe(self) -> str:
        head = "knee point of the front" if self.knee or self.target is None else (
            f"{self.direction} {self.target}")
        return head + (f" subject to {', '.join(map(str, self.subject_to))}" if self.subject_to else "")


def _column(trials: pd.DataFrame, metric: str) -> str:
    for name in (metric, f"objective.{metric}", f"metric.{metric}"):
        if name in trials.columns:
            return name
    known = sorted(c.split(".", 1)[1] for c in trials.columns if c.startswith(("objective.", "metric.")))
    raise ValueError(f"unknown metric {metric!r} in the selection rule; trials have {known}")


def trivial_mask(trials: pd.DataFrame) -> np.ndarray:
    """Trials whose model predicts a constant on validation (seed mean of ``trivial`` > 0: a
    seed of it was trivial)."""
    for col in ("metric.trivial", "objective.trivial"):
        if col in trials:
            return (trials[col].to_numpy(np.float64, na_value=0.0) > 0)
    return np.zeros(len(trials), dtype=bool)


def constraint_holds(trials: pd.DataFrame, c: Constraint) -> np.ndarray:
    """``c`` judged per trial on its seed mean, with its seed standard error (``se.<metric>``)
    and seed count (``n_seeds``) when ``c`` asks for a confidence."""
    values = trials[_column(trials, c.metric)].to_numpy(np.float64, na_value=np.nan)
    se_col = f"se.{c.metric}"
    se = trials[se_col].to_numpy(np.float64, na_value=np.nan) if se_col in trials else None
    n = trials["n_seeds"].to_numpy(np.float64, na_value=np.nan) if "n_seeds" in trials else None
    return c.holds(values, se, n)


# ---------------------------------------------------------------------------- table level
@dataclass(frozen=True)
class ParetoResult:
    """The Pareto stage's output: ``table`` goes to pareto.parquet, the rest to pareto.json."""

    table: pd.DataFrame
    objectives: tuple[tuple[str, Direction], ...]
    reference_point: dict[str, float]
    reference_rule: str
    hypervolume: float
    hv_curve: list[tuple[int, float]]
    chosen_trial_id: str | None
    rule: str
    notes: list[str] = field(default_factory=list)
    #: the configurations worth retraining, in order: ``(trial_id, why)``
    candidates: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("table")
        d["objectives"] = [{"metric": m, "direction": dr} for m, dr in self.objectives]
        d["hv_curve"] = [{"number": n, "hypervolume": h} for n, h in self.hv_curve]
        numbers = dict(zip(self.table["trial_id"], self.table["number"], strict=True))
        d["candidates"] = [{"trial_id": t, "number": int(numbers[t]), "why": why}
                           for t, why in self.candidates]
        d["front_size"] = int(self.table["on_front"].sum())
        d["n_ranked"] = int(self.table["rank"].notna().sum())
        return d


def pareto_analysis(
    trials: pd.DataFrame,
    objectives: Sequence[tuple[str, Direction]],
    rule: SelectionRule | None = None,
    reference_point: Sequence[float] | None = None,
) -> ParetoResult:
    """Ranks, front, hypervolume (+ curve by trial number) and the pick for a trials table.

    ``reference_point`` is in the objectives' own units and directions; by default the worst
    observed value of each objective moved by 10% of its range away from the front.
    """
    if not objectives:
        raise ValueError("objectives must name at least one (metric, direction), but got none")
    rule = rule or SelectionRule(knee=True)
    cols = [_column(trials, m) for m, _ in objectives]
    dirs = [d for _, d in objectives]
    trials = trials.sort_values("number", kind="stable") if "number" in trials else trials
    vals = trials[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(vals).all(1)
    if "status" in trials:
        ok &= (trials["status"] == "completed").to_numpy()
    loss = loss_matrix(vals[ok], dirs)
    notes = [f"{int((~ok).sum())} trial(s) excluded (not completed or missing an objective)"]
    if not ok.any():
        notes = [f"no completed trial: the front is empty ({outcomes(trials)})"]
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])
    if reference_point is None:
        ref = default_reference_point(loss) if len(loss) else np.full(len(dirs), np.nan)
        ref_rule = f"worst observed value per objective + {REFERENCE_MARGIN:.0%} of its range"
    else:
        if len(reference_point) != len(dirs):
            raise ValueError(
                f"reference_point needs {len(dirs)} values (one per objective), "
                f"but got {list(reference_point)}")
        ref = np.asarray(reference_point, dtype=np.float64) * sign
        ref_rule = "given"
    ranks = non_dominated_ranks(loss)
    curve = hypervolume_curve(loss, ref) if len(loss) else np.zeros(0)
    numbers = trials["number"].to_numpy()[ok] if "number" in trials else np.flatnonzero(ok)
    table = pd.DataFrame({
        "trial_id": trials["trial_id"].astype("string").to_numpy(),
        "number": trials["number"].to_numpy() if "number" in trials else np.arange(len(trials)),
        "rank": pd.array([pd.NA] * len(trials), dtype="Int64"),
        "on_front": False,
        "chosen": False,
    })
    table.loc[ok, "rank"] = ranks
    table["on_front"] = (table["rank"] == 0).fillna(False).astype(bool)
    table["trivial"] = trivial_mask(trials)
    if table["trivial"].any():
        notes.append(f"{int(table['trivial'].sum())} trial(s) are trivial (a constant "
                     "prediction on validation: they can sit on the front, but are never chosen)")
    chosen = _choose(trials, table, ok, loss, rule, notes)
    if chosen is not None:
        table.loc[table["trial_id"] == chosen, "chosen"] = True
    candidates = _candidates(trials, table, ok, loss, rule, chosen)
    order = {t: i for i, (t, _) in enumerate(candidates)}
    table["candidate"] = pd.array([order.get(t) for t in table["trial_id"]], dtype="Int64")
    table["candidate_why"] = pd.array([dict(candidates).get(t) for t in table["trial_id"]],
                                      dtype="string")
    return ParetoResult(
        table=table.reset_index(drop=True),
        objectives=tuple((m, d) for m, d in objectives),
        reference_point={m: float(r) for (m, _), r in zip(objectives, ref * sign, strict=True)},
        reference_rule=ref_rule,
        hypervolume=float(curve[-1]) if len(curve) else 0.0,
        hv_curve=[(int(n), float(h)) for n, h in zip(numbers, curve, strict=True)],
        chosen_trial_id=chosen,
        rule=rule.describe(),
        notes=notes,
        candidates=candidates,
    )


def _candidates(trials: pd.DataFrame, table: pd.DataFrame, ok: np.ndarray, loss: np.ndarray,
                rule: SelectionRule, chosen: str | None) -> list[tuple[str, str]]:
    """The configurations worth retraining, from the search's numbers alone: the rule's pick on
    the seed means, the best that meets the rule with a margin (its constraints at each of
    :data:`MARGIN_CONFIDENCES`), and the knee of the front among those meeting the rule.

    The search's pick sits at the edge of the rule by construction, so seed noise and selection
    push it over the line about half the time on fresh seeds; the margin picks and the knee
    give the decision after retraining a choice. ``(trial_id, why)`` in this order, each trial
    once (its reasons joined)."""
    found: dict[str, list[str]] = {}

    def add(tid: str | None, why: str) -> None:
        if tid is not None:
            found.setdefault(tid, []).append(why)

    add(chosen, "the rule's pick on the search's seed means")
    if rule.subject_to and not (rule.knee or rule.target is None):
        for conf in MARGIN_CONFIDENCES:
            stricter = [Constraint(c.metric, c.op, c.value, max(c.confidence or 0.0, conf))
                        for c in rule.subject_to]  # fmt: skip
            pick = _choose(trials, table, ok, loss, replace(rule, subject_to=tuple(stricter)), [])
            add(pick, f"the best that meets the rule at confidence {conf:g}")
    knee = _choose(trials, table, ok, loss, SelectionRule(None, "maximize", rule.subject_to, True),
                   [])  # fmt: skip
    add(knee, "the knee of the front" + (" among configurations meeting the rule"
                                         if rule.subject_to else ""))
    return [(tid, "; ".join(whys)) for tid, whys in found.items()]


def _choose(
    trials: pd.DataFrame, table: pd.DataFrame, ok: np.ndarray, loss: np.ndarray,
    rule: SelectionRule, notes: list[str],
) -> str | None:
    if not ok.any():
        return None  # said in the notes already
    feasible = ok & ~table["trivial"].to_numpy(bool)
    for c in rule.subject_to:
        feasible &= constraint_holds(trials, c)
    if not feasible.any():
        notes.append(f"no completed trial satisfies {rule.describe()}; nothing chosen")
        return None
    ids = table["trial_id"].to_numpy()
    if rule.knee or rule.target is None:
        on_front = (table["on_front"].to_numpy()) & feasible
        pool = on_front if on_front.any() else feasible
        sub = loss[pool[ok]]
        sub_front = is_pareto_front(sub)
        idx = np.flatnonzero(pool)[np.flatnonzero(sub_front)[knee_point(sub[sub_front])]]
        return str(ids[idx])
    v = trials[_column(trials, rule.target)].to_numpy(np.float64, na_value=np.nan)
    v = np.where(feasible & np.isfinite(v), v if rule.direction == "minimize" else -v, np.inf)
    if not np.isfinite(v).any():
        notes.append(f"{rule.target} is missing on every feasible trial; nothing chosen")
        return None
    rank = table["rank"].to_numpy(dtype=np.float64, na_value=np.inf)
    order = np.lexsort((table["number"].to_numpy(), rank, v))  # best value, then rank, number
    return str(ids[order[0]])


def outcomes(trials: pd.DataFrame, what: str = "trial") -> str:
    """``3 trials: 2 failed, 1 diverged; first error: ...`` for a table with status and error."""
    if len(trials) == 0:
        return f"no {what} has finished"
    counts = trials["status"].astype(str).value_counts() if "status" in trials else pd.Series()
    text = f"{len(trials)} {what}s: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    if "error" in trials:
        errors = trials["error"].dropna().astype(str)
        if len(errors):
            first = errors.iloc[0].strip().splitlines()[-1] if errors.iloc[0].strip() else ""
            text += f"; first error: {first[:300]}"
    return text


# ---------------------------------------------------------------------------- run folder
def _spec_objectives_and_rule(spec: dict[str, Any]) -> tuple[list[tuple[str, Direction]], SelectionRule]:
    objs = spec.get("objectives") or []
    if not objs:
        raise ValueError("spec.yaml: 'objectives' must list at least one {metric, direction}")
    out: list[tuple[str, Direction]] = []
    for i, o in enumerate(objs):
        if not isinstance(o, dict) or "metric" not in o:
            raise ValueError(f"spec.yaml: objectives[{i}] must be {{metric, direction}}, got {o!r}")
        out.append((str(o["metric"]), o.get("direction", "minimize")))
    return out, SelectionRule.from_mapping((spec.get("post") or {}).get("select"))


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {o!r}")


def parse_select(text: str) -> SelectionRule:
    """A rule from one line: ``"maximize control_f1; adversary_bacc <= 0.55"`` or ``"knee; ..."``.

    Parts are separated by ``;``: at most one ``maximize <metric>``, ``minimize <metric>`` or
    ``knee``, and any number of constraints ``<metric> <op> <number>``.
    """
    select: dict[str, Any] = {"subject_to": []}
    for part in (p.strip() for p in text.split(";")):
        words = part.split()
        if not words:
            continue
        if words[0] in ("maximize", "minimize") and len(words) == 2:
            select[words[0]] = words[1]
        elif words == ["knee"]:
            select["knee"] = True
        else:
            try:
                select["subject_to"].append(str(parse_constraint(part)))
            except ValueError:
                raise ValueError(
                    "--select parts must be 'maximize <metric>', 'minimize <metric>', 'knee' or "
                    f"'<metric> <op> <number>' separated by ';', but got {part!r}") from None
    return SelectionRule.from_mapping(select)


def rule_mapping(rule: SelectionRule) -> dict[str, Any]:
    """``post.select`` of a rule (the inverse of :meth:`SelectionRule.from_mapping`)."""
    out: dict[str, Any] = {"subject_to": [str(c) for c in rule.subject_to]}
    if rule.knee or rule.target is None:
        out["knee"] = True
    else:
        out[rule.direction] = rule.target
    return out


def run_pareto(run_dir: str | Path, reference_point: Sequence[float] | None = None,
               rule: SelectionRule | None = None) -> ParetoResult:
    """Read ``trials.parquet`` + ``spec.yaml``; write ``pareto.parquet`` and ``pareto.json``.

    ``rule`` overrides the spec's ``post.select``; pareto.json records the rule used and where it
    came from (``rule_source``), and the stage's inputs go to ``lineage.json``.
    """
    run = Path(run_dir)
    with stage_lock(run):
        return _run_pareto(run, reference_point, rule)


def _run_pareto(run: Path, reference_point: Sequence[float] | None,
                rule: SelectionRule | None) -> ParetoResult:  # fmt: skip
    """:func:`run_pareto` under the run folder's lock: both files and the lineage are written
    to ``pareto.partial/`` and swapped in together (an interrupted run changes nothing)."""
    from fairsearch.spec.safe_yaml import read_yaml

    for name in ("trials.parquet", "spec.yaml"):
        if not (run / name).is_file():
            raise ValueError(f"RUN_DIR {str(run)!r} has no {name}; run the search stage first")
    spec = read_yaml(run / "spec.yaml", "spec file") or {}
    objectives, spec_rule = _spec_objectives_and_rule(spec)
    source = "spec.yaml post.select" if rule is None else "command line (--select)"
    rule = rule or spec_rule
    trials = read_parquet(run / "trials.parquet")
    for c in rule.subject_to:  # an unknown metric fails before anything is written
        _column(trials, c.metric)
    result = pareto_analysis(trials, objectives, rule, reference_point)
    if not result.table["on_front"].any():
        print(f"[pareto] {result.notes[0]}", file=sys.stderr)
    staged = run / "pareto.partial"
    shutil.rmtree(staged, ignore_errors=True)
    write_atomic(staged / "pareto.parquet", lambda p: result.table.to_parquet(p, index=False))
    summary = {**result.summary(), "select": rule_mapping(rule), "rule_source": source}
    text = json.dumps(summary, indent=2, default=_json_default)
    write_atomic(staged / "pareto.json", lambda p: p.write_text(text + "\n"))
    lineage = lineage_with(run, "pareto")
    write_atomic(staged / LINEAGE_FILE, lambda p: p.write_text(lineage))
    signals.check(f"the previous pareto outputs are unchanged; `fairsearch pareto {run}` "
                  f"runs it again")  # fmt: skip
    commit(run, "pareto", [(f"{staged.name}/{name}", name)
                           for name in ("pareto.parquet", "pareto.json", LINEAGE_FILE)],
           remove=[staged.name])  # fmt: skip
    return result


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder holding trials.parquet")
    parser.add_argument("--reference-point", type=float, nargs="+", default=None, metavar="V",
                        help="hypervolume reference point, one value per objective "
                             "(default: worst observed + 10%% of the range)")
    parser.add_argument("--select", default=None, metavar="RULE",
                        help="selection rule overriding the spec's post.select, e.g. "
                             "\"maximize control_f1; adversary_bacc <= 0.55\" or \"knee\"; "
                             "recorded in pareto.json, and later stages become stale")


def main(args: argparse.Namespace) -> int:
    rule = parse_select(args.select) if args.select else None
    r = run_pareto(args.run_dir, args.reference_point, rule)
    print(f"front: {int(r.table['on_front'].sum())} of {len(r.table)} trials; "
          f"hypervolume {r.hypervolume:.6g} (reference {r.reference_point}, {r.reference_rule})")
    print(f"rule: {r.rule}; chosen trial: {r.chosen_trial_id}")
    for n in r.notes:
        print(f"note: {n}")
    for stage, why in stale_stages(args.run_dir).items():
        print(f"stale: {stage} ({why}); re-run `fairsearch run {args.run_dir} --from {stage}`")
    return 0
