"""Train a population of :class:`FairModelWrapper` members as one batched model.

Every member ``s`` has its own module (built with its own seed), data order (a generator seeded
with its seed), ``mu``, learning rate, weight decay, gradient clip and Adam state; it follows,
step for step, the loop of :meth:`FairModelWrapper.fit` (a test holds a member to the same
configuration and seed trained alone). Members must share what changes shapes or the penalty's
form: architecture, task, epochs, batch size and dependence measure; ``mu``, the bandwidths,
the learning rate, weight decay and gradient clip are the member's own. A member whose
loss diverges is frozen with its :class:`DivergenceError`; the others go on. A member whose
epoch report raises :class:`~fairsearch.nets.MemberStopped` (successive halving) is frozen the
same way. At the end of each epoch, frozen members leave the batch (their slices of every weight
and of the optimiser's state are dropped), so a stopped member costs nothing more.

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
        w.module = net.member(population.slots.index(s)).to(dev)  # type: ignore[operator]
        results.append(w)
    return results


def _dependence(members: Sequence[MemberSpec], wrappers: Sequence[FairModelWrapper], *,
                dependence: DependenceName,
                q_kernel: Kernel) -> Callable[[Tensor, Tensor, Tensor], Tensor]:  # fmt: skip
    """The members' penalties as one ``(f, q, y) -> [S]`` function, each with its own
    bandwidths (independence) or its own measure within classes (separation, opportunity)."""
    criterion = wrappers[0].criterion
    if criterion == "independence":
        whole = population_dependence(dependence, sigma_f=[m.sigma_f for m in members],
                                      sigma_q=[m.sigma_q for m in members], q_kernel=q_kernel)  # fmt: skip
        return lambda f, q, y: whole(f, q)
    return population_conditional([w.dependence_fn for w in wrappers], criterion=criterion)


@dataclass
class _Population:
    """The batched model of one population, its optimiser and its per-member loss. ``slots``
    maps each slice of the batch to its member (an index into the population's members)."""

    net: nn.Module
    opt: PopulationAdam
    dependence: Callable[[Tensor, Tensor, Tensor], Tensor]  # (f, q, y) -> [S]
    mu: Tensor  # [S] penalty weights
    task: Task
    loss_bound: float
    slots: list[int]
    measure: tuple[DependenceName, Kernel]

    @classmethod
    def start(cls, net: nn.Module, members: Sequence[MemberSpec], *, task: Task,
              dependence: DependenceName, q_kernel: Kernel, loss_bound: float,
              wrappers: Sequence[FairModelWrapper]) -> _Population:  # fmt: skip
        opt = PopulationAdam(list(net.parameters()), lr=[m.lr for m in members],
                             weight_decay=[m.weight_decay for m in members],
                             clip_norm=[m.grad_clip for m in members])  # fmt: skip
        dep_fn = _dependence(members, wrappers, dependence=dependence, q_kernel=q_kernel)
        mu = torch.tensor([m.mu for m in members], dtype=torch.float32,
                          device=next(net.parameters()).device)  # fmt: skip
        return cls(net, opt, dep_fn, mu, task, loss_bound, list(range(len(members))),
                   (dependence, q_kernel))  # fmt: skip

    def train(self, rows: tuple[Tensor, Tensor, Tensor], members: Sequence[MemberSpec],
              wrappers: Sequence[FairModelWrapper], *, epochs: int,
              batch_size: int) -> list[DivergenceError | None]:  # fmt: skip
        """Every epoch, each member on its own seeded order of ``rows``; an epoch's record goes
        to each member still active, and the members frozen by then leave the batch. Each
        member's divergence, or None."""
        Xt, yt, qt = rows
        n = Xt.shape[0]
        gens = [torch.Generator().manual_seed(m.seed) for m in members]
        errors: list[DivergenceError | None] = [None] * len(members)
        step = 0
        for epoch in range(epochs):
            perms = torch.stack([torch.randperm(n, generator=gens[m]) for m in self.slots])
            perms = perms.to(Xt.device)
            sums = torch.zeros(len(self.slots), 3, dtype=torch.float64)
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
                m = self.slots[s]
                record = EpochRecord.of_means(epoch, (sums[s] / batches).tolist(), members[m].mu)
                wrappers[m].history_.append(record)
                if members[m].on_epoch_end is not None:
                    try:
                        members[m].on_epoch_end(record)
                    except MemberStopped as exc:  # halving: frozen like a diverged member
                        errors[m] = exc
                        self.opt.freeze(s)
            self._keep_active(members, wrappers)
        return errors

    def _keep_active(self, members: Sequence[MemberSpec],
                     wrappers: Sequence[FairModelWrapper]) -> None:  # fmt: skip
        """Drop the frozen members' slices from the batch (weights, optimiser state, penalty
        weights and measure): a stopped or diverged member costs nothing more."""
        active = self.opt.active
        if bool(active.all()) or not bool(active.any()):
            return
        kept = torch.nonzero(active).flatten()
        self.net.keep(kept)  # type: ignore[operator]
        self.opt.keep(kept)
        self.mu = self.mu.index_select(0, kept.to(self.mu.device))
        self.slots = [self.slots[s] for s in kept.tolist()]
        dependence, q_kernel = self.measure
        self.dependence = _dependence([members[m] for m in self.slots],
                                      [wrappers[m] for m in self.slots],
                                      dependence=dependence, q_kernel=q_kernel)  # fmt: skip

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
            errors[self.slots[s]] = DivergenceError("training loss diverged", epoch=epoch,
                                                    step=step, value=float(values[s]))  # fmt: skip
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
