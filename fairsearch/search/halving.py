"""Multi-objective successive halving (``search.halving``), asynchronous: no lane ever waits.

At each rung (a number of epochs trained, :attr:`HalvingRule.rungs`) a configuration's seeds
report two cheap rung values from their per-epoch history rows: the family's utility term and its
leak estimate (:attr:`~fairsearch.families.ModelFamily.rung_terms`; the latest finite value at or
before the rung, since a leak estimate may be measured only every few epochs). Their seed means and
standard errors are compared with the rung values of the configurations that reached the same
rung earlier (the driver hands that table out with each work item, :func:`rung_table`): a
configuration *dominated with confidence* by at least a ``1 - keep`` share of them is stopped,
once at least ``min_trials`` configurations reached the rung.

Dominated with confidence: on both rung values, in the better direction, the other's mean beats
this one's by more than ``z`` standard errors of the difference (``z`` the one-sided normal
quantile of ``confidence``; the difference's standard error is ``sqrt(se_a**2 + se_b**2)``). A
seed mean without a standard error (one seed) is never judged.

Plain numbers only: no torch, no Ray.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

from fairsearch.nets import MemberStopped

__all__ = ["HalvingRule", "RungWatch", "comparable_group", "dominators", "halving_rule",
           "rung_entry", "rung_table", "rung_values", "stops"]  # fmt: skip


@dataclass(frozen=True)
class HalvingRule:
    """What a lane needs to judge a configuration at its rungs (plain, picklable)."""

    rungs: tuple[int, ...]
    keep: float
    confidence: float
    min_trials: int
    #: the two history terms compared: (utility, leak estimate)
    terms: tuple[str, str]
    #: +1 where lower is better, -1 where higher is (one per term)
    senses: tuple[float, float]

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(self.confidence)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> HalvingRule:
        return cls(rungs=tuple(int(r) for r in raw["rungs"]), keep=float(raw["keep"]),
                   confidence=float(raw["confidence"]), min_trials=int(raw["min_trials"]),
                   terms=(str(raw["terms"][0]), str(raw["terms"][1])),
                   senses=(float(raw["senses"][0]), float(raw["senses"][1])))  # fmt: skip


def rung_values(rows: Sequence[Mapping[str, Any]], rung: int, term: str) -> float | None:
    """``term``'s latest finite value in the history ``rows`` of one seed at or before ``rung``
    epochs trained (rows carry the 0-based ``epoch``); None when there is none."""
    best: tuple[int, float] | None = None
    for row in rows:
        epoch, value = int(row.get("epoch", -1)), row.get(term)
        if epoch < rung and value is not None and math.isfinite(float(value)):
            if best is None or epoch >= best[0]:
                best = (epoch, float(value))
    return None if best is None else best[1]


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def rung_entry(per_seed: Mapping[str, Sequence[float]], rule: HalvingRule) -> list[float]:
    """``[mean_0, mean_1, se_0, se_1]`` of the two terms, oriented so that lower is better."""
    (m0, s0), (m1, s1) = (_mean_se(per_seed[t]) for t in rule.terms)
    return [rule.senses[0] * m0, rule.senses[1] * m1, s0, s1]


def dominators(own: Sequence[float], others: Sequence[Sequence[float]], z: float) -> int:
    """How many of ``others`` dominate ``own`` with confidence (entries as :func:`rung_entry`)."""
    count = 0
    for other in others:
        beats = True
        for j in (0, 1):
            se = math.hypot(own[2 + j], other[2 + j])
            if not math.isfinite(se) or not own[j] - other[j] > z * se:
                beats = False
                break
        count += beats
    return count


def stops(own: Sequence[float], others: Sequence[Sequence[float]], rule: HalvingRule) -> bool:
    """Whether a configuration with rung entry ``own`` stops, given the entries of the
    configurations that reached the rung earlier: only once ``min_trials`` of them did, and when
    at least ``ceil((1 - keep) * n)`` (at least one) of the ``n`` dominate it with confidence."""
    n = len(others)
    if n < rule.min_trials or not all(math.isfinite(v) for v in own):
        return False
    need = max(1, math.ceil((1.0 - rule.keep) * n - 1e-9))
    return dominators(own, others, rule.z) >= need


class RungWatch:
    """One configuration's seeds as a lane trains them: each seed's history rows go through
    :meth:`report`, which raises :class:`MemberStopped` once the configuration is stopped.

    A rung is judged when no seed is part-way below it (every seed has reached it or has not
    started: seeds trained one after another are judged on those done, a batched population on
    all of them) and at least two seeds have values there. ``values`` holds each rung's per-seed
    values (for the record); ``stopped_at``, the rung it stopped at.
    """

    def __init__(self, rule: HalvingRule, table: Mapping[int, Sequence[Sequence[float]]],
                 n_seeds: int) -> None:  # fmt: skip
        self.rule, self.table = rule, table
        self.rows: list[list[Mapping[str, Any]]] = [[] for _ in range(n_seeds)]
        self.values: dict[int, dict[str, list[float]]] = {}
        self.stopped_at: int | None = None
        self.reason = ""

    def report(self, seed_index: int, row: Mapping[str, Any]) -> None:
        if self.stopped_at is not None:
            raise MemberStopped(int(row.get("epoch", -1)))
        self.rows[seed_index].append(row)
        trained = int(row.get("epoch", -1)) + 1
        if trained in self.rule.rungs and self._judge(trained):
            self.stopped_at = trained
            raise MemberStopped(trained - 1)

    def _judge(self, rung: int) -> bool:
        reached = [rows for rows in self.rows if rows and int(rows[-1].get("epoch", -1)) + 1 >= rung]
        if len(reached) != sum(bool(rows) for rows in self.rows) or len(reached) < 2:
            return False
        per_seed = {t: [rung_values(rows, rung, t) for rows in reached] for t in self.rule.terms}
        if any(v is None for vs in per_seed.values() for v in vs):
            return False
        self.values[rung] = {t: [float(v) for v in vs if v is not None] for t, vs in per_seed.items()}
        own, others = rung_entry(self.values[rung], self.rule), self.table.get(rung, ())
        if not stops(own, others, self.rule):
            return False
        self.reason = (f"pruned at {rung} epochs: dominated with confidence "
                       f"{self.rule.confidence:g} by {dominators(own, others, self.rule.z)} of the "
                       f"{len(others)} configurations that reached that rung before it")  # fmt: skip
        return True

    def record(self) -> dict[str, Any]:
        """What the trial's record keeps: ``rungs`` (rung -> term -> per-seed values, each rung
        judged with every seed that had reached it) and ``pruned_at``."""
        for rung in self.rule.rungs:  # a completed configuration: its rungs with every seed
            per_seed = {t: [rung_values(rows, rung, t) for rows in self.rows] for t in self.rule.terms}
            if self.stopped_at is None and all(v is not None for vs in per_seed.values() for v in vs):
                self.values[rung] = {t: [float(v) for v in vs if v is not None]
                                     for t, vs in per_seed.items()}  # fmt: skip
        return {"rungs": {str(r): v for r, v in sorted(self.values.items())},
                "pruned_at": self.stopped_at}


def comparable_group(config: Mapping[str, Any], shared: Sequence[str]) -> str:
    """The group of configurations whose rung values compare (equal ``shared`` parameters)."""
    return json.dumps({k: config.get(k) for k in shared}, sort_keys=True, default=repr)


def rung_table(records: Sequence[tuple[str, Mapping[str, Any]]], rule: HalvingRule,
               group: str) -> dict[int, list[list[float]]]:  # fmt: skip
    """Rung -> the entries (:func:`rung_entry`) of every told configuration of ``group`` that
    reached it; ``records`` holds ``(group, record)`` pairs."""
    out: dict[int, list[list[float]]] = {}
    for own_group, record in records:
        if own_group != group:
            continue
        for rung, per_seed in (record.get("rungs") or {}).items():
            if all(len(per_seed.get(t) or ()) >= 2 for t in rule.terms):
                out.setdefault(int(rung), []).append(rung_entry(per_seed, rule))
    return out


def halving_rule(spec: Any) -> HalvingRule | None:
    """The rule of ``spec.search.halving`` with its family's rung terms (None: halving off)."""
    halving = spec.search.halving
    if halving is None:
        return None
    family = spec.family
    terms = tuple(family.rung_terms)
    senses = tuple(1.0 if family.metric_info[t].direction == "minimize" else -1.0 for t in terms)
    return HalvingRule(rungs=tuple(halving.rungs), keep=halving.keep,
                       confidence=halving.confidence, min_trials=halving.min_trials,
                       terms=(terms[0], terms[1]), senses=(senses[0], senses[1]))  # fmt: skip
