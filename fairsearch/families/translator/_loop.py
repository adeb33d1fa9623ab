"""One run of the translator's optimisation: its optimisers, its adversaries and its steps.

A :class:`TrainingLoop` holds what one ``Translator.fit`` trains: the network, the adversaries
(or protected head), the Adam optimisers, the learning-rate schedule, the seeded batch order and
the step count. Each step minimises ``w_control * CE(control) + w_fair * fairness +
w_rec * ||e_fair - e||^2`` (plus the codebook and cell-balance terms of a quantized translator),
then updates the adversaries. A non-finite loss, or one whose magnitude exceeds ``loss_bound``,
raises :class:`~fairsearch.nets.DivergenceError` with the epoch, step and value. Under
``torch.distributed`` every gradient is averaged across the process group before each step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fairsearch.families.translator._losses import HEADED, fairness_term, reconstruction_loss
from fairsearch.families.translator._model import TranslatorNet, mlp
from fairsearch.families.translator._quantize import cell_balance
from fairsearch.nets import DivergenceError

__all__ = ["LOSS_TERMS", "TrainingLoop", "data_parallel"]

#: The loss terms an epoch's history row averages, in the order :meth:`TrainingLoop.step` returns them.
LOSS_TERMS = ("loss", "control_loss", "fair_loss", "reconstruction_loss")
Optimizer = torch.optim.Optimizer


class TrainingLoop:
    """The optimisation state of one fit on coded rows ``(E, yc, qc)`` (``p``: validated params).

    ``n_classes``: the numbers of control and protected classes; ``world``: the size of the
    data-parallel process group (1: none).
    """

    def __init__(self, p: dict[str, Any], net: TranslatorNet, E: np.ndarray, yc: np.ndarray,
                 qc: np.ndarray, *, n_classes: tuple[int, int], world: int,
                 device: torch.device) -> None:  # fmt: skip
        self.p, self.net, self.device, self.world = p, net, device, world
        self.n_y, self.n_q = n_classes
        self.n_head_inputs = E.shape[1] + (self.n_y if p["adversary_control"] else 0)
        count = p["adversary_count"] if p["fairness"] == "adversarial" else 1
        self.heads = [self.new_head() for _ in range(count)] if p["fairness"] in HEADED else []
        params = list(net.parameters())
        self.adv_opts: list[Optimizer] = []
        if self.heads and p["fairness"] == "adversarial":
            self.adv_opts = [self._adversary_opt(h) for h in self.heads]
        elif self.heads:
            params += list(self.heads[0].parameters())
        self.opt = torch.optim.Adam(params, lr=p["lr"], weight_decay=p["weight_decay"])
        #: p(q | y) on the training rows: the confusion target of an adversary that sees y
        self.q_given_y = _q_given_y(yc, qc, self.n_y, self.n_q).to(device)
        if world > 1:  # same initial weights (same seed) + averaged gradients = same weights
            for o in (self.opt, *self.adv_opts):
                o.register_step_pre_hook(_average_gradients)
        self.sched = _cosine_schedule(self.opt, p, len(E)) if p["lr_schedule"] == "cosine" else None
        # The training rows in the network's standardised units, once: mean and scale are fixed
        # buffers, so each step's rows (and an all-rows fair term) are slices of this matrix
        with torch.no_grad():
            self.Z = net.standardise(torch.from_numpy(E).to(device))
        self.y, self.q = torch.from_numpy(yc).to(device), torch.from_numpy(qc).to(device)
        self.gen = torch.Generator().manual_seed(p["seed"])
        self.step = 0
        self.fair_rows = p["fair_rows"] > 0 and (
            p["quantize"] > 0 or (p["fairness"] not in HEADED and p["fairness"] != "none"))

    @property
    def head(self) -> nn.Module | None:
        """The first adversary (or the protected head): what a saved translator keeps."""
        return self.heads[0] if self.heads else None

    def new_head(self) -> nn.Module:
        """A fresh adversary / protected head."""
        p = self.p
        return mlp(self.n_head_inputs, self.n_q, depth=p["adversary_depth"],
                   width=p["adversary_width"], activation=p["activation"]).to(self.device)  # fmt: skip

    def _adversary_opt(self, head: nn.Module) -> Optimizer:
        return torch.optim.Adam(head.parameters(), lr=self.p["adversary_lr"],
                                weight_decay=self.p["weight_decay"])  # fmt: skip

    def q_onehot(self, q: Tensor) -> Tensor:
        """One-hot ``q`` codes (float32), the encoder's extra input when it reads ``q``."""
        return F.one_hot(q, self.n_q).to(torch.float32)

    # ------------------------------------------------------------------ one epoch
    def run_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch of seeded mini-batches; the mean of each of :data:`LOSS_TERMS`."""
        n, batch_size = len(self.Z), self.p["batch_size"]
        sums, batches = np.zeros(len(LOSS_TERMS)), 0
        perm = torch.randperm(n, generator=self.gen).to(self.device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            if idx.numel() < 2:
                continue
            fair_batch = self._fair_batch() if self.fair_rows else None
            self._maybe_reset_adversary()
            sums += self._step(self.Z[idx], self.y[idx], self.q[idx], epoch=epoch,
                               fair_batch=fair_batch)  # fmt: skip
            if self.sched is not None:
                self.sched.step()
            batches += 1
            self.step += 1
        return {k: float(v) for k, v in zip(LOSS_TERMS, sums / max(batches, 1), strict=True)}

    def _fair_batch(self) -> tuple[Tensor, Tensor, Tensor]:
        """The rows a head-free fairness term is estimated on (standardised): a fresh seeded
        sample of ``fair_rows`` training rows (all of them when ``fair_rows >= n``)."""
        n = len(self.Z)
        rows = (slice(None) if self.p["fair_rows"] >= n else
                torch.randperm(n, generator=self.gen)[: self.p["fair_rows"]].to(self.device))  # fmt: skip
        return self.Z[rows], self.q[rows], self.y[rows]

    def _maybe_reset_adversary(self) -> None:
        """Every ``adversary_reset_every`` steps, one adversary in turn starts afresh."""
        every = self.p["adversary_reset_every"]
        if not (self.adv_opts and every and self.step and self.step % every == 0):
            return
        i = (self.step // every) % len(self.heads)
        self.heads[i] = self.new_head()
        self.adv_opts[i] = self._adversary_opt(self.heads[i])
        if self.world > 1:
            self.adv_opts[i].register_step_pre_hook(_average_gradients)

    # ------------------------------------------------------------------ one step
    def _step(self, z: Tensor, y: Tensor, q: Tensor, *, epoch: int,
              fair_batch: tuple[Tensor, Tensor, Tensor] | None = None) -> np.ndarray:  # fmt: skip
        """One translator step on standardised rows ``z`` (and ``fair_batch``'s), then the
        adversaries' steps; the step's loss terms."""
        p, net = self.p, self.net
        z_fair, assign, vq = net.translate_parts(z, self.q_onehot(q) if net.q_dim else None)
        control = F.cross_entropy(net.control_head(z_fair), y)
        zf, qf, yf, af, weight = z_fair, q, y, assign, None
        if fair_batch is not None:
            qf, yf = fair_batch[1], fair_batch[2]
            zf, af, weight = net.fair_parts(fair_batch[0],
                                            self.q_onehot(qf) if net.q_dim else None, p["fairness"])
        fair = self._fair(zf, qf, yf, weight)
        rec = reconstruction_loss(z_fair, z)
        total = p["w_control"] * control + p["w_fair"] * fair + p["w_rec"] * rec
        if af is not None:  # quantized: codebook loss and the groups' balance within each cell
            cells = cell_balance(af, qf, yf, n_groups=self.n_q)
            total = total + vq + p["w_cells"] * cells
            fair = fair + cells
        value = self._checked(total, epoch)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        if self.adv_opts and (self.step + 1) % p["adversary_every"] == 0:
            self._train_adversaries(z_fair.detach(), y, q)
        return np.array([value, float(control.detach()), float(fair.detach()), float(rec.detach())])

    def _checked(self, total: Tensor, epoch: int) -> float:
        """The loss's value; ``DivergenceError`` when it is not finite or beyond the bound."""
        value = float(total.detach())
        if not math.isfinite(value) or abs(value) > self.p["loss_bound"]:
            raise DivergenceError(
                f"translator loss diverged (fairness={self.p['fairness']!r}, "
                f"bound={self.p['loss_bound']})",
                epoch=epoch, step=self.step, value=value,
            )  # fmt: skip
        return value

    def _train_adversaries(self, zd: Tensor, y: Tensor, q: Tensor) -> None:
        """``adversary_steps`` Adam steps of every adversary on the detached translation."""
        for head, adv_opt in zip(self.heads, self.adv_opts, strict=True):
            fwd = self._head_input(head, y)
            for _ in range(self.p["adversary_steps"]):
                adv_opt.zero_grad(set_to_none=True)
                F.cross_entropy(fwd(zd), q).backward()
                adv_opt.step()

    def _head_input(self, head: nn.Module, y: Tensor) -> Callable[[Tensor], Tensor]:
        """``head`` itself, or ``z -> head([z, onehot(y)])`` when the adversary sees ``y``."""
        if not self.p["adversary_control"]:
            return head
        onehot = F.one_hot(y, self.n_y).to(torch.float32)
        return lambda z: head(torch.cat([z, onehot.to(z.dtype)], 1))

    def _fair(self, zf: Tensor, qf: Tensor, yf: Tensor, weight: Tensor | None = None) -> Tensor:
        """The fairness term; the mean over the adversaries when there are several."""
        p = self.p
        target = self.q_given_y[yf] if p["adversary_control"] else None
        kw = {"grl_lambda": p["grl_lambda"], "adversary_loss": p["adversary_loss"],
              "n_classes": self.n_q, "y": yf, "target": target, "weight": weight}  # fmt: skip
        if not self.heads:
            return fairness_term(p["fairness"], zf, qf, **kw)
        terms = [fairness_term(p["fairness"], zf, qf, head=self._head_input(h, yf), **kw)
                 for h in self.heads]  # fmt: skip
        return torch.stack(terms).mean()


def _q_given_y(yc: np.ndarray, qc: np.ndarray, n_y: int, n_q: int) -> Tensor:
    """``p(q | y)`` on the coded rows, ``(n_y, n_q)`` float32."""
    joint = np.zeros((n_y, n_q))
    np.add.at(joint, (yc, qc), 1.0)
    return torch.from_numpy(joint / joint.sum(1, keepdims=True)).float()


def _cosine_schedule(opt: Optimizer, p: dict[str, Any], n: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The translator's lr decays to 0 along a half cosine over every step of the run."""
    total_steps = p["epochs"] * sum(
        1 for start in range(0, n, p["batch_size"]) if min(p["batch_size"], n - start) >= 2
    )
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )


def data_parallel() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed process group, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(opt: Optimizer, args: Any, kwargs: Any) -> None:
    """Optimizer step pre-hook: all-reduce (mean) every gradient across the process group."""
    world = torch.distributed.get_world_size()
    for group in opt.param_groups:
        for param in group["params"]:
            if param.grad is not None:
                torch.distributed.all_reduce(param.grad)
                param.grad /= world
