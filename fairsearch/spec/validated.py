"""The validated spec: one frozen dataclass per section, defaults filled in.

:func:`fairsearch.spec.schema.parse_spec` builds a :class:`Spec`; :meth:`Spec.to_dict` is what a
run folder's ``spec.yaml`` holds (every default filled in, the space inlined).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fairsearch.families import get_family
from fairsearch.measures.fairness import CRITERIA, Criterion
from fairsearch.probes.registry import PROBE_CHOICES
from fairsearch.spec.constraints import parse_constraint
from fairsearch.spec.space import Param, Space

__all__ = ["ALGORITHMS", "CRITERIA", "FRESH_SEEDS", "FairnessSpec", "HalvingSpec", "Objective",
           "PostSpec", "SearchSpec", "Spec", "TrialSpec"]

Direction = Literal["minimize", "maximize"]


Algorithm = Literal["nsga2", "tpe", "random", "gp"]


ALGORITHMS: tuple[str, ...] = ("nsga2", "tpe", "random", "gp")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction


@dataclass(frozen=True)
class HalvingSpec:
    """``search.halving``: multi-objective successive halving (:mod:`fairsearch.search.halving`)."""

    #: epoch counts at which configurations are judged (each below ``trial.epochs``)
    rungs: tuple[int, ...]
    #: a configuration stops when at least a ``1 - keep`` share of the configurations that
    #: reached its rung earlier dominate it with confidence
    keep: float = 0.5
    #: one-sided confidence of each of the two differences of seed means
    confidence: float = 0.9
    #: configurations that must have reached a rung before it stops any
    min_trials: int = 4

    def to_dict(self) -> dict[str, Any]:
        return {"rungs": list(self.rungs), "keep": self.keep, "confidence": self.confidence,
                "min_trials": self.min_trials}  # fmt: skip


@dataclass(frozen=True)
class SearchSpec:
    algorithm: Algorithm = "nsga2"
    trials: int = 20
    max_concurrent: int = 2
    seed: int = 0
    #: seeds every configuration trains with, as one population; objectives are seed means
    seeds: int = 4
    #: at most this many configurations of one shape a free lane trains together
    population: int = 1
    #: ``ray``: lanes on Ray (the default, the only way onto a cluster); ``inprocess``: this
    #: process, one configuration at a time, no Ray
    executor: Literal["ray", "inprocess"] = "ray"
    #: seconds without any configuration finishing before the search says why (0: never)
    stall_timeout_s: float = 600.0
    #: successive halving (None: off, every configuration trains to its last epoch)
    halving: HalvingSpec | None = None

    @property
    def training_seeds(self) -> tuple[int, ...]:
        """The seeds of every search trial: ``seed, seed + 1, ...`` (``seeds`` of them)."""
        return tuple(range(self.seed, self.seed + self.seeds))


@dataclass(frozen=True)
class TrialSpec:
    epochs: int = 30
    batch_size: int = 128
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    max_failures: int = 1  # Ray Train restarts of a run after a worker failure


@dataclass(frozen=True)
class FairnessSpec:
    #: what fairness means (:mod:`fairsearch.measures.conditional`): ``independence`` (q is not
    #: recoverable from the prediction: demographic parity), ``separation`` (not recoverable given
    #: the true label: equalized odds), ``opportunity`` (given the positive label: equal
    #: opportunity)
    criterion: Criterion = "independence"


#: Retrain seeds when ``post.seeds`` is not given (or is a count): fresh ones.
FRESH_SEEDS = 3


@dataclass(frozen=True)
class PostSpec:
    select_maximize: str | None = None
    select_minimize: str | None = None
    subject_to: tuple[str, ...] = ()
    knee: bool = False
    top_k: int = 3
    #: retrain seeds: explicit, or ``None`` for :data:`FRESH_SEEDS` seeds no search trial used
    seeds: tuple[int, ...] | None = None
    fresh_seeds: int = FRESH_SEEDS
    retrain_epochs: int | None = None
    #: audit probe ladder families (majority is always added)
    probes: tuple[str, ...] = PROBE_CHOICES

    @property
    def constraints(self) -> tuple[Any, ...]:
        """``subject_to`` parsed (see :mod:`fairsearch.spec.constraints`)."""
        return tuple(parse_constraint(c) for c in self.subject_to)


@dataclass(frozen=True)
class Spec:
    name: str
    data: Mapping[str, Any]
    model: str  # the family name
    objectives: tuple[Objective, ...]
    space: Space
    search: SearchSpec = field(default_factory=SearchSpec)
    trial: TrialSpec = field(default_factory=TrialSpec)
    post: PostSpec = field(default_factory=PostSpec)
    #: the model section beyond the family: ``factory`` and ``factory_args`` of a user's module
    model_args: Mapping[str, Any] = field(default_factory=dict)
    fairness: FairnessSpec = field(default_factory=FairnessSpec)

    @property
    def criterion(self) -> str:
        """``fairness.criterion``: what fairness means for this run."""
        return self.fairness.criterion

    def criterion_setting(self) -> dict[str, str]:
        """``{"criterion": ...}`` for a stage's training settings and a retrained seed's
        ``config.json``; empty for independence, so their files read as they always have."""
        return {"criterion": self.criterion} if self.criterion != "independence" else {}

    @property
    def family(self) -> Any:
        """The :class:`~fairsearch.families.ModelFamily` of this spec."""
        return get_family(self.model)

    @property
    def retrain_seeds(self) -> tuple[int, ...]:
        """``post.seeds``, or :data:`FRESH_SEEDS` seeds right after the search's own: a retrain
        seed is then never one the search selected on, so its check is out of sample."""
        if self.post.seeds is not None:
            return self.post.seeds
        start = self.search.seed + self.search.seeds
        return tuple(range(start, start + self.post.fresh_seeds))

    def to_dict(self) -> dict[str, Any]:
        """The validated spec, defaults filled in and the space inlined (YAML-ready)."""
        post = self.post
        select: dict[str, Any] = {}
        if post.select_maximize is not None:
            select["maximize"] = post.select_maximize
        if post.select_minimize is not None:
            select["minimize"] = post.select_minimize
        if post.subject_to:
            select["subject_to"] = list(post.subject_to)
        if post.knee:
            select["knee"] = True
        out = {
            "name": self.name,
            "data": dict(self.data),
            "model": {"family": self.model, **self.model_args} if self.model_args else self.model,
            "objectives": [asdict(o) for o in self.objectives],
            "space": {p.name: _param_dict(p) for p in self.space},
            "search": _search_dict(self.search),
            "trial": asdict(self.trial),
            "post": {
                "select": select or None,
                "top_k": post.top_k,
                "seeds": list(post.seeds) if post.seeds is not None else post.fresh_seeds,
                "retrain_epochs": post.retrain_epochs,
                "probes": list(post.probes),
            },
        }
        if self.fairness != FairnessSpec():  # a spec of independence reads as it always has
            out["fairness"] = asdict(self.fairness)
        return out


def _search_dict(search: SearchSpec) -> dict[str, Any]:
    """The search section; ``halving`` only when it is on (a spec without it reads as before)."""
    out = {k: v for k, v in asdict(search).items() if k != "halving"}
    if search.halving is not None:
        out["halving"] = search.halving.to_dict()
    return out


def _param_dict(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.type}
    if p.type == "categorical":
        out["choices"] = list(p.choices)
    else:
        out.update(low=p.low, high=p.high)
        if p.log:
            out["log"] = True
        if p.step is not None:
            out["step"] = p.step
    if p.when:
        out["when"] = {k: list(v) for k, v in p.when}
    return out

