"""Judge, then choose: which retrained candidate the evidence supports, on validation alone.

The Pareto stage proposes candidates from the search's numbers; the retrain stage trains each on
fresh seeds. Here every candidate is judged on the validation split with every seed it has (the
search's own, ``per_seed.<metric>`` of ``trials.parquet``, and the fresh ones of
``retrain.parquet``). A candidate is *eligible* when

* every fresh seed trained;
* the rule's constraints hold on the pooled seed mean, with the spec's confidence where the
  constraint asks for one (:class:`~fairsearch.spec.constraints.Constraint`);
* they hold on every fresh seed's own value, and the retrain stage did not flag it unstable;
* its task metric beats the trivial predictor (the majority class, or the training mean) by
  :data:`UTILITY_MARGIN` on the pooled mean.

The recommendation is the eligible candidate with the best pooled value of the rule's objective
(for a knee rule, the first eligible one in the Pareto stage's order). Nothing here reads the
test split or the audit: :func:`choose` is given validation columns only, so what verifies the
pick can never change it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairsearch.runfolder.names import metric_info, metric_label
from fairsearch.spec.constraints import Constraint, parse_constraint

__all__ = ["DISCRETE_TIP", "UTILITY_MARGIN", "Evidence", "Choice", "choose", "gain", "task_metric"]

#: How much better than the trivial predictor a model's task metric must be: absolute for a
#: metric to maximise (F1, accuracy), a share of the trivial predictor's error for one to
#: minimise (MSE: 1 - MSE / MSE_trivial, the share of the variance explained).
UTILITY_MARGIN = 0.05

Kind = Literal["eligible", "unstable", "fails the rule", "near-trivial", "failed to train"]


@dataclass(frozen=True)
class Evidence:
    """One retrained candidate on the validation split, pooled over every seed it has."""

    number: int
    config_id: str
    why: str  # why the Pareto stage proposed it ("" for another front member)
    kind: Kind
    problem: str  # why it is not eligible ("" when it is)
    n_seeds: int  # search seeds + fresh seeds pooled
    fresh: int  # fresh seeds that trained
    means: Mapping[str, float]  # metric -> pooled seed mean (validation)
    ses: Mapping[str, float]  # metric -> standard error of that mean
    violation: float  # how far the pooled rule misses (<= 0: it holds)

    @property
    def eligible(self) -> bool:
        return self.kind == "eligible"


@dataclass(frozen=True)
class Choice:
    """The recommendation (``None``: no candidate is eligible) and the evidence it came from."""

    number: int | None
    closest: int | None  # with no recommendation, the candidate nearest to holding the rule
    evidence: tuple[Evidence, ...]
    why: str  # one sentence: why the recommendation won, or why there is none
    help: str  # with no recommendation: what would help


def task_metric(objectives: Sequence[tuple[str, str]], target: str | None,
                available: Sequence[str]) -> str | None:  # fmt: skip
    """The metric of the task the model keeps: the rule's target when it is a utility metric,
    else the first utility objective, else the first utility metric in ``available``."""
    def utility(m: str | None) -> bool:
        info = metric_info(m) if m else None
        return info is not None and info.role == "utility" and m in available

    for m in (target, *(m for m, _ in objectives), *available):
        if utility(m):
            return m
    return None


def gain(metric: str, value: float, trivial: float) -> float:
    """How much better ``value`` is than the trivial predictor's (see :data:`UTILITY_MARGIN`)."""
    info = metric_info(metric)
    if info is not None and info.direction == "minimize":
        return (trivial - value) / trivial if trivial > 0 else -math.inf
    return value - trivial


def _pooled(search: pd.Series | None, fresh: pd.DataFrame, metric: str) -> np.ndarray:
    values: list[float] = []
    if search is not None:
        per_seed = search.get(f"per_seed.{metric}")
        if per_seed is not None and not (isinstance(per_seed, float) and math.isnan(per_seed)):
            values += [float(v) for v in per_seed]
    col = f"metric.{metric}"
    if col in fresh:
        values += [float(v) for v in fresh[col]]
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def _holds(cons: Sequence[Constraint], means: Mapping[str, float], ses: Mapping[str, float],
           n: Mapping[str, int]) -> tuple[bool, bool, float]:  # fmt: skip
    """(at the mean, with the constraints' own confidence, the largest violation)."""
    at_mean, with_conf, worst = True, True, -math.inf
    for c in cons:
        m = means.get(c.metric, math.nan)
        at_mean &= bool(c.plain().holds(np.array([m]))[0])
        se, k = ses.get(c.metric, math.nan), n.get(c.metric, 0)
        with_conf &= bool(c.holds(np.array([m]), np.array([se]), np.array([k]))[0])
        worst = max(worst, c.violation(m, se if c.confidence else None, k or None))
    return at_mean, with_conf, (worst if cons else -math.inf)


