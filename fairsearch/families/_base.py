"""The contract every model family fulfils, and the stage-side helpers built only on it.

A :class:`ModelFamily` says, for one kind of model: which parameters a configuration may hold and
which values they take, which metrics it reports per task, how one configuration trains and is
scored, how a trained model becomes a state dict plus JSON metadata and back (loading never runs
code), and what the audit reads from it. Search, retrain, audit and report call the family through
this contract and never branch on its name. No Ray here.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fairsearch.data import split_train_val
from fairsearch.families._metrics import Metric
from fairsearch.nets import DivergenceError

if TYPE_CHECKING:
    import torch

__all__ = ["FAMILIES", "Fitted", "Member", "ModelFamily", "Outputs", "Report", "TrialSettings",
           "get_family", "register", "train_and_evaluate", "train_one",
           "train_population", "train_seeds"]  # fmt: skip

Report = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class TrialSettings:
    """What training one configuration needs besides the configuration itself.

    ``rank``/``world_size``: this worker's place in a data-parallel Train run (each worker trains
    on its shard of the train rows); ``prepare_module`` wraps the model for data parallelism
    (``ray.train.torch.prepare_model`` inside Ray Train, nothing outside). ``model`` holds the
    spec's model section beyond the family name (a user factory and its arguments).
    ``seed`` drives initialisation and data order; ``split_seed`` (the spec's ``search.seed``)
    alone chooses the validation rows carved from train, so every seed of every stage trains
    and is judged on the same rows. ``criterion`` is the spec's ``fairness.criterion``.
    """

    epochs: int = 30
    batch_size: int = 128
    seed: int = 0
    split_seed: int = 0
    device: str = "cpu"
    rank: int = 0
    world_size: int = 1
    prepare_module: Callable[[torch.nn.Module], torch.nn.Module] | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    #: ``fairness.criterion``: what the family's penalty makes unrecoverable
    criterion: str = "independence"
    #: successive halving's rungs (epoch counts; empty: halving off): a family that measures a
    #: costly per-epoch term (the translator's fresh probe) measures it after these epochs and
    #: the last, where its :attr:`ModelFamily.rung_terms` are read
    rungs: tuple[int, ...] = ()


@dataclass(frozen=True)
class Outputs:
    """What the audit reads from a trained model on one split's rows."""

    representation: np.ndarray  # (n, k) float32: what probes see (predictions or embeddings)
    prediction: np.ndarray  # (n,) the model's own control/task prediction


Fitted = Any  # the family's own trained object (a FairModelWrapper, a Translator...)


@dataclass(frozen=True)
class Member:
    """One member of a population: a configuration and the seed it trains with."""

    config: Mapping[str, Any]
    seed: int


class ModelFamily(ABC):
    """One kind of model; subclasses are stateless singletons registered by name."""

    name: ClassVar[str]
    #: parameter name -> allowed categorical values (``None``: numeric or free-form).
    parameters: ClassVar[Mapping[str, tuple[Any, ...] | None]]
    #: One line applying a restored ``model`` to a float array ``X`` (shown in the report).
    usage: ClassVar[str] = "model(torch.as_tensor(X, dtype=torch.float32))"
    #: Every metric and per-epoch history term it reports: label, direction, role (utility,
    #: leakage, loss, check). Stages and the report read names only from here.
    metric_info: ClassVar[Mapping[str, Metric]] = {}
    #: What the audit's baselines (:meth:`baselines`) are called in the report.
    baseline_labels: ClassVar[Mapping[str, str]] = {"original": "original"}
    #: The family's own keys of the spec's ``model`` section, each with its JSON Schema; they
    #: reach :meth:`fit` in ``settings.model`` after :meth:`check_model_options`.
    model_options: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: The values of ``fairness.criterion`` it trains for (:data:`fairsearch.measures.fairness.
    #: CRITERIA`); it gets the run's in ``settings.criterion``.
    criteria: ClassVar[tuple[str, ...]] = ("independence",)
    #: The two per-epoch history terms successive halving compares at its rungs (``search.
    #: halving``): a cheap utility and a cheap leak estimate, each declared in
    #: :attr:`metric_info` (its direction says which side is better); empty: it cannot halve.
    rung_terms: ClassVar[tuple[str, ...]] = ()
    #: Parameters whose values must be equal for two configurations' rung values to compare
    #: (a leak estimate measured with a different dependence, say).
    rung_shared: ClassVar[tuple[str, ...]] = ()

    def criterion_choices(self, criterion: str) -> Mapping[str, tuple[Any, ...]]:
        """Parameters whose values ``criterion`` restricts, each with the values it allows (the
        first is the default when the space does not search the parameter); none by default."""
        return {}

    def check_model_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` (keys of :attr:`model_options` only) checked and normalised; raises
        ``ValueError`` naming the key, the value and what is allowed."""
        return dict(options)

    @abstractmethod
    def metrics(self, task: str | None, criterion: str = "independence") -> tuple[str, ...]:
        """Metric names :meth:`evaluate` returns for a dataset of ``task`` (all, when None) in a
        run of ``criterion``."""

    def check_data(self, data: Any) -> None:  # noqa: B027 - every dataset suits by default
        """Raise ``ValueError`` when ``data`` cannot be used by this family."""

    def build(self, config: Mapping[str, Any], train: Any, settings: TrialSettings) -> Any:
        """The untrained model of ``config`` (validation builds one to check a user factory)."""
        return None

    @abstractmethod
    def fit(self, config: Mapping[str, Any], train: Any, val: Any, settings: TrialSettings,
            report: Report) -> Fitted:  # fmt: skip
        """Train one configuration on ``train`` (``val`` only for per-epoch monitoring)."""

    def population_key(self, config: Mapping[str, Any]) -> str:
        """Configurations with equal keys can train as one population (they share every
        shape-changing parameter). By default each configuration is its own key."""
        import json

        return json.dumps(dict(config), sort_keys=True, default=repr)

    def fit_population(self, members: Sequence[Member], train: Any, val: Any,
                       settings: TrialSettings,
                       reports: Sequence[Report]) -> list[Fitted | DivergenceError]:  # fmt: skip
        """Train every member; a member that diverges is returned as its ``DivergenceError``.
        A member's report may raise :class:`~fairsearch.nets.MemberStopped` (a kind of
        ``DivergenceError``): that member stops there and is returned as it; the others go on.

        A member's result must not depend on its population: it equals :meth:`fit` of its
        configuration with ``settings.seed = member.seed`` (up to float rounding). This default
        trains the members one after another; families with a batched form override it.
        """
        out: list[Fitted | DivergenceError] = []
        for member, report in zip(members, reports, strict=True):
            try:
                own = settings if member.seed == settings.seed else dataclasses.replace(
                    settings, seed=member.seed)  # fmt: skip
                out.append(self.fit(member.config, train, val, own, report))
            except DivergenceError as exc:
                out.append(exc)
        return out

    @abstractmethod
    def evaluate(self, fitted: Fitted, part: Any, *, train: Any, seed: int) -> dict[str, float]:
        """The metrics of ``fitted`` on ``part``; fresh probes may fit on ``train``."""

    @abstractmethod
    def outputs(self, fitted: Fitted, part: Any) -> Outputs:
        """What the audit reads on ``part``'s rows."""

    @abstractmethod
    def state(self, fitted: Fitted) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and JSON metadata that :meth:`restore` rebuilds the model from."""

    @abstractmethod
    def restore(self, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                record: Mapping[str, Any]) -> Fitted:  # fmt: skip
        """The model saved by :meth:`state`; never executes code from the files. ``record``:
        what the run folder keeps beside it, the configuration (``record["config"]``) and the
        spec's model section (``record["model"]``)."""

    def utility_scores(self, y_true: np.ndarray, y_pred: np.ndarray, *, task: str,
                       n_classes: int) -> dict[str, float]:  # fmt: skip
        """The family's utility metrics (names as :meth:`evaluate` reports them) of plain
        predictions, such as the trivial predictor's constant; empty for a family that cannot
        score them. The decision judges a model's task metric against them."""
        return {}

    def unconstrained(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """``config`` without its fairness term, trained as the baseline a recommendation must
        beat (the decision fits per-group thresholds on it); None where the family's baseline is
        a representation of the audit's instead (:meth:`baselines`)."""
        return None

    def baselines(self, data: Any) -> dict[str, np.ndarray]:
        """Reference representations of the test rows the audit sets beside every model."""
        return {"original": np.asarray(data.subset("test").X, dtype=np.float32)}

    def transfer(self, data: Any) -> dict[str, np.ndarray]:
        """Arrays for the audit's transfer probes (``transfer_X``, ``transfer:<label>``)."""
        return {}


#: Every registered family by name (filled by :mod:`fairsearch.families`).
FAMILIES: dict[str, ModelFamily] = {}


def register(family: ModelFamily) -> ModelFamily:
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> ModelFamily:
    """The family called ``name``; ``ValueError`` naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"`model.family` must be one of {', '.join(FAMILIES)}, but got {name!r}")
    return FAMILIES[name]


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        raise DivergenceError(f"non-finite metrics {bad}", epoch=-1, step=-1,
                              value=next(iter(bad.values())))  # fmt: skip
    return metrics


def train_and_evaluate(family: ModelFamily | str, config: Mapping[str, Any], data: Any,
                       settings: TrialSettings, report: Report) -> dict[str, float]:  # fmt: skip
    """One search trial: train on the train split, return the validation metrics.

    ``family`` is a :class:`ModelFamily` or its registered name.

    The test split is never touched (it is reserved for the independent audit). Raises
    ``DivergenceError`` when training diverges or a metric is not finite.
    """
    result = train_population(family, [Member(config, settings.seed)], data, settings, [report])[0]
    if isinstance(result, DivergenceError):
        raise result
    return result


def train_population(family: ModelFamily | str, members: Sequence[Member], data: Any,
                     settings: TrialSettings,
                     reports: Sequence[Report]) -> list[dict[str, float] | DivergenceError]:  # fmt: skip
    """Search trials of a population: train on the train split, each member's validation
    metrics, or its ``DivergenceError`` (a diverged member never stops the others)."""
    if isinstance(family, str):
        family = get_family(family)
    family.check_data(data)
    train, val = split_train_val(data, settings.split_seed)
    fitted = family.fit_population(members, train, val, settings, reports)
    out: list[dict[str, float] | DivergenceError] = []
    for member, f in zip(members, fitted, strict=True):
        if isinstance(f, DivergenceError):
            out.append(f)
            continue
        try:
            out.append(_finite(family.evaluate(f, val, train=train, seed=member.seed)))
        except DivergenceError as exc:
            out.append(exc)
    return out


def train_one(family: ModelFamily, config: Mapping[str, Any], data: Any,
              settings: TrialSettings) -> dict[str, Any]:  # fmt: skip
    """One retrain (configuration, seed): metrics on val and test, state, test outputs."""
    family.check_data(data)
    train, val = split_train_val(data, settings.split_seed)
    history: list[dict[str, float]] = []
    fitted = family.fit(config, train, val, settings, history.append)
    return _retrained(family, fitted, data, train, val, settings.seed, history)


def train_seeds(family: ModelFamily, config: Mapping[str, Any], seeds: Sequence[int], data: Any,
                settings: TrialSettings) -> list[dict[str, Any] | DivergenceError]:  # fmt: skip
    """:func:`train_one` for every seed of ``seeds``, trained as one population; a seed that
    diverges is its ``DivergenceError``."""
    family.check_data(data)
    train, val = split_train_val(data, settings.split_seed)
    histories: list[list[dict[str, float]]] = [[] for _ in seeds]
    fitted = family.fit_population([Member(config, int(s)) for s in seeds], train, val, settings,
                                   [h.append for h in histories])  # fmt: skip
    out: list[dict[str, Any] | DivergenceError] = []
    for seed, f, history in zip(seeds, fitted, histories, strict=True):
        try:
            out.append(f if isinstance(f, DivergenceError) else
                       _retrained(family, f, data, train, val, int(seed), history))  # fmt: skip
        except DivergenceError as exc:
            out.append(exc)
    return out


def _retrained(family: ModelFamily, fitted: Fitted, data: Any, train: Any, val: Any, seed: int,
               history: list[dict[str, float]]) -> dict[str, Any]:  # fmt: skip
    test = data.subset("test")
    metrics = _finite(family.evaluate(fitted, val, train=train, seed=seed))
    test_metrics = family.evaluate(fitted, test, train=train, seed=seed) if len(test.X) else {}
    state, meta = family.state(fitted)
    out = family.outputs(fitted, test)
    return {
        "metrics": metrics,
        "test_metrics": test_metrics,
        "state": {k: v.detach().cpu() for k, v in state.items()},
        "meta": meta,
        "test_repr": np.asarray(out.representation, dtype=np.float32).reshape(len(test.X), -1),
        "test_pred": np.asarray(out.prediction),
        "history": history,
    }
