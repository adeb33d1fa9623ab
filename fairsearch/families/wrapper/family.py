"""The wrapper family: any ``torch.nn.Module`` trained on ``task_loss + mu * dependence(ŷ, q)``.

The module is an MLP built from ``hidden``/``activation``, or the user's own module from
``model.factory`` (:mod:`fairsearch.families._factory`), which is trained unchanged. Plain
torch/numpy, no Ray.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fairsearch.families._base import Member, ModelFamily, Outputs, Report, TrialSettings
from fairsearch.families._metrics import Metric
from fairsearch.measures.fairness import (
    CRITERIA,
    demographic_parity_gap,
    equal_opportunity_gap,
    equalized_odds_gap,
)
from fairsearch.nets import ACTIVATIONS

if TYPE_CHECKING:  # the methods import torch and the model: a spec is checked without them
    import torch

    from fairsearch.families.wrapper.model import FairModelWrapper

__all__ = ["DEPENDENCES", "METRICS", "WrapperFamily", "build_module_for"]

DEPENDENCES = ("cka", "debiased_cka", "linear_cka", "hsic", "mmd")
#: Final metrics per task (evaluated on the validation split during a search).
METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("mse", "cka", "cka_median", "hsic", "trivial"),
    "classification": ("accuracy", "f1", "cka", "dp_gap", "trivial"),
}
#: Metrics a classification run adds under ``fairness.criterion`` other than independence.
CONDITIONAL_METRICS = ("eo_gap", "eopp_gap")
#: Parameters the wrapper's training takes itself; any other searched one goes to the factory.
TRAINING_PARAMS = ("mu", "sigma_f", "sigma_q", "lr", "weight_decay", "dependence", "batch_size",
                   "grad_clip")
#: Parameters members of one population may differ in (everything else must be equal).
PER_MEMBER = ("mu", "lr", "weight_decay", "grad_clip", "sigma_f", "sigma_q")


def _n_out(data: Any) -> int:
    return int(np.max(data.y)) + 1 if data.task == "classification" else 1


def build_module_for(config: Mapping[str, Any], model: Mapping[str, Any], input_dim: int,
                     output_dim: int) -> torch.nn.Module:  # fmt: skip
    """The module a configuration trains: the user's factory, else the built-in MLP."""
    from fairsearch.families._factory import build_module
    from fairsearch.nets import build_mlp

    if model.get("factory"):
        searched = {k: v for k, v in config.items() if k not in TRAINING_PARAMS}
        return build_module(model["factory"], model.get("factory_args") or {}, searched,
                            input_dim=input_dim, output_dim=output_dim)  # fmt: skip
    return build_mlp(input_dim, output_dim, config.get("hidden", "32-32"),
                     config.get("activation", "relu"))  # fmt: skip


