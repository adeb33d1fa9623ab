"""The verdict: what to deploy, where its weights are, and how sure the numbers let us be.

This module holds the verdict as a record (:class:`Verdict` and its parts) and its JSON form
(``verdict.json``: :func:`verdict_to_json`, :func:`verdict_from_json`). It is computed from the
run's tables only (:mod:`fairsearch.analysis.decide.compute`, one configuration at a time by
:mod:`fairsearch.analysis.decide.verify`) and rendered by :mod:`fairsearch.report.writer` and
:mod:`fairsearch.analysis.decide.text`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fairsearch.analysis.audit.leakage import Leak
from fairsearch.analysis.audit.resolution import Resolution
from fairsearch.analysis.decide.choice import UTILITY_MARGIN
from fairsearch.runfolder.names import metric_info, metric_label, plain

__all__ = ["ObjectiveStats", "Status", "Utility", "Verdict", "verdict_from_json",
           "verdict_to_json"]

Status = Literal["deployable", "borderline", "unresolved", "fails", "no verdict"]


@dataclass(frozen=True)
class ObjectiveStats:
    """Seed mean and std (ddof=0, as retrain_summary.parquet holds them) of one objective."""

    metric: str
    direction: str
    val_mean: float | None
    val_std: float | None
    test_mean: float | None
    test_std: float | None


@dataclass(frozen=True)
class Utility:
    """The task metric of the deployed seed on the test split against the trivial predictor's,
    with a bootstrap interval (over test rows) on how much better it is."""

    metric: str
    value: float
    trivial: float
    trivial_label: str
    gain: float
    ci_low: float
    ci_high: float
    margin: float = UTILITY_MARGIN

    @property
    def passes(self) -> bool:
        """Better by at least the margin, and the interval of the gain above 0."""
        return self.gain >= self.margin and self.ci_low > 0

    def sentence(self) -> str:
        info = metric_info(self.metric)
        scale = "" if info is None or info.direction == "maximize" else " (share of its error)"
        return (f"test {metric_label(self.metric)} {self.value:.3f} against {self.trivial:.3f} "
                f"for {self.trivial_label}: better by {self.gain:.3f}{scale} "
                f"[{self.ci_low:.3f}, {self.ci_high:.3f}]; deployable needs at least "
                f"{self.margin:g} with the interval above 0")


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    number: int | None = None
    rule: str = ""
    rule_source: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    objectives: list[ObjectiveStats] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    rule_by_seed: dict[int, bool] = field(default_factory=dict)
    #: the same rule judged on the test split, which no selection saw
    rule_by_seed_test: dict[int, bool] = field(default_factory=dict)
    unstable_reason: str | None = None
    leak: Leak | None = None
    #: what the held-out rows resolve (the audit's shuffled-q control), and other labels leaked
    resolution: Resolution | None = None
    caveats: list[str] = field(default_factory=list)
    #: the leak bracketed by the certified bound, and whether the model reads q (report/bracket.py)
    bracket: str | None = None
    reads_q: str | None = None
    seed: int | None = None
    seed_why: str = ""
    weights: Path | None = None
    snippet: str | None = None
    stale: dict[str, str] = field(default_factory=dict)
    #: the task metric on test against the trivial predictor (majority class, training mean)
    utility: Utility | None = None
    #: the certified upper bound on any classifier's balanced accuracy, where one exists
    bound: float | None = None
    #: what the recommendation costs against the unconstrained model on test
    cost: str | None = None
    #: a baseline the recommendation must beat (fairlearn's per-group thresholds)
    baseline: str | None = None
    #: every retrained candidate, judged (report's first table), and why the pick won
    candidates: list[dict[str, Any]] = field(default_factory=list)
    why_chosen: str = ""
    #: with no recommendation: what would help
    help: str = ""
    #: ``fairness.criterion`` of the run when it is not independence (verdict.json holds it
    #: only then, so a verdict of independence reads as before the criterion existed)
    criterion: str | None = None
    #: with such a criterion: each group's rates of the deployed seed's test decisions, with
    #: intervals, and the worst-off group (analysis/decide/groups.py; verdict.json only then)
    groups: dict[str, Any] | None = None

    @property
    def rule_holds(self) -> str:
        """``every``, ``some``, ``none`` of the seeds, or ``no constraints``."""
        if not self.constraints:
            return "no constraints"
        held = sum(self.rule_by_seed.values())
        if not self.rule_by_seed or held == 0:
            return "none"
        return "every" if held == len(self.rule_by_seed) else "some"



def verdict_to_json(v: Verdict) -> dict[str, Any]:
    """``verdict.json``'s content (:func:`verdict_from_json` reads it back)."""
    d = asdict(v)
    d["weights"] = None if v.weights is None else str(v.weights)
    d["rule_by_seed"] = {str(k): b for k, b in v.rule_by_seed.items()}
    d["rule_by_seed_test"] = {str(k): b for k, b in v.rule_by_seed_test.items()}
    d["rule_holds"] = v.rule_holds if v.number is not None else None
    d["deploy"] = None if v.weights is None else str(v.weights / "model.pt")
    for key in ("criterion", "groups"):
        if d[key] is None:
            del d[key]
    return _finite(d)


def _finite(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return plain(v) if isinstance(v, np.generic) else v


def verdict_from_json(d: dict[str, Any]) -> Verdict:
    """The :class:`Verdict` written by :func:`verdict_to_json`."""
    d = {k: x for k, x in d.items() if k in Verdict.__dataclass_fields__}
    d["objectives"] = [ObjectiveStats(**o) for o in d.get("objectives") or []]
    d["rule_by_seed"] = {int(k): b for k, b in (d.get("rule_by_seed") or {}).items()}
    d["rule_by_seed_test"] = {int(k): b for k, b in (d.get("rule_by_seed_test") or {}).items()}
    for key, cls in (("leak", Leak), ("resolution", Resolution), ("utility", Utility)):
        d[key] = None if d.get(key) is None else cls(**d[key])
    d["weights"] = None if d.get("weights") is None else Path(d["weights"])
    return Verdict(**d)
