"""The selection rule: which trial the Pareto stage picks, and how a rule is judged on a trials table.

A rule is built from a validated spec (:meth:`SelectionRule.from_post`: ``post.select`` was
checked once, by :mod:`fairsearch.spec.schema`) or parsed from one ``--select`` line
(:func:`parse_select`); :func:`rule_mapping` writes it back in the ``post.select`` form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fairsearch.analysis.pareto.front import Direction
from fairsearch.spec.constraints import Constraint, parse_constraint

if TYPE_CHECKING:
    from fairsearch.spec.validated import PostSpec

__all__ = ["SelectionRule", "constraint_holds", "metric_column", "parse_select", "rule_mapping",
           "trivial_mask"]


@dataclass(frozen=True)
class SelectionRule:
    """Pick the best ``target`` (maximised or minimised) among trials meeting ``subject_to``,
    or, with ``knee=True`` (or no target), the knee of the feasible part of the front."""

    target: str | None = None
    direction: Direction = "maximize"
    subject_to: tuple[Constraint, ...] = ()
    knee: bool = False

    @classmethod
    def from_post(cls, post: PostSpec) -> SelectionRule:
        """The rule of a validated spec's ``post.select`` (``{maximize|minimize: m,
        subject_to: [...]}`` or ``{knee: true}``; no target means the knee)."""
        targets = (("maximize", post.select_maximize), ("minimize", post.select_minimize))
        for direction, target in targets:
            if target is not None:
                return cls(target, direction, post.constraints, post.knee)  # type: ignore[arg-type]
        return cls(None, "maximize", post.constraints, True)

    def describe(self) -> str:
        head = "knee point of the front" if self.knee or self.target is None else (
            f"{self.direction} {self.target}")
        return head + (f" subject to {', '.join(map(str, self.subject_to))}" if self.subject_to else "")


def parse_select(text: str) -> SelectionRule:
    """A rule from one line: ``"maximize control_f1; adversary_bacc <= 0.55"`` or ``"knee; ..."``.

    Parts are separated by ``;``: at most one ``maximize <metric>``, ``minimize <metric>`` or
    ``knee``, and any number of constraints ``<metric> <op> <number>``.
    """
    heads: list[str] = []
    constraints: list[Constraint] = []
    for part in (p.strip() for p in text.split(";")):
        words = part.split()
        if not words:
            continue
        if (words[0] in ("maximize", "minimize") and len(words) == 2) or words == ["knee"]:
            heads.append(part)
            continue
        try:
            constraints.append(parse_constraint(part))
        except ValueError:
            raise ValueError(
                "--select parts must be 'maximize <metric>', 'minimize <metric>', 'knee' or "
                f"'<metric> <op> <number>' separated by ';', but got {part!r}") from None
    if len(heads) > 1:
        raise ValueError("--select takes at most one of 'maximize <metric>', 'minimize <metric>' "
                         f"or 'knee', but got {heads}")
    head = heads[0].split() if heads else ["knee"]
    if head == ["knee"]:
        return SelectionRule(None, "maximize", tuple(constraints), True)
    return SelectionRule(head[1], head[0], tuple(constraints))  # type: ignore[arg-type]


def rule_mapping(rule: SelectionRule) -> dict[str, Any]:
    """``post.select`` of a rule (the inverse of :meth:`SelectionRule.from_post`)."""
    out: dict[str, Any] = {"subject_to": [str(c) for c in rule.subject_to]}
    if rule.knee or rule.target is None:
        out["knee"] = True
    else:
        out[rule.direction] = rule.target
    return out


def metric_column(trials: pd.DataFrame, metric: str) -> str:
    """The trials column holding ``metric`` (itself, ``objective.<metric>`` or ``metric.<metric>``)."""
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
    values = trials[metric_column(trials, c.metric)].to_numpy(np.float64, na_value=np.nan)
    se_col = f"se.{c.metric}"
    se = trials[se_col].to_numpy(np.float64, na_value=np.nan) if se_col in trials else None
    n = trials["n_seeds"].to_numpy(np.float64, na_value=np.nan) if "n_seeds" in trials else None
    return c.holds(values, se, n)
