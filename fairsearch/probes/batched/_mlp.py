"""The batched MLP probe: ``M`` MLPs of one shape trained at once, each replaying its
scikit-learn twin.

Standardised inputs, ReLU layers with Glorot-uniform initialisation, balanced sample weights,
Adam (lr 3e-3), mini-batches of ``min(200, n)``, L2 ``alpha``, early stopping on 10% of each
member's rows scored by weighted accuracy, best weights restored: the ladder's
``MLPClassifier``. Each member replays the random stream of ``MLPClassifier(random_state=seed)``
fitted on its rows (in their order): a ``RandomState(seed)`` draws the Glorot-uniform weights,
layer by layer, then the early-stopping split (``train_test_split``, stratified for one output as
scikit-learn does, i.e. binary ``q`` only), then each epoch's shuffle, and the arithmetic is
float64 as scikit-learn's. A member then follows its twin's trajectory up to rounding (the order
of floating-point sums), not only its recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle

from fairsearch.probes.batched._tensors import balanced_weights, nll, standardiser

__all__ = ["MLP_BATCH", "MLP_LR", "MLP_MAX_EPOCHS", "MLP_PATIENCE", "MLP_TOL",
           "MLP_VAL_FRACTION", "fit_mlp"]

#: The ladder's MLP recipe (the ``MLPClassifier`` arguments of its mlp kind).
MLP_LR, MLP_MAX_EPOCHS, MLP_PATIENCE, MLP_TOL, MLP_VAL_FRACTION, MLP_BATCH = (
    3e-3, 200, 8, 1e-4, 0.1, 200)
_DT = torch.float64


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


def _forward(x: torch.Tensor, ps: list[torch.Tensor]) -> torch.Tensor:
    """Logits of the stacked MLPs ``ps`` (weights, biases, layer by layer) on ``x`` (M, rows, d)."""
    h = x
    for layer in range(0, len(ps), 2):
        h = torch.baddbmm(ps[layer + 1][:, None, :], h, ps[layer])
        if layer + 2 < len(ps):
            h = torch.relu(h)
    return h


def _glorot(sizes: Sequence[int], rngs: Sequence[np.random.RandomState]) -> list[np.ndarray]:
    """Each member's initial weights as scikit-learn's ``_init_coef`` draws them (coefs then
    intercepts, layer by layer), stacked per parameter."""
    params: list[list[np.ndarray]] = [[] for _ in range(2 * (len(sizes) - 1))]
    for r in rngs:
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
            params[2 * layer].append(r.uniform(-bound, bound, (fan_in, fan_out)))
            params[2 * layer + 1].append(r.uniform(-bound, bound, fan_out))
    return [np.stack(p) for p in params]


def _early_stopping_split(train: np.ndarray, codes: np.ndarray,
                          rngs: Sequence[np.random.RandomState], stratify: bool
                          ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per member: its fitting rows and its early-stopping rows (10%), in the split's order."""
    fit_rows, val_rows = [], []
    for i, r in enumerate(rngs):
        rows = np.flatnonzero(train[i])
        f_pos, v_pos = train_test_split(np.arange(rows.size), test_size=MLP_VAL_FRACTION,
                                        random_state=r, stratify=codes[rows] if stratify else None)
        fit_rows.append(rows[f_pos])
        val_rows.append(rows[v_pos])
    return fit_rows, val_rows


@dataclass
class _Batch:
    """What the members train on: standardised rows ``Zs`` (M, n, d), codes, sample weights
    ``sw`` (M, n), weight decay ``alpha`` (M,), each member's rows, random stream and batches."""

    Zs: torch.Tensor
    codes: torch.Tensor
    sw: torch.Tensor
    alpha: torch.Tensor
    fit_rows: list[np.ndarray]
    rngs: list[np.random.RandomState]
    order: list[np.ndarray]  # each member's sample_idx, reshuffled every epoch
    batch_size: np.ndarray
    n_batches: np.ndarray


