"""``FairModelWrapper``: train any ``torch.nn.Module`` with a dependence penalty on its output.

The training objective is ``task_loss(module(X), y) + mu * dependence(prediction, q)``; under
``criterion="separation"`` (or ``"opportunity"``) the dependence is taken within each class of
``y`` (or the positive class), each class weighted by its share
(:mod:`fairsearch.measures.conditional`). The wrapped
module is trained in place but never subclassed or modified otherwise, so the trained module can be
used, saved or exported exactly like a bare one. With ``mu = 0`` the optimisation is identical,
step for step, to a plain loop over the same seeded mini-batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from fairsearch.measures.conditional import conditional_dependence
from fairsearch.measures.dependence import Bandwidth, DependenceName, Kernel, dependence_loss
from fairsearch.measures.fairness import CRITERIA, Criterion
from fairsearch.nets import DivergenceError, resolve_device

Task = Literal["regression", "classification"]
DependenceFn = Callable[[Tensor, Tensor], Tensor]

__all__ = ["DivergenceError", "EpochRecord", "FairModelWrapper", "check_schedule", "resolve_device",
           "training_tensors"]


@dataclass(frozen=True)
class EpochRecord:
    """Mean loss terms over one epoch's mini-batches."""

    epoch: int
    total: float
    task: float
    dependence: float  # the un-weighted dependence term
    fairness: float  # mu * dependence, the part the wrapper adds to the loss

    @classmethod
    def of_means(cls, epoch: int, means: Sequence[float], mu: float) -> EpochRecord:
        """The record of an epoch whose (total, task, dependence) means are ``means``."""
        total, task, dependence = means
        return cls(epoch, total, task, dependence, mu * dependence)


def _task_loss(task: Task) -> Callable[[Tensor, Tensor], Tensor]:
    if task == "regression":
        return lambda out, y: nn.functional.mse_loss(out, y.reshape(out.shape))
    if task == "classification":
        return lambda out, y: nn.functional.cross_entropy(out, y.long().reshape(-1))
    raise ValueError(f"task must be 'regression' or 'classification', but got {task!r}")