#: Why a retrained configuration that the Pareto stage did not propose was retrained.
FRONT_WHY = "another member of the front (post.top_k retrains the front by rank after the candidates)"


def choose(trials: pd.DataFrame, retrain: pd.DataFrame, proposed: Sequence[Mapping[str, Any]],
           *, target: str | None, direction: str, subject_to: Sequence[str],
           task: str | None, trivial_val: float | None,
           unstable: Mapping[int, str] | None = None) -> Choice:  # fmt: skip
    """The recommendation among the retrained configurations of ``retrain`` (validation
    columns only: ``metric.<name>``, never ``test.*``).

    ``proposed``: the Pareto stage's candidates in order (``number``, ``why``); ``target`` and
    ``direction``: the rule's objective (``None``: a knee rule, first eligible in order wins);
    ``task`` and ``trivial_val``: the task metric and the trivial predictor's value of it on
    validation; ``unstable``: number -> why the retrain stage flagged it.
    """
    if any(c.startswith("test.") for c in retrain.columns):
        raise ValueError("choose() judges on validation only, but got test columns: "
                         f"{sorted(c for c in retrain.columns if c.startswith('test.'))}")
    cons = [parse_constraint(c) for c in subject_to]
    whys = {int(p["number"]): str(p.get("why") or "") for p in proposed}
    order = {n: i for i, n in enumerate(whys)}
    numbers = sorted(set(retrain["number"].dropna().astype(int)),
                     key=lambda n: (order.get(n, len(order)), n))
    by_number = trials.set_index("number") if "number" in trials else pd.DataFrame()
    metrics = sorted({c.metric for c in cons} | ({target} if target else set())
                     | ({task} if task else set()))  # fmt: skip
    evidence = [_judge(n, retrain[retrain["number"] == n], by_number, whys.get(n, FRONT_WHY), cons,
                       metrics, task, trivial_val, (unstable or {}).get(n))
                for n in numbers]  # fmt: skip
    eligible = [e for e in evidence if e.eligible]
    if eligible:
        best = _best(eligible, target, direction)
        return Choice(best.number, None, tuple(evidence), _why_won(best, eligible, evidence,
                                                                   target), "")  # fmt: skip
    trained = [e for e in evidence if e.fresh > 0]
    closest = min(trained, key=lambda e: (e.violation, order.get(e.number, len(order)))) \
        if trained else None
    return Choice(None, None if closest is None else closest.number, tuple(evidence),
                  _why_none(evidence, closest), _help(evidence, subject_to))


def _judge(number: int, rows: pd.DataFrame, trials: pd.DataFrame, why: str,
           cons: Sequence[Constraint], metrics: Sequence[str], task: str | None,
           trivial_val: float | None, unstable: str | None) -> Evidence:  # fmt: skip
    done = rows[rows["status"] == "completed"]
    search = trials.loc[number] if number in trials.index else None
    pooled = {m: _pooled(search, done, m) for m in metrics}
    means = {m: float(v.mean()) if len(v) else math.nan for m, v in pooled.items()}
    ses = {m: float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
           for m, v in pooled.items()}  # fmt: skip
    n = {m: len(v) for m, v in pooled.items()}
    at_mean, with_conf, violation = _holds(cons, means, ses, n)
    n_seeds = max(n.values()) if n else len(done)

    def ev(kind: Kind, problem: str = "") -> Evidence:
        return Evidence(number, f"trial-{number}", why, kind, problem, n_seeds, len(done),
                        means, ses, violation)  # fmt: skip

    if len(done) < len(rows) or not len(done):
        return ev("failed to train", f"{len(rows) - len(done)} of {len(rows)} fresh seeds did "
                                     "not train")  # fmt: skip
    rule = " and ".join(str(c) for c in cons)
    if cons and not at_mean:
        return ev("fails the rule", f"{rule} fails on the mean of {n_seeds} seeds")
    if cons and not with_conf:
        return ev("unstable", f"{rule} holds on the mean of {n_seeds} seeds, not with the "
                              "confidence it asks for")  # fmt: skip
    seeds_ok = np.ones(len(done), dtype=bool)
    for c in cons:
        col = f"metric.{c.metric}"
        values = done[col] if col in done else pd.Series(np.nan, index=done.index)
        seeds_ok &= c.plain().holds(values.to_numpy(np.float64, na_value=np.nan))
    if not seeds_ok.all():
        return ev("unstable", f"{rule} holds for {int(seeds_ok.sum())} of {len(done)} fresh "
                              "seeds")  # fmt: skip
    if unstable:
        return ev("unstable", unstable)
    trivial_col = "metric.trivial"
    if trivial_col in done and (done[trivial_col].fillna(0) > 0).any():
        return ev("near-trivial", "a fresh seed predicts one class for every row")
    if task and trivial_val is not None and math.isfinite(means.get(task, math.nan)):
        g = gain(task, means[task], trivial_val)
        if g < UTILITY_MARGIN:
            return ev("near-trivial", f"its {metric_label(task)} {means[task]:.3f} beats the "
                                      f"trivial predictor's {trivial_val:.3f} by {g:.3f}, less "
                                      f"than {UTILITY_MARGIN:g}")  # fmt: skip
    return ev("eligible")


