"""The batched logistic probe: L2-penalised logistic regression with balanced class weights for
every member at once, solved to convergence by Newton-CG in float64 (per-member conjugate
gradients and Armijo line search). Being convex, it reaches scikit-learn's optimum."""

from __future__ import annotations

from collections.abc import Callable

import torch

from fairsearch.probes.batched._tensors import balanced_weights, nll, standardiser

__all__ = ["CG_ITERS", "NEWTON_ITERS", "NEWTON_TOL", "fit_logistic"]

#: Newton-CG for the logistic probe: outer iterations, CG steps, gradient tolerance.
NEWTON_ITERS, CG_ITERS, NEWTON_TOL = 100, 200, 1e-8
#: Halvings of the step the Armijo line search tries.
LINE_SEARCH_STEPS = 30


def _logits(Z: torch.Tensor, theta: torch.Tensor, mu: torch.Tensor, inv: torch.Tensor
            ) -> torch.Tensor:
    """Logits ``(M, n, out)`` of every row for the parameters ``theta`` ``(M, d + 1, out)``
    (weights on standardised inputs, then the intercept)."""
    d = Z.shape[1]
    W, b = theta[:, :d], theta[:, d]
    Ws = W * inv[:, :, None]
    return torch.einsum("nd,mdo->mno", Z, Ws) + (b - torch.einsum("md,mdo->mo", mu, Ws)
                                                  )[:, None]  # fmt: skip


def _cg_direction(g: torch.Tensor, th: torch.Tensor, gd: torch.Tensor) -> torch.Tensor:
    """Conjugate gradients on ``H p = -g`` (Hessian-vector products through ``g``, built with
    ``create_graph``), every member on its own, to the forcing term ``min(0.5, |g|) |g|``."""
    p = torch.zeros_like(gd)
    r = -gd
    direction = r.clone()
    rr = (r * r).sum((1, 2))
    tol = (rr.sqrt().clamp_max(0.5) * rr.sqrt()) ** 2  # forcing term: min(0.5, |g|) |g|
    for _ in range(CG_ITERS):
        (hv,) = torch.autograd.grad((g * direction).sum(), th, retain_graph=True)
        curv = (direction * hv).sum((1, 2))
        go = (rr > tol) & (curv > 0)
        if not go.any():
            break
        alpha = torch.where(go, rr / torch.where(go, curv, 1.0), 0.0)[:, None, None]
        p = p + alpha * direction
        r = r - alpha * hv
        rr_new = (r * r).sum((1, 2))
        beta = torch.where(go, rr_new / torch.where(rr > 0, rr, 1.0), 0.0)[:, None, None]
        direction = torch.where(go[:, None, None], r + beta * direction, direction)
        rr = torch.where(go, rr_new, rr)
    return torch.where((p * gd).sum((1, 2))[:, None, None] < 0, p, -gd)  # a descent direction


def _line_search(loss_each: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor,
                 p: torch.Tensor, gd: torch.Tensor, f0: torch.Tensor, active: torch.Tensor
                 ) -> torch.Tensor:
    """``theta`` moved along ``p`` by each active member's Armijo step (halved until the loss
    falls enough; no move for a member whose every step failed)."""
    slope = (p * gd).sum((1, 2))
    step = torch.where(active, 1.0, 0.0).to(torch.float64)
    accepted = ~active
    with torch.no_grad():
        for _ in range(LINE_SEARCH_STEPS):
            trial = loss_each(theta + step[:, None, None] * p)
            ok = trial <= f0 + 1e-4 * step * slope
            accepted |= ok
            if accepted.all():
                break
            step = torch.where(accepted, step, step * 0.5)
        step = torch.where(accepted, step, 0.0)
        return theta + step[:, None, None] * p


def fit_logistic(Z: torch.Tensor, codes: torch.Tensor, k: int, train: torch.Tensor,
                 C: torch.Tensor) -> torch.Tensor:
    """Newton-CG on ``sum_i s_i l_i / sum s + |W|^2 / (2 C sum s)`` for each member (the
    optimum of scikit-learn's ``0.5 |W|^2 + C sum_i s_i l_i``); returns logits on every row."""
    Z = Z.to(torch.float64)
    m, d = train.shape[0], Z.shape[1]
    out = 1 if k == 2 else k
    mu, inv = standardiser(Z, train)
    s = balanced_weights(codes, train, k)
    ssum = s.sum(1)
    lam = 1.0 / (C.to(torch.float64) * ssum)  # (M,)
    theta = torch.zeros(m, d + 1, out, dtype=torch.float64, device=Z.device)

    def loss_each(th: torch.Tensor) -> torch.Tensor:
        data = (s * nll(_logits(Z, th, mu, inv), codes)).sum(1) / ssum
        W = th[:, :d]
        return data + 0.5 * lam * (W * W).sum((1, 2))

    active = torch.ones(m, dtype=torch.bool, device=Z.device)
    for _ in range(NEWTON_ITERS):
        th = theta.detach().requires_grad_(True)
        f = loss_each(th)
        (g,) = torch.autograd.grad(f.sum(), th, create_graph=True)
        active &= g.detach().abs().amax((1, 2)) > NEWTON_TOL
        if not active.any():
            break
        gd = g.detach() * active[:, None, None].to(g.dtype)
        p = _cg_direction(g, th, gd)
        theta = _line_search(loss_each, theta, p, gd, f.detach(), active)
        del th, g
    with torch.no_grad():
        return _logits(Z, theta, mu, inv)