class WrapperFamily(ModelFamily):
    name = "wrapper"
    usage: ClassVar[str] = "model.predict(X)"
    parameters: ClassVar[Mapping[str, tuple[Any, ...] | None]] = {
        "mu": None, "sigma_f": None, "sigma_q": None, "lr": None, "weight_decay": None,
        "dependence": DEPENDENCES, "hidden": None, "activation": tuple(ACTIVATIONS),
        "batch_size": None, "grad_clip": None,
    }  # fmt: skip
    metric_info: ClassVar[Mapping[str, Metric]] = {
        "mse": Metric("MSE", "minimize", "utility"),
        "accuracy": Metric("accuracy", "maximize", "utility"),
        "f1": Metric("F1", "maximize", "utility"),
        "cka": Metric("CKA(output, q)", "minimize", "leakage"),
        "cka_median": Metric("CKA(output, q), median bandwidths", "minimize", "leakage"),
        "hsic": Metric("HSIC(output, q)", "minimize", "leakage"),
        "dp_gap": Metric("demographic-parity gap", "minimize", "leakage"),
        "eo_gap": Metric("equalized-odds gap", "minimize", "leakage"),
        "eopp_gap": Metric("equal-opportunity gap", "minimize", "leakage"),
        "trivial": Metric("constant prediction (1 = yes)", "minimize", "check"),
        "total": Metric("total loss", "minimize", "loss"),
        "task": Metric("task loss", "minimize", "loss"),
        "dependence": Metric("dependence", "minimize", "loss"),
        "fairness": Metric("mu × dependence", "minimize", "loss"),
    }  # fmt: skip
    #: halving compares the training task loss and the training dependence of the output on q
    rung_terms: ClassVar[tuple[str, ...]] = ("task", "dependence")
    rung_shared: ClassVar[tuple[str, ...]] = ("dependence",)

    criteria: ClassVar[tuple[str, ...]] = CRITERIA

    def metrics(self, task: str | None, criterion: str = "independence") -> tuple[str, ...]:
        conditional = CONDITIONAL_METRICS if criterion != "independence" else ()
        if task == "classification":
            return METRICS[task] + conditional
        if task in METRICS:
            return METRICS[task]
        return tuple(dict.fromkeys(METRICS["regression"] + METRICS["classification"] + conditional))

    def build(self, config: Mapping[str, Any], train: Any,
              settings: TrialSettings) -> torch.nn.Module:  # fmt: skip
        return build_module_for(config, settings.model, int(train.X.shape[1]), _n_out(train))

    def fit(self, config: Mapping[str, Any], train: Any, val: Any, settings: TrialSettings,
            report: Report) -> FairModelWrapper:  # fmt: skip
        import torch

        from fairsearch.families.wrapper.model import FairModelWrapper

        torch.manual_seed(settings.seed)
        dims = (int(train.X.shape[1]), _n_out(train))
        module = self.build(config, train, settings)
        if settings.prepare_module is not None:
            module = settings.prepare_module(module)
        wrapper = FairModelWrapper(
            module,
            mu=float(config.get("mu", 0.0)),
            dependence=config.get("dependence", "cka"),
            sigma_f=config.get("sigma_f", "median"),
            sigma_q=config.get("sigma_q", "median"),
            q_kernel="delta" if train.q_kind == "categorical" else "rbf",
            task=train.task,
            device=settings.device,
            criterion=_criterion(settings.criterion, train),
        )
        X, y, q = train.X, train.y, train.q
        if settings.world_size > 1:  # equal-sized shards, so every worker takes as many steps
            n = len(X) // settings.world_size * settings.world_size
            X, y, q = (a[settings.rank : n : settings.world_size] for a in (X, y, q))

        def on_epoch_end(record: Any) -> None:
            report({"epoch": record.epoch, "total": record.total, "task": record.task,
                    "dependence": record.dependence, "fairness": record.fairness})  # fmt: skip

        wrapper.fit(
            X, y, q=q,
            epochs=int(config.get("epochs", settings.epochs)),
            batch_size=int(config.get("batch_size", settings.batch_size)),
            lr=float(config.get("lr", 3e-3)),
            weight_decay=float(config.get("weight_decay", 0.0)),
            grad_clip=float(config.get("grad_clip", 0.0)),
            seed=settings.seed,
            on_epoch_end=on_epoch_end,
        )  # fmt: skip
        wrapper.dims_ = dims
        return wrapper

    def population_key(self, config: Mapping[str, Any]) -> str:
        return json_key(config, exclude=PER_MEMBER)

    def fit_population(self, members: Sequence[Member], train: Any, val: Any,
                       settings: TrialSettings,
                       reports: Sequence[Report]) -> list[FairModelWrapper | Exception]:  # fmt: skip
        """Members that share every parameter but :data:`PER_MEMBER` train as one batched model
        (each with its own seed, data order, weights and Adam state); data-parallel lanes and
        members of different shapes train one after another."""
        shared = {self.population_key(m.config) for m in members}
        if settings.world_size > 1 or len(shared) > 1:
            return super().fit_population(members, train, val, settings, reports)
        import torch

        from fairsearch.families.wrapper.model import FairModelWrapper
        from fairsearch.families.wrapper.population import MemberSpec, fit_wrapper_population

        config = members[0].config
        specs = []
        for member, report in zip(members, reports, strict=True):
            torch.manual_seed(member.seed)
            module = self.build(member.config, train, dataclasses.replace(settings, seed=member.seed))
            specs.append(MemberSpec(
                module=module, seed=member.seed, mu=float(member.config.get("mu", 0.0)),
                lr=float(member.config.get("lr", 3e-3)),
                weight_decay=float(member.config.get("weight_decay", 0.0)),
                grad_clip=float(member.config.get("grad_clip", 0.0)),
                sigma_f=member.config.get("sigma_f", "median"),
                sigma_q=member.config.get("sigma_q", "median"),
                on_epoch_end=_reporter(report),
            ))  # fmt: skip
        fitted = fit_wrapper_population(
            specs, train.X, train.y, q=train.q, task=train.task,
            dependence=config.get("dependence", "cka"),
            q_kernel="delta" if train.q_kind == "categorical" else "rbf",
            epochs=int(config.get("epochs", settings.epochs)),
            batch_size=int(config.get("batch_size", settings.batch_size)), device=settings.device,
            criterion=_criterion(settings.criterion, train),
        )  # fmt: skip
        dims = (int(train.X.shape[1]), _n_out(train))
        for f in fitted:
            if isinstance(f, FairModelWrapper):
                f.dims_ = dims
        return fitted

    def evaluate(self, fitted: FairModelWrapper, part: Any, *, train: Any,
                 seed: int) -> dict[str, float]:  # fmt: skip
        from fairsearch.measures.dependence import cka_score, hsic_score

        kq = "delta" if part.q_kind == "categorical" else "rbf"
        if part.task == "regression":
            pred = fitted.predict(part.X)
            return {
                "mse": float(np.mean((pred - np.asarray(part.y).reshape(-1)) ** 2)),
                "cka": cka_score(pred, part.q, sigma_x=1.0, sigma_y=1.0, kernel_y=kq),
                "cka_median": cka_score(pred, part.q, kernel_y=kq),
                "hsic": hsic_score(pred, part.q, sigma_x=1.0, sigma_y=1.0, kernel_y=kq),
                # 1 for a (near-)constant predictor: no better than predicting the mean
                "trivial": float(np.std(pred) <= 1e-6 * max(float(np.std(part.y)), 1e-12)),
            }
        proba = fitted.predict_proba(part.X)
        pred, y, k = proba.argmax(-1), np.asarray(part.y).reshape(-1), proba.shape[1]
        out = {
            "accuracy": float(np.mean(pred == y)),
            "f1": _f1(y, pred, k),
            "cka": cka_score(proba, part.q, sigma_x=1.0, sigma_y=1.0, kernel_y=kq),
            "trivial": float(len(np.unique(pred)) < 2),  # one class for every row
        }
        if part.q_kind == "categorical":
            out["dp_gap"] = demographic_parity_gap(pred, np.asarray(part.q), n_classes=k)
            if fitted.criterion != "independence":
                out["eo_gap"] = equalized_odds_gap(y, pred, np.asarray(part.q), n_classes=k)
                out["eopp_gap"] = equal_opportunity_gap(y, pred, np.asarray(part.q), n_classes=k)
        return out

    def unconstrained(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        return {**config, "mu": 0.0}

    def utility_scores(self, y_true: np.ndarray, y_pred: np.ndarray, *, task: str,
                       n_classes: int) -> dict[str, float]:  # fmt: skip
        y, pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
        if task == "regression":
            return {"mse": float(np.mean((pred - y) ** 2))}
        return {"accuracy": float(np.mean(pred == y)), "f1": _f1(y, pred, n_classes)}

    def outputs(self, fitted: FairModelWrapper, part: Any) -> Outputs:
        rep = fitted.representation(part.X).reshape(len(part.X), -1)
        return Outputs(representation=rep, prediction=fitted.predict(part.X))

    def state(self, fitted: FairModelWrapper) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        module = getattr(fitted.module, "module", fitted.module)  # unwrap DistributedDataParallel
        input_dim, output_dim = fitted.dims_
        meta = {"task": fitted.task, "input_dim": input_dim, "output_dim": output_dim}
        return dict(module.state_dict()), meta

    def restore(self, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                record: Mapping[str, Any]) -> FairModelWrapper:  # fmt: skip
        """The same kind of object :meth:`fit` returns: a :class:`FairModelWrapper` around the
        rebuilt module (``.module``), so :meth:`outputs` and :meth:`evaluate` accept it."""
        from fairsearch.families.wrapper.model import FairModelWrapper

        config = record["config"]
        dims = (int(meta["input_dim"]), int(meta["output_dim"]))
        module = build_module_for(config, record.get("model") or {}, *dims)
        module.load_state_dict(dict(state))
        wrapper = FairModelWrapper(module.eval(), mu=float(config.get("mu", 0.0)),
                                   dependence=config.get("dependence", "cka"),
                                   task=meta.get("task", "regression"), device="cpu",
                                   criterion=record.get("criterion", "independence"))
        wrapper.dims_ = dims
        return wrapper


def json_key(config: Mapping[str, Any], *, exclude: Sequence[str] = ()) -> str:
    """A configuration's identity without the ``exclude`` parameters (canonical JSON)."""
    import json

    return json.dumps({k: v for k, v in config.items() if k not in exclude}, sort_keys=True,
                      default=repr)  # fmt: skip


def _reporter(report: Report) -> Any:
    def on_epoch_end(record: Any) -> None:
        report({"epoch": record.epoch, "total": record.total, "task": record.task,
                "dependence": record.dependence, "fairness": record.fairness})  # fmt: skip

    return on_epoch_end


def _criterion(criterion: str, train: Any) -> str:
    """``criterion`` when it suits ``train`` (:func:`~fairsearch.measures.fairness.
    criterion_problem`); raises ``ValueError`` saying why not."""
    from fairsearch.measures.fairness import criterion_problem

    problem = criterion_problem(criterion, train.task, _n_out(train))
    if problem:
        raise ValueError(problem)
    return criterion


def _f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Binary: F1 of class 1; multi-class: macro F1 over every class."""
    from sklearn.metrics import f1_score  # here: a regression lane never imports sklearn

    if n_classes == 2:
        return float(f1_score(y, pred, pos_label=1, average="binary", zero_division=0))
    return float(f1_score(y, pred, labels=list(range(n_classes)), average="macro",
                          zero_division=0))  # fmt: skip