def _best(eligible: Sequence[Evidence], target: str | None, direction: str) -> Evidence:
    if target is None:
        return eligible[0]  # a knee rule: the Pareto stage's order
    sign = -1.0 if direction == "maximize" else 1.0

    def key(e: Evidence) -> float:
        v = e.means.get(target, math.nan)
        return sign * v if math.isfinite(v) else math.inf

    return min(eligible, key=key)  # ties keep the Pareto stage's order (min is stable)


def _fmt_mean(e: Evidence, metric: str) -> str:
    m, se = e.means.get(metric, math.nan), e.ses.get(metric, math.nan)
    return f"{m:.3f}" + (f" ± {se:.3f}" if math.isfinite(se) else "")


def _why_won(best: Evidence, eligible: Sequence[Evidence], evidence: Sequence[Evidence],
             target: str | None) -> str:  # fmt: skip
    others = [e for e in evidence if e is not best]
    held = f"it holds the rule on the validation split over all {best.n_seeds} of its seeds"
    if target is None:
        text = f"#{best.number} is the first eligible candidate in the Pareto stage's order: {held}"
    else:
        text = (f"#{best.number} has the best {metric_label(target)} "
                f"({_fmt_mean(best, target)}, mean ± se over {best.n_seeds} seeds) of the "
                f"{len(eligible)} retrained candidate{'s' if len(eligible) > 1 else ''} that "
                f"hold{'' if len(eligible) > 1 else 's'} the rule on validation; {held}")
    beaten = [f"#{e.number} {e.kind}" + (f" ({e.problem})" if e.problem else "")
              for e in others if not e.eligible]
    if beaten:
        text += "; " + "; ".join(beaten)
    return text


def _why_none(evidence: Sequence[Evidence], closest: Evidence | None) -> str:
    if closest is None:
        return "no retrained candidate trained on its fresh seeds"
    return (f"no retrained candidate is eligible on validation (the rule held on the seed mean "
            f"and on every fresh seed, stable over seeds, better than the trivial predictor); "
            f"the closest is #{closest.number} ({closest.kind}: {closest.problem})")


#: the last tip of :attr:`Choice.help`; :func:`fairsearch.analysis.decide.compute` drops it for a
#: model whose output is already discrete (its audit certified a bound)
DISCRETE_TIP = ("a family whose output is discrete, such as a quantized translator (`quantize`), "
                "which admits a certified bound")


def _help(evidence: Sequence[Evidence], subject_to: Sequence[str]) -> str:
    kinds = {e.kind for e in evidence}
    tips = []
    if "unstable" in kinds:
        tips.append("more trials, or more search seeds (`search.seeds`), to find a "
                    "configuration that meets the rule with a margin")
    if "fails the rule" in kinds and subject_to:
        tips.append("a looser rule than " + " and ".join(subject_to))
    if "near-trivial" in kinds:
        tips.append("a rule that leaves the task solvable (the candidates that meet it barely "
                    "beat the trivial predictor)")
    tips.append(DISCRETE_TIP)
    return "; ".join(tips)
