"""Adam over stacked parameters, every member with its own hyper-parameters, state and mask.

``torch.optim.Adam`` over a ``[S, ...]`` tensor already keeps each element's moments apart, but
it shares one learning rate, one step count and one update for every member: a member that has
diverged or stopped would go on moving with its momentum. :class:`PopulationAdam` follows
``torch.optim.Adam``'s arithmetic (L2 weight decay added to the gradient, ``lerp`` for the first
moment, bias corrections from the member's own step count) with per-member ``lr``,
``weight_decay`` and gradient-norm clip, and updates only the members flagged active.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["PopulationAdam"]


def _per_member(values: float | Sequence[float], size: int, name: str) -> Tensor:
    t = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if t.numel() == 1:
        t = t.expand(size).clone()
    if t.numel() != size:
        raise ValueError(f"{name} needs one value or one per member ({size}), but got {t.numel()}")
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{name} must be finite numbers >= 0, but got {t.tolist()}")
    return t


class PopulationAdam:
    """Adam for ``params``, each a tensor whose first dimension is the member.

    Args:
        params: stacked leaf tensors ``[S, ...]`` (all with the same ``S``).
        lr, weight_decay: one value, or one per member.
        clip_norm: per member, the largest L2 norm of that member's whole gradient (over every
            tensor); ``0`` (the default) clips nothing.
    """

    def __init__(self, params: Sequence[Tensor], *, lr: float | Sequence[float] = 1e-3,
                 weight_decay: float | Sequence[float] = 0.0,
                 clip_norm: float | Sequence[float] = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:  # fmt: skip
        self.params = list(params)
        if not self.params:
            raise ValueError("PopulationAdam needs at least one parameter tensor, but got none")
        self.size = int(self.params[0].shape[0])
        if any(int(p.shape[0]) != self.size for p in self.params):
            shapes = [tuple(p.shape) for p in self.params]
            raise ValueError(f"every parameter must have {self.size} members first, but got {shapes}")
        self.lr = _per_member(lr, self.size, "lr")
        self.weight_decay = _per_member(weight_decay, self.size, "weight_decay")
        self.clip_norm = _per_member(clip_norm, self.size, "clip_norm")
        self.betas, self.eps = betas, eps
        self.steps = torch.zeros(self.size, dtype=torch.int64)
        self.active = torch.ones(self.size, dtype=torch.bool)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def freeze(self, member: int) -> None:
        """Member ``member`` takes no further step (diverged, or stopped early)."""
        self.active[member] = False

    @torch.no_grad()
    def keep(self, slots: Tensor) -> None:
        """Keep only the members at ``slots`` (in that order), after their parameters kept the
        same slices (``keep`` of the stacked modules): the others leave the optimiser."""
        slots = torch.as_tensor(slots, dtype=torch.int64)
        if any(int(p.shape[0]) != len(slots) for p in self.params):
            raise ValueError(f"keep the parameters' slices first: {len(slots)} members kept, but "
                             f"the parameters have {[int(p.shape[0]) for p in self.params]}")
        for name in ("lr", "weight_decay", "clip_norm", "steps", "active"):
            setattr(self, name, getattr(self, name).index_select(0, slots))
        self.exp_avg = [m.index_select(0, slots.to(m.device)).contiguous() for m in self.exp_avg]
        self.exp_avg_sq = [v.index_select(0, slots.to(v.device)).contiguous() for v in self.exp_avg_sq]
        self.size = len(slots)

    def _view(self, t: Tensor, like: Tensor) -> Tensor:
        return t.to(dtype=like.dtype, device=like.device).reshape(-1, *([1] * (like.ndim - 1)))

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step for every active member (members without a gradient are skipped)."""
        active = self.active.clone()
        if not active.any():
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if (self.clip_norm > 0).any():
            sq = sum(g.detach().double().pow(2).reshape(self.size, -1).sum(1) for g in grads)
            norm = sq.sqrt().cpu()
            scale = torch.where((self.clip_norm > 0) & (norm > self.clip_norm),
                                self.clip_norm / (norm + 1e-6), torch.ones_like(norm))  # fmt: skip
            grads = [g * self._view(scale, g) for g in grads]
        self.steps += active.to(torch.int64)
        beta1, beta2 = self.betas
        steps = self.steps.clamp_min(1).double()
        bias1 = 1.0 - beta1**steps
        bias2_sqrt = (1.0 - beta2**steps).sqrt()
        step_size = self.lr / bias1
        everyone = bool(active.all())
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True):
            if everyone:  # the same arithmetic in place: no member to hold still
                if (self.weight_decay > 0).any():
                    g = g + p * self._view(self.weight_decay, p)
                m.lerp_(g, 1.0 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                denom = (v.sqrt() / self._view(bias2_sqrt, p)).add_(self.eps)
                p.sub_(m / denom * self._view(step_size, p))
                continue
            mask = self._view(active, p).bool()
            if (self.weight_decay > 0).any():
                g = g + p * self._view(self.weight_decay, p)
            g = torch.where(mask, g, torch.zeros_like(g))
            new_m = m.lerp(g, 1.0 - beta1)
            new_v = m.new_empty(m.shape).copy_(v).mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = (new_v.sqrt() / self._view(bias2_sqrt, p)).add_(self.eps)
            update = new_m / denom * self._view(step_size, p)
            p.copy_(torch.where(mask, p - update, p))
            m.copy_(torch.where(mask, new_m, m))
            v.copy_(torch.where(mask, new_v, v))

    def state_of(self, member: int) -> dict[str, float]:
        """A member's step count and hyper-parameters (for tests and reports)."""
        return {"steps": int(self.steps[member]), "lr": float(self.lr[member]),
                "weight_decay": float(self.weight_decay[member]),
                "clip_norm": float(self.clip_norm[member])}  # fmt: skip

