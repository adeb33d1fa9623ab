"""Batched probes: every independent fit of a ladder family trained as one torch model.

The ladder (:mod:`fairsearch.probes.ladder`) fits, for one representation ``Z``, each family
once per fold seed ``r`` x outer fold ``j`` x inner fold (or refit) x grid point. Those fits are
independent of one another, so :func:`batched_cross_fits` stacks them as *members* of one model:
weights ``[M, in, out]``, one forward pass over the stack, every member's parameters, gradients,
optimizer state, random stream, rows and class weights its own. A member's result does not
depend on which other members share its batch. The scikit-learn probes stay the reference: the
same grids (read from :func:`~fairsearch.probes.ladder.family_grid`), the same stratified inner
folds, the same selection rule (first best mean inner-CV balanced accuracy, as ``GridSearchCV``),
the same class balancing:

* ``logistic``: standardised inputs (per member, on its own training rows), L2-penalised
  logistic regression with balanced class weights (binary: one logit, else softmax), the
  objective of scikit-learn's ``LogisticRegression(C=...)`` solved to convergence by Newton-CG
  in float64, with a per-member Armijo line search. Being convex, it reaches the same optimum.
* ``mlp``: standardised inputs, ReLU layers with Glorot-uniform initialisation, balanced sample
  weights, Adam (lr 3e-3), mini-batches of ``min(200, n)``, L2 ``alpha``, early stopping on 10%
  of each member's rows scored by weighted accuracy, best weights restored: the ladder's
  ``MLPClassifier``, its random numbers too (each member replays ``RandomState(random_state)``
  in float64), so a member ends where its scikit-learn twin ends, up to rounding.
* ``knn``: standardised distances computed in batches, uniform votes over the ``n_neighbors``
  nearest training rows, prediction ``argmax p(k|z) / p(k)`` (the ladder's prior correction).

Fitting runs in two phases, as ``GridSearchCV`` does: the inner-fold members of every grid point,
then, per outer fold, one refit of the grid point the inner folds chose. Everything runs on
``device`` (a GPU when there is one).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split

__all__ = ["BATCHED_FAMILIES", "Member", "batched_cross_fits", "default_device", "fit_members"]

#: Ladder families with a batched form; the others (majority, gbt, svm) stay scikit-learn.
BATCHED_FAMILIES: tuple[str, ...] = ("logistic", "mlp", "knn")
#: The ladder's MLP recipe (``MLPClassifier`` arguments of :func:`ladder._family`).
MLP_LR, MLP_MAX_EPOCHS, MLP_PATIENCE, MLP_TOL, MLP_VAL_FRACTION, MLP_BATCH = (
    3e-3, 200, 8, 1e-4, 0.1, 200)
#: Newton-CG for the logistic probe: outer iterations, CG steps, gradient tolerance.
NEWTON_ITERS, CG_ITERS, NEWTON_TOL = 100, 200, 1e-8
#: Members per batch of kNN distance matrices.
KNN_CHUNK = 8
#: Bytes the kNN distances of one block of query rows may take (chunk x rows x n float64, and
#: their masked copy): rows are blocked so that 9,000 held-out rows need no 15 GB.
KNN_BLOCK_BYTES = 256 * 2**20


def default_device() -> torch.device:
    """A CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class Member:
    """One fit: rows it trains on (index into the base masks), its grid point and its
    ``random_state`` (the mlp's, as scikit-learn's ``MLPClassifier(random_state=seed)``)."""

    base: int
    params: dict[str, Any]
    seed: int


