"""The Pareto analysis of a trials table: ranks, front, hypervolume, the pick and the candidates.

Only ``completed`` trials with every objective finite take part; the others get no rank. The
array work is in :mod:`fairsearch.analysis.pareto.front`, the rule in
:mod:`fairsearch.analysis.pareto.rule`; this module joins them on the table and returns a
:class:`ParetoResult` (no files: :mod:`fairsearch.analysis.pareto.stage` writes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from fairsearch.analysis.pareto.front import (
    REFERENCE_MARGIN,
    Direction,
    default_reference_point,
    hypervolume_curve,
    is_pareto_front,
    knee_point,
    loss_matrix,
    non_dominated_ranks,
)
from fairsearch.analysis.pareto.rule import (
    SelectionRule,
    constraint_holds,
    metric_column,
    trivial_mask,
)
from fairsearch.spec.constraints import Constraint

__all__ = ["MARGIN_CONFIDENCES", "TIE_Z", "ParetoResult", "outcomes", "pareto_analysis"]

#: Candidates that meet the rule with a margin: the rule's constraints at these confidences.
MARGIN_CONFIDENCES = (0.9, 0.99)

#: Candidates tied with the pick: behind it on the rule's target by fewer standard errors of
#: the difference of the two seed means than this (a one-sided test at about 5%).
TIE_Z = 1.645


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
    dirs = [d for _, d in objectives]
    trials = trials.sort_values("number", kind="stable") if "number" in trials else trials
    ok, loss, notes = _rankable(trials, [metric_column(trials, m) for m, _ in objectives], dirs)
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])
    ref, ref_rule = _reference(loss, sign, reference_point)
    curve = hypervolume_curve(loss, ref) if len(loss) else np.zeros(0)
    numbers = trials["number"].to_numpy()[ok] if "number" in trials else np.flatnonzero(ok)
    table = _ranked_table(trials, ok, non_dominated_ranks(loss), notes)
    chosen = _choose(trials, table, ok, loss, rule, notes)
    if chosen is not None:
        table.loc[table["trial_id"] == chosen, "chosen"] = True
    candidates = _candidates(trials, table, ok, loss, rule, chosen)
    _mark_candidates(table, candidates)
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


def _rankable(trials: pd.DataFrame, cols: list[str], dirs: list[Direction]
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Which trials take part (completed, every objective finite), their loss matrix, and the
    first note (how many were left out, or that none completed)."""
    vals = trials[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(vals).all(1)
    if "status" in trials:
        ok &= (trials["status"] == "completed").to_numpy()
    notes = [f"{int((~ok).sum())} trial(s) excluded (not completed or missing an objective)"]
    if not ok.any():
        notes = [f"no completed trial: the front is empty ({outcomes(trials)})"]
    return ok, loss_matrix(vals[ok], dirs), notes


def _reference(loss: np.ndarray, sign: np.ndarray,
               reference_point: Sequence[float] | None) -> tuple[np.ndarray, str]:
    """The hypervolume's reference point in loss units (all minimised), and where it came from."""
    if reference_point is None:
        ref = default_reference_point(loss) if len(loss) else np.full(len(sign), np.nan)
        return ref, f"worst observed value per objective + {REFERENCE_MARGIN:.0%} of its range"
    if len(reference_point) != len(sign):
        raise ValueError(
            f"reference_point needs {len(sign)} values (one per objective), "
            f"but got {list(reference_point)}")
    return np.asarray(reference_point, dtype=np.float64) * sign, "given"


def _ranked_table(trials: pd.DataFrame, ok: np.ndarray, ranks: np.ndarray,
                  notes: list[str]) -> pd.DataFrame:
    """pareto.parquet's first columns: ``trial_id``, ``number``, ``rank``, ``on_front``,
    ``chosen`` (all False yet) and ``trivial`` (noted when any trial is)."""
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
    return table


def _mark_candidates(table: pd.DataFrame, candidates: list[tuple[str, str]]) -> None:
    """``candidate`` (order) and ``candidate_why`` columns, empty for the other trials."""
    order = {t: i for i, (t, _) in enumerate(candidates)}
    table["candidate"] = pd.array([order.get(t) for t in table["trial_id"]], dtype="Int64")
    table["candidate_why"] = pd.array([dict(candidates).get(t) for t in table["trial_id"]],
                                      dtype="string")


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
    for tid in _tied(trials, table, ok, rule, chosen):
        add(tid, f"within the seed noise of the pick on {rule.target}")
    return [(tid, "; ".join(whys)) for tid, whys in found.items()]


def _tied(trials: pd.DataFrame, table: pd.DataFrame, ok: np.ndarray, rule: SelectionRule,
          chosen: str | None) -> list[str]:  # fmt: skip
    """The configurations meeting the rule whose seed mean of the rule's target the search's
    seeds cannot tell from the pick's: behind it by less than :data:`TIE_Z` standard errors
    of the difference (``se.<target>`` of both). Best first.

    Near the top of a search many configurations differ by less than one seed's noise, and
    the pick is the luckiest of them as often as the best; retraining the tied ones lets the
    decision after retraining choose among them on fresh seeds. None without standard errors
    (one seed a trial) or without a target."""
    se_col = f"se.{rule.target}"
    if chosen is None or rule.target is None or rule.knee or se_col not in trials:
        return []
    feasible = _feasible(trials, table, ok, rule)
    sign = 1.0 if rule.direction == "maximize" else -1.0
    v = sign * trials[metric_column(trials, rule.target)].to_numpy(np.float64, na_value=np.nan)
    se = trials[se_col].to_numpy(np.float64, na_value=np.nan)
    ids = table["trial_id"].to_numpy()
    at = int(np.flatnonzero(ids == chosen)[0])
    gap = (v[at] - v) / np.sqrt(se[at] ** 2 + se ** 2)
    tied = feasible & np.isfinite(gap) & (gap < TIE_Z) & (ids != chosen)
    order = np.lexsort((table["number"].to_numpy(), -v))
    return [str(ids[i]) for i in order if tied[i]]


def _feasible(trials: pd.DataFrame, table: pd.DataFrame, ok: np.ndarray,
              rule: SelectionRule) -> np.ndarray:  # fmt: skip
    """The ranked, non-trivial trials whose seed means meet every constraint of ``rule``."""
    feasible = ok & ~table["trivial"].to_numpy(bool)
    for c in rule.subject_to:
        feasible &= constraint_holds(trials, c)
    return feasible


def _choose(
    trials: pd.DataFrame, table: pd.DataFrame, ok: np.ndarray, loss: np.ndarray,
    rule: SelectionRule, notes: list[str],
) -> str | None:
    if not ok.any():
        return None  # said in the notes already
    feasible = _feasible(trials, table, ok, rule)
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
    v = trials[metric_column(trials, rule.target)].to_numpy(np.float64, na_value=np.nan)
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
        errors = trials["error"]
        if "status" in trials:  # a pruned trial's reason is no error
            errors = errors[trials["status"].astype(str) != "pruned"]
        errors = errors.dropna().astype(str)
        if len(errors):
            first = errors.iloc[0].strip().splitlines()[-1] if errors.iloc[0].strip() else ""
            text += f"; first error: {first[:300]}"
    return text
