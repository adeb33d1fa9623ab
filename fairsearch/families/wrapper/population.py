"""Train a population of :class:`FairModelWrapper` members as one batched model.

Every member ``s`` has its own module (built with its own seed), data order (a generator seeded
with its seed), ``mu``, learning rate, weight decay, gradient clip and Adam state; it follows,
step for step, the loop of :meth:`FairModelWrapper.fit` (a test holds a member to the same
configuration and seed trained alone). Members must share what changes shapes or the penalty's
form: architecture, task, epochs, batch size and dependence measure; ``mu``, the bandwidths,
the learning rate, weight decay and gradient clip are the member's own. A member whose
loss diverges is frozen with its :class:`DivergenceError`; the others go on. A member whose
epoch report raises :class:`~fairsearch.nets.MemberStopped` (successive halving) is frozen the
same way: no more updates, though its slice still rides in the batched forward pass.

Built-in MLPs stack as ``[S, in, out]`` weights (:class:`~fairsearch.population.StackedMLP`); any
other module goes through ``torch.func`` (:class:`~fairsearch.population.FunctionalPopulation`);
a module that writes buffers while training (batch norm) trains member by member, exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fairsearch.families.wrapper.model import (
    EpochRecord,
    FairModelWrapper,
    Task,
    check_schedule,
    training_tensors,
)
from fairsearch.measures.batched import population_dependence
from fairsearch.measures.conditional import population_conditional
from fairsearch.measures.dependence import Bandwidth, DependenceName, Kernel
from fairsearch.measures.fairness import Criterion
from fairsearch.nets import DivergenceError, MemberStopped, resolve_device
from fairsearch.population import FunctionalPopulation, PopulationAdam, stack_mlps
from fairsearch.population.layers import is_plain_mlp

__all__ = ["MemberSpec", "fit_wrapper_population"]


@dataclass(frozen=True)
class MemberSpec:
    """What may differ between members of one population."""

    module: nn.Module
    seed: int
    mu: float = 0.0
    lr: float = 3e-3
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    sigma_f: Bandwidth = "median"
    sigma_q: Bandwidth = "median"
    on_epoch_end: Callable[[EpochRecord], None] | None = None


def _net(modules: list[nn.Module]) -> nn.Module | None:
    if all(is_plain_mlp(m) for m in modules):
        try:
            return stack_mlps(modules)  # type: ignore[arg-type]
        except ValueError:
            return None
    if all(FunctionalPopulation.supported(m) for m in modules):
        return FunctionalPopulation(modules)
    return None


def _task_losses(task: Task, out: Tensor, y: Tensor) -> Tensor:
    if task == "regression":
        return (out - y.reshape(out.shape)).pow(2).mean(dim=tuple(range(1, out.ndim)))
    s, b = out.shape[:2]
    ce = F.cross_entropy(out.reshape(s * b, -1), y.reshape(-1).long(), reduction="none")
    return ce.reshape(s, b).mean(1)


def fit_wrapper_population(
    members: Sequence[MemberSpec], X: np.ndarray, y: np.ndarray, *, q: np.ndarray, task: Task,
    dependence: DependenceName = "cka", q_kernel: Kernel = "rbf", epochs: int = 40,
    batch_size: int = 128, device: str | torch.device | None = "auto", loss_bound: float = 1e6,
    criterion: Criterion = "independence",
) -> list[FairModelWrapper | DivergenceError]:  # fmt: skip
    """Train ``members`` together; returns each member's trained wrapper or its divergence."""
    if not members:
        return []
    wrappers = [FairModelWrapper(m.module, mu=m.mu, dependence=dependence, sigma_f=m.sigma_f,
                                 sigma_q=m.sigma_q, q_kernel=q_kernel, task=task, device=device,
                                 loss_bound=loss_bound, criterion=criterion)
                for m in members]  # fmt: skip
    # one member too: the batched path's Adam needs no torch.optim (whose first step imports
    # torch._dynamo, about a second in a fresh process)
    net = _net([m.module for m in members])
    if net is None:  # a module with no batched form: each member alone, exactly
        return [_alone(w, m, X, y, q, epochs, batch_size) for w, m in zip(wrappers, members, strict=True)]
    dev = resolve_device(device)
    rows = training_tensors(X, y, q, task=task, device=dev)
    check_schedule(epochs, batch_size)
    population = _Population.start(net.to(dev).train(), members, task=task, dependence=dependence,
                                   q_kernel=q_kernel, loss_bound=loss_bound,
                                   wrappers=wrappers)  # fmt: skip
    errors = population.train(rows, members, wrappers, epochs=epochs, batch_size=batch_size)
    results: list[FairModelWrapper | DivergenceError] = []
    for s, w in enumerate(wrappers):
        if errors[s] is not None:
            results.append(errors[s])  # type: ignore[arg-type]
            continue
        w.module = net.member(s).to(dev)  # type: ignore[operator]
        results.append(w)
    return results