@contextmanager
def _torch_threads(n_threads: int | None):
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _standardiser(Z: torch.Tensor, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean and 1/std of ``Z`` over each member's training rows, as
    ``StandardScaler``: population std, 1 for a feature it deems constant (its rule)."""
    w = train.to(Z.dtype)
    cnt = w.sum(1, keepdim=True)
    mu = (w @ Z) / cnt
    var = torch.cat([(w[i:i + 16, :, None] * (Z[None] - mu[i:i + 16, None]) ** 2).sum(1)
                     for i in range(0, w.shape[0], 16)]) / cnt  # two-pass, as sklearn
    eps = torch.finfo(Z.dtype).eps
    constant = var <= cnt * eps * var + (cnt * mu * eps) ** 2
    std = torch.where(constant, torch.ones_like(var), var.sqrt())
    return mu, 1.0 / std


def _balanced_weights(codes: torch.Tensor, train: torch.Tensor, k: int) -> torch.Tensor:
    """``compute_sample_weight("balanced")`` of each member's training rows; 0 elsewhere."""
    onehot = torch.nn.functional.one_hot(codes, k).to(torch.float64)  # (n, k)
    w = train.to(torch.float64)
    counts = w @ onehot  # (M, k)
    n_present = (counts > 0).sum(1, keepdim=True)
    per_class = w.sum(1, keepdim=True) / (n_present * counts.clamp_min(1))
    return (per_class[:, codes] * w).to(torch.float64)


def _proba(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities from ``(..., 1)`` binary logits or ``(..., K)`` softmax logits."""
    if logits.shape[-1] == 1:
        p1 = torch.sigmoid(logits)
        return torch.cat([1 - p1, p1], -1)
    return torch.softmax(logits, -1)


def _nll(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Per-row negative log-likelihood, ``logits`` (M, n, 1|K), ``codes`` (n,) or (M, n)."""
    codes = codes.expand(logits.shape[:-1])
    if logits.shape[-1] == 1:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits[..., 0], codes.to(logits.dtype), reduction="none")
    return -torch.log_softmax(logits, -1).gather(-1, codes[..., None])[..., 0]


# ---------------------------------------------------------------------------- logistic
def _fit_logistic(Z: torch.Tensor, codes: torch.Tensor, k: int, train: torch.Tensor,
                  C: torch.Tensor) -> torch.Tensor:
    """Newton-CG on ``sum_i s_i l_i / sum s + |W|^2 / (2 C sum s)`` for each member (the
    optimum of scikit-learn's ``0.5 |W|^2 + C sum_i s_i l_i``); returns logits on every row."""
    Z = Z.to(torch.float64)
    m, d = train.shape[0], Z.shape[1]
    out = 1 if k == 2 else k
    mu, inv = _standardiser(Z, train)
    s = _balanced_weights(codes, train, k)
    ssum = s.sum(1)
    lam = 1.0 / (C.to(torch.float64) * ssum)  # (M,)
    theta = torch.zeros(m, d + 1, out, dtype=torch.float64, device=Z.device)

    def loss_each(th: torch.Tensor) -> torch.Tensor:
        W, b = th[:, :d], th[:, d]
        Ws = W * inv[:, :, None]
        logits = torch.einsum("nd,mdo->mno", Z, Ws) + (b - torch.einsum("md,mdo->mo", mu, Ws)
                                                        )[:, None]  # fmt: skip
        data = (s * _nll(logits, codes)).sum(1) / ssum
        return data + 0.5 * lam * (W * W).sum((1, 2))

    active = torch.ones(m, dtype=torch.bool, device=Z.device)
    for _ in range(NEWTON_ITERS):
        th = theta.detach().requires_grad_(True)
        f = loss_each(th)
        (g,) = torch.autograd.grad(f.sum(), th, create_graph=True)
        gnorm = g.detach().abs().amax((1, 2))
        active &= gnorm > NEWTON_TOL
        if not active.any():
            break
        mask = active[:, None, None].to(g.dtype)
        gd = g.detach() * mask
        # conjugate gradients on H p = -g, every member on its own
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
        p = torch.where((p * gd).sum((1, 2))[:, None, None] < 0, p, -gd)  # a descent direction
        slope = (p * gd).sum((1, 2))
        f0 = f.detach()
        step = torch.where(active, 1.0, 0.0).to(torch.float64)
        accepted = ~active
        with torch.no_grad():
            for _ in range(30):
                trial = loss_each(theta + step[:, None, None] * p)
                ok = trial <= f0 + 1e-4 * step * slope
                accepted |= ok
                if accepted.all():
                    break
                step = torch.where(accepted, step, step * 0.5)
            step = torch.where(accepted, step, 0.0)
            theta = theta + step[:, None, None] * p
        del th, g
    with torch.no_grad():
        W, b = theta[:, :d], theta[:, d]
        Ws = W * inv[:, :, None]
        return torch.einsum("nd,mdo->mno", Z, Ws) + (b - torch.einsum("md,mdo->mo", mu, Ws)
                                                      )[:, None]  # fmt: skip


# ---------------------------------------------------------------------------- mlp
def _adam(params: list[torch.Tensor], grads: list[torch.Tensor], state: list[list[torch.Tensor]],
          t: torch.Tensor, active: torch.Tensor, lr: float) -> None:
    """One step of scikit-learn's ``AdamOptimizer`` (0.9, 0.999, 1e-8: ``m = b1 m + (1 - b1) g``,
    ``v = b2 v + (1 - b2) g^2``, ``p -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``)
    for the members in ``active``; the others keep their parameters and moments untouched.
    ``t`` holds each member's own step count."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    every = bool(active.all())
    for p, g, (m1, m2) in zip(params, grads, state, strict=True):
        shape = (-1,) + (1,) * (p.dim() - 1)
        step = (lr * torch.sqrt(1 - b2 ** t) / (1 - b1 ** t)).view(shape)
        new_m1 = b1 * m1 + (1 - b1) * g
        new_m2 = b2 * m2 + (1 - b2) * (g * g)
        new_p = p - step * new_m1 / (torch.sqrt(new_m2) + eps)
        if every:  # the usual case
            m1.copy_(new_m1)
            m2.copy_(new_m2)
            p.copy_(new_p)
            continue
        on = active.view(shape)
        m1.copy_(torch.where(on, new_m1, m1))
        m2.copy_(torch.where(on, new_m2, m2))
        p.copy_(torch.where(on, new_p, p))


def _fit_mlp(Z: torch.Tensor, codes: torch.Tensor, k: int, train: torch.Tensor,
             hidden: tuple[int, ...], alpha: torch.Tensor, seeds: Sequence[int]
             ) -> torch.Tensor:
    """Train ``M`` MLPs of one shape at once; returns the logits of every row (best epoch).

    Each member replays the random stream of ``MLPClassifier(random_state=seed)`` fitted on its
    rows (in their order): a ``RandomState(seed)`` draws the Glorot-uniform weights, layer by
    layer, then the early-stopping split (``train_test_split``, stratified for one output as
    scikit-learn does, i.e. binary ``q`` only), then each epoch's shuffle, and the arithmetic is
    float64 as scikit-learn's. A member then follows its scikit-learn twin's trajectory up to
    rounding (the order of floating-point sums), not only its recipe."""
    from sklearn.utils import shuffle

    dev, dt = Z.device, torch.float64
    m, d = train.shape[0], Z.shape[1]
    out = 1 if k == 2 else k
    sizes = [d, *hidden, out]
    rngs = [np.random.RandomState(int(s)) for s in seeds]
    mu, inv = _standardiser(Z.to(dt), train)
    params_np: list[list[np.ndarray]] = [[] for _ in range(2 * (len(sizes) - 1))]
    for r in rngs:  # _init_coef: coefs then intercepts, layer by layer
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
            params_np[2 * layer].append(r.uniform(-bound, bound, (fan_in, fan_out)))
            params_np[2 * layer + 1].append(r.uniform(-bound, bound, fan_out))
    # per member: its early-stopping rows (10%) and its fitting rows, in the split's order
    tr_np, codes_np = train.cpu().numpy(), codes.cpu().numpy()
    fit_rows, val_rows = [], []
    for i in range(m):
        rows = np.flatnonzero(tr_np[i])
        f_pos, v_pos = train_test_split(np.arange(rows.size), test_size=MLP_VAL_FRACTION,
                                        random_state=rngs[i],
                                        stratify=codes_np[rows] if out == 1 else None)
        fit_rows.append(rows[f_pos])
        val_rows.append(rows[v_pos])
    sw = _balanced_weights(codes, train, k).to(dt)  # weights from all of a member's rows
    params = [torch.tensor(np.stack(p), dtype=dt, device=dev) for p in params_np]
    state = [[torch.zeros_like(p), torch.zeros_like(p)] for p in params]
    alpha = alpha.to(dev, dt)

    def forward(x: torch.Tensor, ps: list[torch.Tensor]) -> torch.Tensor:
        h = x
        for layer in range(0, len(ps), 2):
            h = torch.baddbmm(ps[layer + 1][:, None, :], h, ps[layer])
            if layer + 2 < len(ps):
                h = torch.relu(h)
        return h

    nv = max(len(v) for v in val_rows)
    vidx = np.zeros((m, nv), dtype=np.int64)
    for i, v in enumerate(val_rows):
        vidx[i, : len(v)] = v
    vidx_t = torch.as_tensor(vidx, device=dev)
    sw_np = sw.cpu().numpy()
    val_w = [sw_np[i, v] for i, v in enumerate(val_rows)]
    Zs = (Z.to(dt)[None] - mu[:, None]) * inv[:, None]  # (M, n, d)
    xv = Zs[torch.arange(m, device=dev)[:, None], vidx_t]
    cv = codes[vidx_t]
    sizes_fit = np.array([len(f) for f in fit_rows])
    bs = np.minimum(MLP_BATCH, sizes_fit)
    n_batches = -(-sizes_fit // bs)
    nb_max, bs_max = int(n_batches.max()), int(bs.max())
    order = [np.arange(len(f)) for f in fit_rows]  # each member's sample_idx
    best = [p.detach().clone() for p in params]
    best_score = torch.full((m,), -np.inf, device=dev, dtype=dt)
    bad = torch.zeros(m, dtype=torch.int64, device=dev)
    running = torch.ones(m, dtype=torch.bool, device=dev)
    t = torch.zeros(m, dtype=dt, device=dev)
    for _ in range(MLP_MAX_EPOCHS):
        # the epoch runs on the members still training only (stopped ones cost nothing)
        act = torch.nonzero(running).flatten()
        live = act.cpu().numpy()
        ps = [p.detach()[act].requires_grad_(True) for p in params]
        st = [[m1[act], m2[act]] for m1, m2 in state]
        t_a, sw_a, al_a = t[act], sw[act], alpha[act]
        idx = np.zeros((nb_max, live.size, bs_max), dtype=np.int64)
        msk = np.zeros((nb_max, live.size, bs_max), dtype=bool)
        for a, i in enumerate(live):
            order[i] = shuffle(order[i], random_state=rngs[i])
            perm = fit_rows[i][order[i]]
            for j, start in enumerate(range(0, len(perm), int(bs[i]))):
                chunk = perm[start : start + int(bs[i])]
                idx[j, a, : len(chunk)], msk[j, a, : len(chunk)] = chunk, True
        idx_t, msk_t = torch.as_tensor(idx, device=dev), torch.as_tensor(msk, device=dev)
        for j in range(int(n_batches[live].max())):
            rows, on = idx_t[j], msk_t[j]
            step_on = on.any(1)
            w = torch.gather(sw_a, 1, rows) * on.to(dt)
            wsum = w.sum(1).clamp_min(1e-12)
            x = Zs[act[:, None], rows]  # (members, batch, d), standardised per member
            nll = _nll(forward(x, ps), codes[rows])
            loss = (w * nll).sum(1) / wsum
            grads = list(torch.autograd.grad((loss * step_on.to(dt)).sum(), ps))
            with torch.no_grad():
                decay = (al_a / wsum * step_on.to(dt)).view(-1, 1, 1)
                for i in range(0, len(ps), 2):  # d/dW of alpha |W|^2 / (2 sum w)
                    grads[i].addcmul_(ps[i], decay)
                t_a += step_on.to(dt)
                _adam(ps, grads, st, t_a.clamp_min(1), step_on, MLP_LR)
        with torch.no_grad():
            for p, q_, (m1, m2), (s1, s2) in zip(params, ps, state, st, strict=True):
                p[act] = q_.detach()
                m1[act], m2[act] = s1, s2
            t[act] = t_a
            pred = forward(xv[act], ps)
            hit = ((pred.argmax(-1) if out > 1 else (pred[..., 0] > 0).long()) == cv[act]
                   ).cpu().numpy()
            # scikit-learn's weighted accuracy_score (np.average over the split's rows, in its
            # order): its rounding decides ties between epochs, hence which weights are best
            score = torch.tensor([np.average(hit[a, : len(val_rows[i])], weights=val_w[i])
                                  for a, i in enumerate(live)], dtype=dt, device=dev)
            prev = best_score[act]
            bad[act] = torch.where(score < prev + MLP_TOL, bad[act] + 1, 0)
            better = score > prev
            for b, q_ in zip(best, ps, strict=True):
                shape = (-1,) + (1,) * (q_.dim() - 1)
                b[act] = torch.where(better.view(shape), q_.detach(), b[act])
            best_score[act] = torch.where(better, score, prev)
            running[act] = bad[act] <= MLP_PATIENCE
        if not running.any():
            break
    with torch.no_grad():
        return forward(Zs, best)


# ---------------------------------------------------------------------------- knn
def _knn_proba(Z: torch.Tensor, codes: torch.Tensor, k: int, train: torch.Tensor,
               neighbours: Sequence[int]) -> list[torch.Tensor]:
    """Vote fractions ``(M, n, K)`` of every row for each ``n_neighbors`` (capped at the rows)."""
    Z = Z.to(torch.float64)
    mu, inv = _standardiser(Z, train)
    kmax = min(max(neighbours), int(train.sum(1).min()))
    out = [torch.empty(train.shape[0], Z.shape[0], k, dtype=torch.float64, device=Z.device)
           for _ in neighbours]
    onehot = torch.nn.functional.one_hot(codes, k).to(torch.float64)
    n = Z.shape[0]
    for start in range(0, train.shape[0], KNN_CHUNK):
        sl = slice(start, start + KNN_CHUNK)
        zs = (Z[None] - mu[sl, None]) * inv[sl, None]  # (c, n, d)
        c = zs.shape[0]
        ntrain = train[sl].sum(1)
        kk = [torch.clamp(ntrain, max=nb).clamp_max(kmax) for nb in neighbours]  # (c,) each
        # query rows in blocks: the distances (and their masked copy) stay within the budget
        rows = max(1, KNN_BLOCK_BYTES // (3 * 8 * c * n))
        for r0 in range(0, n, rows):
            rs = slice(r0, r0 + rows)
            dist = torch.cdist(zs[:, rs], zs).pow(2)  # (c, rows, n)
            dist = dist.masked_fill(~train[sl, None, :], float("inf"))
            near = dist.topk(kmax, dim=-1, largest=False).indices  # sorted by distance
            del dist
            csum = onehot[near].cumsum(2)  # (c, rows, kmax, K)
            for slot, kk_slot in enumerate(kk):
                picked = csum[torch.arange(c), :, kk_slot - 1]  # (c, rows, K)
                out[slot][sl, rs] = picked / kk_slot[:, None, None].to(torch.float64)
    return out


# ---------------------------------------------------------------------------- members
def _grid_values(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """The ladder's grid keys (sklearn pipeline names) as plain settings."""
    plain = {key.rsplit("__", 1)[-1]: v for key, v in params.items()}
    if family == "logistic":
        return {"C": float(plain.get("C", 0.05))}
    if family == "mlp":
        return {"hidden": tuple(plain.get("hidden_layer_sizes", (64,))),
                "alpha": float(plain.get("alpha", 1e-4))}
    if family == "knn":
        return {"n_neighbors": int(plain.get("n_neighbors", 15))}
    raise ValueError(f"family must be one of {list(BATCHED_FAMILIES)}, got {family!r}")


def fit_members(family: str, Z: np.ndarray, codes: np.ndarray, k: int, train: np.ndarray,
                members: Sequence[Member], *, device: torch.device | str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Fit every member of ``family`` on its rows ``train[member.base]``; return the class
    probabilities ``(M, n, K)`` and predictions ``(M, n)`` of every row (knn: prior-corrected)."""
    dev = torch.device(device) if device is not None else default_device()
    Zt = torch.as_tensor(np.asarray(Z, dtype=np.float64), device=dev)
    ct = torch.as_tensor(np.asarray(codes, dtype=np.int64), device=dev)
    base = torch.as_tensor(np.asarray(train, dtype=bool), device=dev)
    settings = [_grid_values(family, mem.params) for mem in members]
    n = Zt.shape[0]
    proba = torch.empty(len(members), n, k, dtype=torch.float64, device=dev)
    if family == "knn":
        bases = sorted({mem.base for mem in members})
        ks = sorted({s["n_neighbors"] for s in settings})
        votes = _knn_proba(Zt, ct, k, base[bases], ks)
        for i, (mem, s) in enumerate(zip(members, settings, strict=True)):
            proba[i] = votes[ks.index(s["n_neighbors"])][bases.index(mem.base)]
        rows = base[[mem.base for mem in members]].to(torch.float64)
        prior = (rows @ torch.nn.functional.one_hot(ct, k).to(torch.float64))
        prior = prior / prior.sum(1, keepdim=True)
        pred = (proba / prior.clamp_min(1e-300)[:, None, :]).argmax(-1)
        return proba.cpu().numpy(), pred.cpu().numpy()
    groups: dict[Any, list[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault(s.get("hidden"), []).append(i)
    for hidden, idx in groups.items():
        rows = base[[members[i].base for i in idx]]
        if family == "logistic":
            C = torch.tensor([settings[i]["C"] for i in idx], device=dev)
            logits = _fit_logistic(Zt, ct, k, rows, C)
        else:
            alpha = torch.tensor([settings[i]["alpha"] for i in idx], device=dev)
            logits = _fit_mlp(Zt, ct, k, rows, hidden, alpha, [members[i].seed for i in idx])
        proba[idx] = _proba(logits)
    return proba.cpu().numpy(), proba.argmax(-1).cpu().numpy()


def _bacc_rows(codes: np.ndarray, pred: np.ndarray, rows: np.ndarray, k: int) -> float:
    q, p = codes[rows], pred[rows]
    support = np.bincount(q, minlength=k)
    hits = np.bincount(q, weights=(q == p), minlength=k)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


@dataclass(frozen=True)
class BatchedFit:
    """Out-of-fold output of one fold seed (the fields of the ladder's ``CrossFit``)."""

    predictions: np.ndarray
    proba: np.ndarray
    inner_scores: np.ndarray
    chosen: tuple[int, ...]  # grid point chosen in each outer fold


def batched_cross_fits(Z: np.ndarray, codes: np.ndarray, k: int, family: str,
                       folds: Sequence[np.ndarray], seeds: Sequence[int],
                       grid: Sequence[dict[str, Any]], *, tune_folds: int,
                       device: torch.device | str | None = None, n_threads: int | None = None
                       ) -> list[BatchedFit]:
    """Cross-fit ``family`` for every fold assignment ``folds[r]`` (inner CV seeded by
    ``seeds[r]``) with all independent fits batched; one :class:`BatchedFit` per ``r``."""
    if family not in BATCHED_FAMILIES:
        raise ValueError(f"family must be one of {list(BATCHED_FAMILIES)}, got {family!r}")
    if len(folds) != len(seeds):
        raise ValueError(f"folds and seeds must have the same length, got {len(folds)} and "
                         f"{len(seeds)}")
    n = codes.size
    grid = list(grid) or [{}]
    bases: list[np.ndarray] = []
    inner_of: list[tuple[int, int, int, np.ndarray]] = []  # (r, j, i, val rows)
    outer_of: list[tuple[int, int]] = []
    for r, (fold, seed) in enumerate(zip(folds, seeds, strict=True)):
        for j in range(int(fold.max()) + 1):
            train = np.flatnonzero(fold != j)
            splitter = StratifiedKFold(tune_folds, shuffle=True, random_state=seed)
            for i, (tr, va) in enumerate(splitter.split(np.zeros(train.size), codes[train])):
                mask = np.zeros(n, dtype=bool)
                mask[train[tr]] = True
                inner_of.append((r, j, i, train[va]))
                bases.append(mask)
            outer_of.append((r, j))
    n_inner = len(bases)
    for r, j in outer_of:
        bases.append(folds[r] != j)
    base = np.stack(bases)
    with _torch_threads(n_threads):
        members = [Member(b, g, seeds[inner_of[b][0]])
                   for b in range(n_inner) for g in grid]
        _, pred = fit_members(family, Z, codes, k, base, members, device=device)
        scores = np.array([_bacc_rows(codes, pred[m], inner_of[mem.base][3], k)
                           for m, mem in enumerate(members)]).reshape(n_inner, len(grid))
        mean: dict[tuple[int, int], np.ndarray] = {}
        for b, (r, j, _, _) in enumerate(inner_of):
            mean.setdefault((r, j), []).append(scores[b])  # type: ignore[arg-type]
        chosen = {key: int(np.argmax(np.mean(v, axis=0))) for key, v in mean.items()}
        refits = [Member(n_inner + o, grid[chosen[(r, j)]], seeds[r])
                  for o, (r, j) in enumerate(outer_of)]
        proba, pred = fit_members(family, Z, codes, k, base, refits, device=device)
    out = []
    for r, fold in enumerate(folds):
        p_r = np.empty(n, dtype=np.int64)
        pr_r = np.zeros((n, k))
        folds_r = int(fold.max()) + 1
        inner = np.empty(folds_r)
        picks = []
        for o, (rr, j) in enumerate(outer_of):
            if rr != r:
                continue
            test = fold == j
            p_r[test], pr_r[test] = pred[o][test], proba[o][test]
            inner[j] = float(np.mean(mean[(r, j)], axis=0)[chosen[(r, j)]])
            picks.append(chosen[(r, j)])
        out.append(BatchedFit(p_r, pr_r, inner, tuple(picks)))
    return out