@dataclass
class _Progress:
    """Every member's parameters, Adam moments and step count, best weights and early
    stopping state."""

    params: list[torch.Tensor]
    adam: list[list[torch.Tensor]]
    t: torch.Tensor
    best: list[torch.Tensor]
    best_score: torch.Tensor
    bad: torch.Tensor
    running: torch.Tensor


def _epoch_rows(batch: _Batch, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """This epoch's mini-batches of the ``live`` members (each shuffled by its own stream):
    row indices and a mask, (batches, members, batch size)."""
    nb_max, bs_max = int(batch.n_batches.max()), int(batch.batch_size.max())
    idx = np.zeros((nb_max, live.size, bs_max), dtype=np.int64)
    msk = np.zeros((nb_max, live.size, bs_max), dtype=bool)
    for a, i in enumerate(live):
        batch.order[i] = shuffle(batch.order[i], random_state=batch.rngs[i])
        perm = batch.fit_rows[i][batch.order[i]]
        bs = int(batch.batch_size[i])
        for j, start in enumerate(range(0, len(perm), bs)):
            chunk = perm[start : start + bs]
            idx[j, a, : len(chunk)], msk[j, a, : len(chunk)] = chunk, True
    return idx, msk


def _train_epoch(batch: _Batch, ps: list[torch.Tensor], adam: list[list[torch.Tensor]],
                 t: torch.Tensor, act: torch.Tensor, live: np.ndarray) -> None:
    """One epoch of mini-batch Adam for the members ``act`` (their parameters ``ps``, moments
    ``adam`` and step counts ``t``, updated in place)."""
    idx, msk = _epoch_rows(batch, live)
    idx_t, msk_t = torch.as_tensor(idx, device=act.device), torch.as_tensor(msk, device=act.device)
    sw_a, al_a = batch.sw[act], batch.alpha[act]
    for j in range(int(batch.n_batches[live].max())):
        rows, on = idx_t[j], msk_t[j]
        step_on = on.any(1)
        w = torch.gather(sw_a, 1, rows) * on.to(_DT)
        wsum = w.sum(1).clamp_min(1e-12)
        x = batch.Zs[act[:, None], rows]  # (members, batch, d), standardised per member
        loss = (w * nll(_forward(x, ps), batch.codes[rows])).sum(1) / wsum
        grads = list(torch.autograd.grad((loss * step_on.to(_DT)).sum(), ps))
        with torch.no_grad():
            decay = (al_a / wsum * step_on.to(_DT)).view(-1, 1, 1)
            for i in range(0, len(ps), 2):  # d/dW of alpha |W|^2 / (2 sum w)
                grads[i].addcmul_(ps[i], decay)
            t += step_on.to(_DT)
            _adam(ps, grads, adam, t.clamp_min(1), step_on, MLP_LR)


def _validation_score(xv: torch.Tensor, cv: torch.Tensor, ps: list[torch.Tensor],
                      val_rows: list[np.ndarray], val_w: list[np.ndarray], live: np.ndarray,
                      out: int) -> torch.Tensor:
    """scikit-learn's weighted ``accuracy_score`` of the ``live`` members on their early-stopping
    rows (``np.average`` in the split's order: its rounding decides ties between epochs, hence
    which weights are best)."""
    pred = _forward(xv, ps)
    hit = ((pred.argmax(-1) if out > 1 else (pred[..., 0] > 0).long()) == cv).cpu().numpy()
    return torch.tensor([np.average(hit[a, : len(val_rows[i])], weights=val_w[i])
                         for a, i in enumerate(live)], dtype=_DT, device=xv.device)


def _keep_best(prog: _Progress, act: torch.Tensor, ps: list[torch.Tensor],
               score: torch.Tensor) -> None:
    """Early stopping: count epochs without improvement, keep each member's best weights, stop
    a member past its patience."""
    prev = prog.best_score[act]
    prog.bad[act] = torch.where(score < prev + MLP_TOL, prog.bad[act] + 1, 0)
    better = score > prev
    for b, q_ in zip(prog.best, ps, strict=True):
        shape = (-1,) + (1,) * (q_.dim() - 1)
        b[act] = torch.where(better.view(shape), q_.detach(), b[act])
    prog.best_score[act] = torch.where(better, score, prev)
    prog.running[act] = prog.bad[act] <= MLP_PATIENCE


def _batch(Z: torch.Tensor, codes: torch.Tensor, k: int, train: torch.Tensor,
           alpha: torch.Tensor, rngs: list[np.random.RandomState], fit_rows: list[np.ndarray]
           ) -> _Batch:
    mu, inv = standardiser(Z.to(_DT), train)
    sizes_fit = np.array([len(f) for f in fit_rows])
    bs = np.minimum(MLP_BATCH, sizes_fit)
    return _Batch(Zs=(Z.to(_DT)[None] - mu[:, None]) * inv[:, None], codes=codes,
                  sw=balanced_weights(codes, train, k).to(_DT),  # from all of a member's rows
                  alpha=alpha.to(Z.device, _DT), fit_rows=fit_rows, rngs=rngs,
                  order=[np.arange(len(f)) for f in fit_rows], batch_size=bs,
                  n_batches=-(-sizes_fit // bs))


def _progress(params_np: list[np.ndarray], m: int, dev: torch.device) -> _Progress:
    params = [torch.tensor(p, dtype=_DT, device=dev) for p in params_np]
    return _Progress(params=params, adam=[[torch.zeros_like(p), torch.zeros_like(p)]
                                          for p in params],
                     t=torch.zeros(m, dtype=_DT, device=dev),
                     best=[p.detach().clone() for p in params],
                     best_score=torch.full((m,), -np.inf, device=dev, dtype=_DT),
                     bad=torch.zeros(m, dtype=torch.int64, device=dev),
                     running=torch.ones(m, dtype=torch.bool, device=dev))


def fit_mlp(Z: torch.Tensor, codes: torch.Tensor, k: int, train: torch.Tensor,
            hidden: tuple[int, ...], alpha: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """Train ``M`` MLPs of one shape at once (member ``i`` on the rows ``train[i]``, weight decay
    ``alpha[i]``, ``random_state`` ``seeds[i]``); returns the logits of every row (best epoch)."""
    dev = Z.device
    m, out = train.shape[0], 1 if k == 2 else k
    rngs = [np.random.RandomState(int(s)) for s in seeds]
    params_np = _glorot([Z.shape[1], *hidden, out], rngs)
    fit_rows, val_rows = _early_stopping_split(train.cpu().numpy(), codes.cpu().numpy(), rngs,
                                               stratify=out == 1)
    batch = _batch(Z, codes, k, train, alpha, rngs, fit_rows)
    prog = _progress(params_np, m, dev)
    vidx = np.zeros((m, max(len(v) for v in val_rows)), dtype=np.int64)
    for i, v in enumerate(val_rows):
        vidx[i, : len(v)] = v
    vidx_t = torch.as_tensor(vidx, device=dev)
    sw_np = batch.sw.cpu().numpy()
    val_w = [sw_np[i, v] for i, v in enumerate(val_rows)]
    xv = batch.Zs[torch.arange(m, device=dev)[:, None], vidx_t]
    cv = codes[vidx_t]
    for _ in range(MLP_MAX_EPOCHS):
        # the epoch runs on the members still training only (stopped ones cost nothing)
        act = torch.nonzero(prog.running).flatten()
        live = act.cpu().numpy()
        ps = [p.detach()[act].requires_grad_(True) for p in prog.params]
        adam = [[m1[act], m2[act]] for m1, m2 in prog.adam]
        t_a = prog.t[act]
        _train_epoch(batch, ps, adam, t_a, act, live)
        with torch.no_grad():
            for p, q_, (m1, m2), (s1, s2) in zip(prog.params, ps, prog.adam, adam, strict=True):
                p[act] = q_.detach()
                m1[act], m2[act] = s1, s2
            prog.t[act] = t_a
            score = _validation_score(xv[act], cv[act], ps, val_rows, val_w, live, out)
            _keep_best(prog, act, ps, score)
        if not prog.running.any():
            break
    with torch.no_grad():
        return _forward(batch.Zs, prog.best)