@dataclass(frozen=True)
class _Population:
    """The batched model of one population, its optimiser and its per-member loss."""

    net: nn.Module
    opt: PopulationAdam
    dependence: Callable[[Tensor, Tensor, Tensor], Tensor]  # (f, q, y) -> [S]
    mu: Tensor  # [S] penalty weights
    task: Task
    loss_bound: float

    @classmethod
    def start(cls, net: nn.Module, members: Sequence[MemberSpec], *, task: Task,
              dependence: DependenceName, q_kernel: Kernel, loss_bound: float,
              wrappers: Sequence[FairModelWrapper]) -> _Population:  # fmt: skip
        opt = PopulationAdam(list(net.parameters()), lr=[m.lr for m in members],
                             weight_decay=[m.weight_decay for m in members],
                             clip_norm=[m.grad_clip for m in members])  # fmt: skip
        criterion = wrappers[0].criterion
        if criterion == "independence":
            whole = population_dependence(dependence, sigma_f=[m.sigma_f for m in members],
                                          sigma_q=[m.sigma_q for m in members], q_kernel=q_kernel)  # fmt: skip
            dep_fn: Callable[[Tensor, Tensor, Tensor], Tensor] = lambda f, q, y: whole(f, q)  # noqa: E731
        else:  # within classes: each member's own rows of each class, its own measure
            dep_fn = population_conditional([w.dependence_fn for w in wrappers], criterion=criterion)
        mu = torch.tensor([m.mu for m in members], dtype=torch.float32,
                          device=next(net.parameters()).device)  # fmt: skip
        return cls(net, opt, dep_fn, mu, task, loss_bound)

    def train(self, rows: tuple[Tensor, Tensor, Tensor], members: Sequence[MemberSpec],
              wrappers: Sequence[FairModelWrapper], *, epochs: int,
              batch_size: int) -> list[DivergenceError | None]:  # fmt: skip
        """Every epoch, each member on its own seeded order of ``rows``; an epoch's record goes
        to each member still active. Each member's divergence, or None."""
        Xt, yt, qt = rows
        n, size = Xt.shape[0], len(members)
        gens = [torch.Generator().manual_seed(m.seed) for m in members]
        errors: list[DivergenceError | None] = [None] * size
        step = 0
        for epoch in range(epochs):
            perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(Xt.device)
            sums = torch.zeros(size, 3, dtype=torch.float64)
            batches = 0
            for start in range(0, n, batch_size):
                idx = perms[:, start : start + batch_size]
                terms = self._step(Xt[idx], yt[idx], qt[idx], errors, epoch=epoch, step=step)
                if terms is None:
                    break
                sums += terms
                batches += 1
                step += 1
            if not self.opt.active.any():
                break
            for s in torch.nonzero(self.opt.active).flatten().tolist():
                record = EpochRecord.of_means(epoch, (sums[s] / batches).tolist(), members[s].mu)
                wrappers[s].history_.append(record)
                if members[s].on_epoch_end is not None:
                    try:
                        members[s].on_epoch_end(record)
                    except MemberStopped as exc:  # halving: frozen like a diverged member
                        errors[s] = exc
                        self.opt.freeze(s)
        return errors

    def _step(self, x: Tensor, y: Tensor, q: Tensor, errors: list[DivergenceError | None], *,
              epoch: int, step: int) -> Tensor | None:  # fmt: skip
        """One step of every active member on its ``[S, b, ...]`` mini-batch: a member whose
        loss diverges is frozen with its error in ``errors``. The ``[S, 3]`` (total, task,
        dependence) loss values, 0 for inactive members; None when no member is active."""
        out = self.net(x)
        task_loss = _task_losses(self.task, out, y)
        if x.shape[1] > 1:
            rep = out.softmax(-1) if self.task == "classification" else out
            dep = self.dependence(rep, q, y)
            loss = torch.where(self.mu > 0, task_loss + self.mu * dep, task_loss)
        else:
            dep = torch.zeros_like(task_loss)
            loss = task_loss
        values = loss.detach().double().cpu()
        bad = self.opt.active & (~torch.isfinite(values) | (values.abs() > self.loss_bound))
        for s in torch.nonzero(bad).flatten().tolist():
            errors[s] = DivergenceError("training loss diverged", epoch=epoch, step=step,
                                        value=float(values[s]))  # fmt: skip
            self.opt.freeze(s)
        if not self.opt.active.any():
            return None
        self.opt.zero_grad()
        torch.where(self.opt.active.to(loss.device), loss, torch.zeros_like(loss)).sum().backward()
        self.opt.step()
        terms = torch.stack([values, task_loss.detach().double().cpu(), dep.detach().double().cpu()], 1)
        return torch.where(self.opt.active[:, None], terms, torch.zeros_like(terms))


def _alone(wrapper: FairModelWrapper, member: MemberSpec, X: np.ndarray, y: np.ndarray,
           q: np.ndarray, epochs: int, batch_size: int) -> FairModelWrapper | DivergenceError:  # fmt: skip
    try:
        return wrapper.fit(X, y, q=q, epochs=epochs, batch_size=batch_size, lr=member.lr,
                           weight_decay=member.weight_decay, grad_clip=member.grad_clip,
                           seed=member.seed, on_epoch_end=member.on_epoch_end)  # fmt: skip
    except DivergenceError as exc:
        return exc