class FairModelWrapper:
    """Adds ``mu * dependence(prediction, q)`` to the training loss of ``module``.

    Args:
        module: any ``nn.Module`` mapping a float batch ``(b, d)`` to ``(b, 1)`` (regression) or
            ``(b, C)`` logits (classification).
        mu: weight of the dependence penalty (``>= 0``).
        dependence: a measure name (``cka``, ``debiased_cka``, ``linear_cka``, ``hsic``, ``mmd``)
            or a callable ``(prediction, q) -> scalar tensor``.
        sigma_f, sigma_q: RBF bandwidths for the prediction and for ``q`` (number or ``"median"``).
        q_kernel: ``"rbf"`` for a continuous ``q``, ``"delta"`` for a categorical one.
        task: ``"regression"`` (MSE) or ``"classification"`` (cross-entropy; the penalty sees the
            softmax probabilities).
        loss_bound: a total loss whose absolute value exceeds this raises ``DivergenceError``.
        criterion: ``"independence"`` (the dependence on the whole batch), ``"separation"``
            (within each class of ``y``, weighted by its share) or ``"opportunity"`` (within
            the positive class); the latter two need ``task="classification"``.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        mu: float = 0.0,
        dependence: DependenceName | DependenceFn = "cka",
        sigma_f: Bandwidth = "median",
        sigma_q: Bandwidth = "median",
        q_kernel: Kernel = "rbf",
        task: Task = "regression",
        device: str | torch.device | None = "auto",
        loss_bound: float = 1e6,
        criterion: Criterion = "independence",
    ) -> None:
        if not (isinstance(mu, int | float) and math.isfinite(mu) and mu >= 0):
            raise ValueError(f"mu must be a finite number >= 0, but got {mu!r}")
        if criterion not in CRITERIA or (criterion != "independence" and task != "classification"):
            raise ValueError(f"criterion must be one of {', '.join(CRITERIA)} (other than "
                             f"independence only with task='classification'), but got "
                             f"{criterion!r} with task={task!r}")  # fmt: skip
        self.criterion = criterion
        self.module = module
        self.mu = float(mu)
        self.task = task
        self._task_loss = _task_loss(task)
        self.dependence_fn: DependenceFn = (
            dependence
            if callable(dependence)
            else dependence_loss(dependence, sigma_f=sigma_f, sigma_q=sigma_q, q_kernel=q_kernel)
        )
        self.device = resolve_device(device)
        self.loss_bound = loss_bound
        self.history_: list[EpochRecord] = []

    def _representation(self, out: Tensor) -> Tensor:
        return out.softmax(-1) if self.task == "classification" else out

    def fit(
        self,
        X: np.ndarray | Tensor,
        y: np.ndarray | Tensor,
        *,
        q: np.ndarray | Tensor,
        epochs: int = 40,
        batch_size: int = 128,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        grad_clip: float = 0.0,
        seed: int = 0,
        on_epoch_end: Callable[[EpochRecord], None] | None = None,
    ) -> FairModelWrapper:
        """Train with Adam on seeded, shuffled mini-batches; returns ``self``.

        ``on_epoch_end`` is called with each epoch's record (a search uses it to report progress).
        ``grad_clip > 0`` clips the gradient's L2 norm (over every parameter) to that value.
        """
        Xt, yt, qt = training_tensors(X, y, q, task=self.task, device=self.device)
        n = Xt.shape[0]
        if not (yt.shape[0] == n and qt.shape[0] == n):
            raise ValueError(
                f"X, y and q must have the same number of rows, but got {n}, {yt.shape[0]} "
                f"and {qt.shape[0]}"
            )
        check_schedule(epochs, batch_size)
        self.module.to(self.device).train()
        opt = torch.optim.Adam(self.module.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)
        step = 0
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=gen).to(self.device)
            sums = np.zeros(3)
            batches = 0
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                sums += self._step(opt, Xt[idx], yt[idx], qt[idx], grad_clip, epoch=epoch, step=step)
                batches += 1
                step += 1
            record = EpochRecord.of_means(epoch, sums / batches, self.mu)
            self.history_.append(record)
            if on_epoch_end is not None:
                on_epoch_end(record)
        return self

    def _step(self, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, q: Tensor, grad_clip: float,
              *, epoch: int, step: int) -> tuple[float, float, float]:  # fmt: skip
        """One Adam step on a mini-batch; its (total, task, dependence) loss values. The
        dependence of a batch of one row is 0; with ``mu = 0`` it is measured, not trained on."""
        out = self.module(x)
        task = self._task_loss(out, y)
        if self.mu > 0 and x.shape[0] > 1:
            dep = self.penalty(self._representation(out), q, y)
            loss = task + self.mu * dep
        else:
            with torch.no_grad():
                dep = (
                    self.penalty(self._representation(out), q, y)
                    if x.shape[0] > 1
                    else out.new_zeros(())
                )
            loss = task
        value = float(loss.detach())
        if not math.isfinite(value) or abs(value) > self.loss_bound:
            raise DivergenceError("training loss diverged", epoch=epoch, step=step, value=value)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(self.module.parameters(), grad_clip)
        opt.step()
        return value, float(task.detach()), float(dep.detach())

    def penalty(self, prediction: Tensor, q: Tensor, y: Tensor) -> Tensor:
        """The dependence term of one mini-batch under :attr:`criterion`."""
        return conditional_dependence(self.dependence_fn, prediction, q, y,
                                      criterion=self.criterion)  # fmt: skip

    @torch.no_grad()
    def predict(self, X: np.ndarray | Tensor, *, batch_size: int = 4096) -> np.ndarray:
        """Regression: ``(n,)`` predictions; classification: ``(n,)`` predicted class codes."""
        out = self._forward(X, batch_size)
        return out.argmax(-1).numpy() if self.task == "classification" else out.reshape(-1).numpy()

    @torch.no_grad()
    def predict_proba(self, X: np.ndarray | Tensor, *, batch_size: int = 4096) -> np.ndarray:
        """Classification only: ``(n, C)`` class probabilities."""
        if self.task != "classification":
            raise ValueError(f"predict_proba needs task='classification', but task={self.task!r}")
        return self._forward(X, batch_size).softmax(-1).numpy()

    def representation(self, X: np.ndarray | Tensor) -> np.ndarray:
        """What the penalty sees: predictions (regression) or class probabilities."""
        with torch.no_grad():
            return self._representation(self._forward(X, 4096)).numpy()

    def _forward(self, X: np.ndarray | Tensor, batch_size: int) -> Tensor:
        self.module.eval()
        Xt = as_tensor(X).float()
        outs = [
            self.module(Xt[i : i + batch_size].to(self.device)).cpu()
            for i in range(0, Xt.shape[0], batch_size)
        ]
        return torch.cat(outs)


def as_tensor(a: np.ndarray | Tensor) -> Tensor:
    """``a`` as a tensor; a read-only array (a memory map, a pandas column's values) is copied
    first, since torch would otherwise share it and warn that it is not writable."""
    if isinstance(a, Tensor):
        return a
    arr = np.asarray(a)
    return torch.as_tensor(arr if arr.flags.writeable else arr.copy())


def training_tensors(X: np.ndarray | Tensor, y: np.ndarray | Tensor, q: np.ndarray | Tensor, *,
                     task: Task, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """``X`` (float32), ``y`` (float32 for regression, int64 classes) and ``q`` (float32 when
    numeric, codes as they are) as tensors on ``device``."""
    Xt, yt, qt = (as_tensor(a) for a in (X, y, q))
    yt = yt.float() if task == "regression" else yt.long()
    if torch.is_floating_point(qt):
        qt = qt.float()
    return Xt.float().to(device), yt.to(device), qt.to(device)


def check_schedule(epochs: int, batch_size: int) -> None:
    """``ValueError`` unless both are at least 1."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, but got {epochs}, {batch_size}")
