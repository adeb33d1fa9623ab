"""One trial: train one configuration on the train split and score it on the validation split.

Plain torch/numpy, no Ray: the search runs :func:`train_and_evaluate` inside Ray Train workers,
tests and benchmarks call it directly. The test split is never touched here (it is reserved for
the independent audit); a dataset without validation rows gets a seeded 25% of its train rows
carved out as validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fairsearch.dependence import cka_score, hsic_score
from fairsearch.wrapper import DivergenceError, FairModelWrapper

__all__ = [
    "DivergenceError", "TrialSettings", "fit_wrapper", "split_train_val", "train_and_evaluate",
    "wrapper_metrics",
]

Report = Callable[[dict[str, float]], None]
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU,
}  # fmt: skip
VAL_FRACTION = 0.25


@dataclass(frozen=True)
class TrialSettings:
    """What a trial needs besides its sampled config.

    ``rank``/``world_size``: this worker's place in a data-parallel Train run (each worker trains
    on its shard of the train rows); ``prepare_module`` wraps the model for data parallelism
    (``ray.train.torch.prepare_model`` inside Ray Train, nothing outside).
    """

    epochs: int = 30
    batch_size: int = 128
    seed: int = 0
    device: str = "cpu"
    rank: int = 0
    world_size: int = 1
    prepare_module: Callable[[nn.Module], nn.Module] | None = None


def split_train_val(data: Any, seed: int = 0) -> tuple[Any, Any]:
    """(train, val) parts of a Dataset; carves a seeded 25% of train when there is no val."""
    split = np.asarray(data.split)
    if (split == "val").any():
        return data.subset("train"), data.subset("val")
    train_idx = np.flatnonzero(split == "train")
    rng = np.random.default_rng(seed)
    val_idx = np.sort(rng.choice(train_idx, size=max(1, int(len(train_idx) * VAL_FRACTION)),
                                 replace=False))  # fmt: skip
    new = split.astype(object).copy()
    new[val_idx] = "val"
    carved = _replace_split(data, new.astype(str))
    return carved.subset("train"), carved.subset("val")


def _replace_split(data: Any, split: np.ndarray) -> Any:
    import dataclasses

    return dataclasses.replace(data, split=split)


def train_and_evaluate(
    model: str,
    config: dict[str, Any],
    data: Any,
    settings: TrialSettings,
    report: Report,
) -> dict[str, float]:
    """Train ``model`` ("wrapper" | "translator") with ``config``; return validation metrics.

    ``report`` receives one dict per epoch (loss terms). Raises ``DivergenceError`` when
    training diverges.
    """
    if model == "wrapper":
        return _wrapper_trial(config, data, settings, report)
    if model == "translator":
        from fairsearch.translator import train_and_evaluate as translator_trial

        return translator_trial(model, config, data, settings, report)
    raise ValueError(f"model must be 'wrapper' or 'translator', but got {model!r}")


def build_mlp(d_in: int, d_out: int, hidden: str | int = "32-32", activation: str = "relu") -> nn.Module:
    sizes = [int(h) for h in str(hidden).split("-") if h]
    act = _ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    prev = d_in
    for h in sizes:
        layers += [nn.Linear(prev, h), act()]
        prev = h
    layers.append(nn.Linear(prev, d_out))
    return nn.Sequential(*layers)


def fit_wrapper(config: dict[str, Any], data: Any, settings: TrialSettings,
                report: Report) -> tuple[FairModelWrapper, Any]:  # fmt: skip
    """Train the wrapped MLP of ``config`` on the train split; returns it and the val part."""
    train, val = split_train_val(data, settings.seed)
    n_classes = int(np.max(data.y)) + 1 if data.task == "classification" else 1
    torch.manual_seed(settings.seed)
    module = build_mlp(data.X.shape[1], n_classes, config.get("hidden", "32-32"),
                       config.get("activation", "relu"))  # fmt: skip
    if settings.prepare_module is not None:
        module = settings.prepare_module(module)
    wrapper = FairModelWrapper(
        module,
        mu=float(config.get("mu", 0.0)),
        dependence=config.get("dependence", "cka"),
        sigma_f=config.get("sigma_f", "median"),
        sigma_q=config.get("sigma_q", "median"),
        q_kernel="delta" if data.q_kind == "categorical" else "rbf",
        task=data.task,
        device=settings.device,
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
        seed=settings.seed,
        on_epoch_end=on_epoch_end,
    )  # fmt: skip
    return wrapper, val


def wrapper_metrics(wrapper: FairModelWrapper, part: Any) -> dict[str, float]:
    """The wrapper's metrics on one split; ``DivergenceError`` when any is not finite."""
    if part.task == "classification":
        metrics = _classification_metrics(wrapper, part)
    else:
        metrics = _regression_metrics(wrapper, part)
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        raise DivergenceError(f"non-finite validation metrics {bad}", epoch=-1, step=-1,
                              value=next(iter(bad.values())))  # fmt: skip
    return metrics


def _wrapper_trial(config: dict[str, Any], data: Any, settings: TrialSettings,
                   report: Report) -> dict[str, float]:  # fmt: skip
    wrapper, val = fit_wrapper(config, data, settings, report)
    return wrapper_metrics(wrapper, val)


def _q_kernel(part: Any) -> str:
    return "delta" if part.q_kind == "categorical" else "rbf"


def _regression_metrics(wrapper: FairModelWrapper, val: Any) -> dict[str, float]:
    pred = wrapper.predict(val.X)
    kq = _q_kernel(val)
    return {
        "mse": float(np.mean((pred - np.asarray(val.y).reshape(-1)) ** 2)),
        "cka": cka_score(pred, val.q, sigma_x=1.0, sigma_y=1.0, kernel_y=kq),
        "cka_median": cka_score(pred, val.q, kernel_y=kq),
        "hsic": hsic_score(pred, val.q, sigma_x=1.0, sigma_y=1.0, kernel_y=kq),
    }


def _classification_metrics(wrapper: FairModelWrapper, val: Any) -> dict[str, float]:
    proba = wrapper.predict_proba(val.X)
    pred = proba.argmax(-1)
    y = np.asarray(val.y).reshape(-1)
    kq = _q_kernel(val)
    out = {
        "accuracy": float(np.mean(pred == y)),
        "f1": _f1(y, pred, proba.shape[1]),
        "cka": cka_score(proba, val.q, sigma_x=1.0, sigma_y=1.0, kernel_y=kq),
    }
    if val.q_kind == "categorical":
        out["dp_gap"] = _dp_gap(pred, np.asarray(val.q), proba.shape[1])
    return out


def _f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Binary: F1 of class 1; multi-class: macro F1 over every class."""
    from sklearn.metrics import f1_score

    if n_classes == 2:
        return float(f1_score(y, pred, pos_label=1, average="binary", zero_division=0))
    return float(f1_score(y, pred, labels=list(range(n_classes)), average="macro",
                          zero_division=0))  # fmt: skip


def _dp_gap(pred: np.ndarray, q: np.ndarray, n_classes: int) -> float:
    """Demographic-parity gap: max over predicted classes of the spread of P(pred=c | group)."""
    _, g = np.unique(q.reshape(len(q), -1), axis=0, return_inverse=True)
    g = g.reshape(-1)
    n_groups = int(g.max()) + 1
    classes = [1] if n_classes == 2 else range(n_classes)
    gap = 0.0
    for c in classes:
        rates = [np.mean(pred[g == i] == c) for i in range(n_groups) if np.any(g == i)]
        gap = max(gap, float(max(rates) - min(rates)))
    return gap
