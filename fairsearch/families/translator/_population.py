"""Train a population of translators of one shape as one batched model.

Every member ``s`` is a :class:`Translator` with its own seed (so its own initial weights and
codebook, built exactly as its lone ``fit`` builds them), data order (a generator seeded with its
seed), loss weights, learning rate and schedule, weight decay, loss bound and Adam state
(:class:`~fairsearch.population.PopulationAdam`). Each step follows
:class:`~fairsearch.families.translator._loop.TrainingLoop` member by member, so a member equals
the same configuration and seed trained alone up to float rounding
(``tests/test_translator_population.py``). A member whose loss diverges is frozen with its
:class:`DivergenceError`; the others go on; so is one whose epoch report raises
:class:`~fairsearch.nets.MemberStopped` (successive halving). At the end of each epoch the frozen
members leave the batch (their slices of every weight and of the optimiser's state are dropped),
so a stopped member costs nothing more. Every epoch's validation row is
computed for all members in one forward pass (the fresh probes are fitted member by member).

Members must share what changes shapes or the loss's form: :func:`population_key`. What batches:
the built-in encoder and decoder, the control head, the quantizer's codebook and the head-free
fairness terms (:data:`BATCHED_FAIRNESS`, each member's term computed on its own slice). Terms
with an adversary or protected head, ``conditional_sw`` (it draws its directions from the global
generator), a ``model.factory`` autoencoder and data-parallel training are not batched: such
members train one after another with ``Translator.fit`` (:func:`batchable`). A translator with
``restarts: k`` enters the batch as its ``k`` copies, each its own slice; after each epoch its
history row and report are those of its copy of lowest training objective, that copy after the
last epoch is the one kept, and a copy that diverges fails the translator, as in its lone fit
(:mod:`._restarts`). No Ray here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from fairsearch.families.translator._decision import f1_cut
from fairsearch.families.translator._loop import LOSS_TERMS, _q_given_y, data_parallel
from fairsearch.families.translator._losses import fairness_term
from fairsearch.families.translator._quantize import cell_balance
from fairsearch.families.translator._restarts import (
    objective_rows,
    restart_seed,
    training_objective,
)
from fairsearch.families.translator._stacked import StackedTranslatorNet
from fairsearch.families.translator._train import Translator, _probes_after
from fairsearch.nets import DivergenceError, MemberStopped, resolve_device
from fairsearch.population import PopulationAdam

__all__ = ["BATCHED_FAIRNESS", "PER_MEMBER", "batchable", "fit_translator_population",
           "population_key"]  # fmt: skip

#: Head-free fairness terms a population computes batched (deterministic given the rows).
BATCHED_FAIRNESS: frozenset[str] = frozenset(
    {"none", "cka", "hsic", "linear_cka", "linear_guard", "mmd", "conditional_mmd"})
#: Parameters that may differ between the members of one population (all others are shared).
PER_MEMBER: tuple[str, ...] = ("w_control", "w_fair", "w_rec", "w_cells", "lr", "lr_schedule",
                               "weight_decay", "loss_bound", "seed")  # fmt: skip
Report = Callable[[dict[str, float]], None]


def population_key(params: Mapping[str, Any]) -> str:
    """Translators with equal keys can train as one population: every parameter but
    :data:`PER_MEMBER` is shared (canonical JSON)."""
    return json.dumps({k: v for k, v in params.items() if k not in PER_MEMBER}, sort_keys=True,
                      default=repr)  # fmt: skip


def batchable(translator: Translator) -> bool:
    """Whether ``translator`` can train in a batched population (see the module docstring)."""
    p = translator.validated_params()
    return (p["fairness"] in BATCHED_FAIRNESS and translator.build_autoencoder is None
            and data_parallel()[1] == 1)  # fmt: skip


def fit_translator_population(
    translators: Sequence[Translator], E: Any, y: Any, *, q: Any, E_val: Any = None,
    y_val: Any = None, q_val: Any = None, reports: Sequence[Report | None] | None = None,
) -> list[Translator | DivergenceError]:  # fmt: skip
    """``fit`` every translator (each with its own parameters and seed) as one batched model;
    each is returned fitted, or as its :class:`DivergenceError`. The translators must be
    :func:`batchable` and share a :func:`population_key`."""
    if not translators:
        return []
    ps = [tr.validated_params() for tr in translators]
    keys = {population_key(tr.params) for tr in translators}
    if len(keys) > 1 or not all(batchable(tr) for tr in translators):
        raise ValueError(f"a translator population needs batchable members with one population "
                         f"key, but got {len(keys)} keys: {sorted(keys)}")  # fmt: skip
    reports = list(reports) if reports is not None else [None] * len(translators)
    k = ps[0]["restarts"]
    # every translator trains as k copies (restarts): slice j of the batch starts as copy
    # j % k of translator j // k, from the seed its lone fit gives that copy
    copies = [tr if k == 1 else _copy(tr, r) for tr in translators for r in range(k)]
    if k > 1:
        for tr in translators:
            tr.history_ = []
    cps = [c.validated_params() for c in copies]
    rows = [_prepare(c, p, E, y, q, E_val, y_val, q_val) for c, p in zip(copies, cps, strict=True)]
    loop = _PopulationLoop(copies, cps, rows[0])
    p0 = ps[0]
    kept = list(range(0, len(copies), k))  # each translator's copy: the lowest at the last epoch
    for epoch in range(p0["epochs"]):
        if not loop.opt.active.any():
            break
        means = loop.run_epoch(epoch)
        if epoch == p0["epochs"] - 1:
            loop.place_decisions()
        _fail_together(loop, k)
        val = rows[0][3]
        probe = _probes_after(epoch, p0, translators[0].probe_at)
        checks = loop.validation(val, probe=probe) if val is not None else {}
        if k > 1:
            kept = _lowest_copies(loop, copies, ps, k, kept)
        for m, c in enumerate(kept):
            if loop.errors[c] is not None or c not in loop.slots:
                continue
            s = loop.slots.index(c)
            row = {"epoch": float(epoch), **dict(zip(LOSS_TERMS, means[s].tolist(), strict=True)),
                   **checks.get(s, {})}  # fmt: skip
            translators[m].history_.append(row)
            if reports[m] is not None:
                try:
                    reports[m](dict(row))  # type: ignore[misc]
                except MemberStopped as exc:  # halving: frozen like a diverged member
                    for j in range(m * k, m * k + k):
                        loop.errors[j] = exc
                        if j in loop.slots:
                            loop.opt.freeze(loop.slots.index(j))
        loop.keep_active()
    out: list[Translator | DivergenceError] = []
    for m, tr in enumerate(translators):
        c = kept[m]
        error = loop.errors[c]
        if error is not None:
            out.append(error)
            continue
        tr.net_ = loop.net.write_into(loop.slots.index(c), copies[c].net_).eval()
        if k > 1:
            _take_fit(tr, copies[c])
        out.append(tr)
    return out


def _copy(tr: Translator, r: int) -> Translator:
    """Copy ``r`` of a translator with restarts: its parameters with the copy's seed and one
    restart (history and fitted attributes start empty)."""
    c = Translator(**{**tr.params, "seed": restart_seed(tr.params["seed"], r), "restarts": 1})
    c.build_autoencoder, c.probe_at = tr.build_autoencoder, tr.probe_at
    return c


def _take_fit(tr: Translator, copy: Translator) -> None:
    """``tr`` takes the fitted attributes of its kept copy (its own history stays)."""
    for name in ("control_classes_", "protected_classes_", "train_rows_", "head_",
                 "n_head_inputs_", "q_given_y_"):  # fmt: skip
        setattr(tr, name, getattr(copy, name))


def _fail_together(loop: _PopulationLoop, k: int) -> None:
    """A translator fails when one of its copies diverges, as its lone fit would: its other
    copies are frozen with the same error."""
    if k == 1:
        return
    for j, error in enumerate(loop.errors):
        if error is None:
            continue
        for i in range(j - j % k, j - j % k + k):
            if loop.errors[i] is None:
                loop.errors[i] = error
                if i in loop.slots and bool(loop.opt.active[loop.slots.index(i)]):
                    loop.opt.freeze(loop.slots.index(i))


def _lowest_copies(loop: _PopulationLoop, copies: Sequence[Translator],
                   ps: Sequence[dict[str, Any]], k: int, kept: list[int]) -> list[int]:  # fmt: skip
    """Each translator's live copy of lowest training objective (``Translator._lowest``, copy
    by copy on the same function; ``kept``'s entry where none is live)."""
    out = list(kept)
    n_q = len(copies[0].protected_classes_)
    for m, p in enumerate(ps):
        fair = objective_rows(p, len(loop.Z), loop.Z.device)
        values = []
        for j in range(m * k, m * k + k):
            if loop.errors[j] is not None or j not in loop.slots:
                values.append(math.inf)
                continue
            net = loop.net.write_into(loop.slots.index(j), copies[j].net_)
            values.append(training_objective(net, p, loop.Z, loop.y, loop.q, n_q=n_q,
                                             fair_rows=fair))  # fmt: skip
        if any(math.isfinite(v) for v in values):
            out[m] = m * k + int(np.argmin(values))
    return out


def _prepare(tr: Translator, p: dict[str, Any], E: Any, y: Any, q: Any, E_val: Any, y_val: Any,
             q_val: Any) -> tuple[Any, ...]:  # fmt: skip
    """What ``Translator.fit`` sets up before its first epoch, in the same order (so the member
    starts from the weights its seed gives a lone fit): ``(E, y codes, q codes, val)``."""
    Ec, yc, qc = tr._coded_training_rows(E, y, q)
    val = tr._coded_validation_rows(E_val, y_val, q_val, Ec.shape[1])
    device = resolve_device(p["device"])
    torch.manual_seed(p["seed"])
    net = tr._new_net(p, Ec, qc, device)
    Ec, yc, qc, _ = tr._this_ranks_rows(Ec, yc, qc)
    n_y, n_q = len(tr.control_classes_), len(tr.protected_classes_)
    tr.net_, tr.head_ = net, None
    tr.n_head_inputs_ = Ec.shape[1] + (n_y if p["adversary_control"] else 0)
    tr.q_given_y_ = _q_given_y(yc, qc, n_y, n_q).to(device)
    tr.history_ = []
    return Ec, yc, qc, val


def _member_values(ps: Sequence[dict[str, Any]], key: str, dtype: torch.dtype) -> Tensor:
    return torch.tensor([float(p[key]) for p in ps], dtype=dtype)


class _PopulationLoop:
    """The optimisation state of a population: :class:`TrainingLoop`, one slice per member.
    ``slots`` maps each slice of the batch to its member (an index into the translators);
    ``errors`` is indexed by member."""

    def __init__(self, translators: Sequence[Translator], ps: Sequence[dict[str, Any]],
                 rows: tuple[Any, ...]) -> None:  # fmt: skip
        self.translators, self.ps, p = translators, ps, ps[0]
        self.net = StackedTranslatorNet([tr.net_ for tr in translators]).train()
        device = self.net.mean.device
        self.size = len(ps)
        self.n_q = len(translators[0].protected_classes_)
        self.n_y = len(translators[0].control_classes_)
        self.opt = PopulationAdam(list(self.net.parameters()), lr=[x["lr"] for x in ps],
                                  weight_decay=[x["weight_decay"] for x in ps])  # fmt: skip
        self.base_lr = self.opt.lr.clone()
        self.cosine = torch.tensor([x["lr_schedule"] == "cosine" for x in ps])
        E, yc, qc = rows[0], rows[1], rows[2]
        # the training rows standardised once, as in TrainingLoop (mean and scale are fixed)
        with torch.no_grad():
            self.Z = self.net.standardise(torch.from_numpy(E).to(device))
        self.y, self.q = torch.from_numpy(yc).to(device), torch.from_numpy(qc).to(device)
        n, bs = len(E), p["batch_size"]
        self.total_steps = p["epochs"] * sum(
            1 for start in range(0, n, bs) if min(bs, n - start) >= 2)  # fmt: skip
        self.weights = {k: _member_values(ps, k, torch.float32).to(device)
                        for k in ("w_control", "w_fair", "w_rec", "w_cells")}  # fmt: skip
        self.loss_bound = _member_values(ps, "loss_bound", torch.float64)
        self.gens = [torch.Generator().manual_seed(x["seed"]) for x in ps]
        self.errors: list[DivergenceError | None] = [None] * self.size
        self.slots = list(range(self.size))
        self.step = 0
        self.fair_rows = p["fair_rows"] > 0 and (
            p["quantize"] > 0 or p["fairness"] != "none")

    def keep_active(self) -> None:
        """Drop the frozen members' slices from the batch (weights, optimiser state and every
        per-member setting): a stopped or diverged member costs nothing more."""
        active = self.opt.active
        if bool(active.all()) or not bool(active.any()):
            return
        kept = torch.nonzero(active).flatten()
        keep = kept.tolist()
        self.net.keep(kept)
        self.opt.keep(kept)
        self.base_lr = self.base_lr.index_select(0, kept)
        self.cosine = self.cosine.index_select(0, kept)
        self.weights = {k: v.index_select(0, kept.to(v.device)) for k, v in self.weights.items()}
        self.loss_bound = self.loss_bound.index_select(0, kept)
        self.ps = [self.ps[s] for s in keep]
        self.gens = [self.gens[s] for s in keep]
        self.slots = [self.slots[s] for s in keep]
        self.size = len(keep)

    @torch.no_grad()
    def place_decisions(self) -> None:
        """``Translator._place_decision`` of every active member: its binary head's class-1
        bias moved to the cut of highest F1 on the training rows."""
        if self.ps[0]["control_decision"] != "f1" or self.n_y != 2:
            return
        net = self.net.eval()
        z = self.Z.expand(self.size, *self.Z.shape)
        logits = net.control_head(net.translate_std(z, self._onehot(self.q.expand(self.size, -1))))
        margin = (logits[..., 1] - logits[..., 0]).cpu().numpy()
        y = self.y.cpu().numpy()
        for s in torch.nonzero(self.opt.active).flatten().tolist():
            net.control_head.bias[s, 0, 1] -= f1_cut(margin[s], y)
        net.train()

    def _onehot(self, q: Tensor) -> Tensor | None:
        return F.one_hot(q, self.n_q).to(torch.float32) if self.net.q_dim else None

    def run_epoch(self, epoch: int) -> np.ndarray:
        """One epoch of every active member on its own seeded batches: ``[S, 4]`` means of
        :data:`LOSS_TERMS`."""
        n, bs = len(self.Z), self.ps[0]["batch_size"]
        sums, batches = np.zeros((self.size, len(LOSS_TERMS))), 0
        perms = torch.stack([torch.randperm(n, generator=g) for g in self.gens]).to(self.Z.device)
        for start in range(0, n, bs):
            idx = perms[:, start : start + bs]
            if idx.shape[1] < 2:
                continue
            fair_idx = self._fair_rows() if self.fair_rows else None
            self._set_lr()
            sums += self._step(idx, fair_idx, epoch=epoch)
            batches += 1
            self.step += 1
            if not self.opt.active.any():
                break
        return sums / max(batches, 1)

    def _fair_rows(self) -> Tensor | None:
        """Each member's fair-term rows ``[S, fair_rows]``, or None: all rows for every member."""
        n, m = len(self.Z), self.ps[0]["fair_rows"]
        if m >= n:
            return None
        return torch.stack([torch.randperm(n, generator=g)[:m] for g in self.gens]).to(self.Z.device)

    def _set_lr(self) -> None:
        """Each member's lr at this step: constant, or the half cosine of ``_cosine_schedule``."""
        t = self.total_steps
        factor = 0.5 * (1.0 + math.cos(math.pi * min(self.step, t) / t)) if t else 1.0
        self.opt.lr = torch.where(self.cosine, self.base_lr * factor, self.base_lr)

    def _step(self, idx: Tensor, fair_idx: Tensor | None, *, epoch: int) -> np.ndarray:
        """One step of every active member on its ``[S, b]`` rows; the ``[S, 4]`` loss terms."""
        net, w = self.net, self.weights
        z, y, q = self.Z[idx], self.y[idx], self.q[idx]
        z_fair, assign, vq = net.translate_parts(z, self._onehot(q))
        logits = net.control_head(z_fair)
        control = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        control = control.view(idx.shape).mean(1)
        zf, qf, yf, af, weight = z_fair, q, y, assign, None
        if self.fair_rows:
            if fair_idx is None:
                shape = (self.size, *self.Z.shape)
                zf, qf, yf = self.Z.expand(shape), self.q.expand(shape[:2]), self.y.expand(shape[:2])
            else:
                zf, qf, yf = self.Z[fair_idx], self.q[fair_idx], self.y[fair_idx]
            zf, af, weight = net.fair_parts(zf, self._onehot(qf), self.ps[0]["fairness"])
        fair = self._fair(zf, qf, yf, weight)
        rec = (z_fair - z).pow(2).mean((1, 2))
        total = w["w_control"] * control + w["w_fair"] * fair + w["w_rec"] * rec
        if af is not None:
            cells = torch.stack([cell_balance(af[s], qf[s], yf[s], n_groups=self.n_q)
                                 for s in range(self.size)])  # fmt: skip
            total = total + vq + w["w_cells"] * cells
            fair = fair + cells
        values = total.detach().double().cpu()
        self._check(values, epoch)
        active = self.opt.active
        if active.any():
            self.opt.zero_grad()
            torch.where(active.to(total.device), total, torch.zeros_like(total)).sum().backward()
            self.opt.step()
        terms = torch.stack([values, *(t.detach().double().cpu() for t in (control, fair, rec))], 1)
        return torch.where(active[:, None], terms, torch.zeros_like(terms)).numpy()

    def _check(self, values: Tensor, epoch: int) -> None:
        """Freeze every active member whose loss is not finite or beyond its bound."""
        bad = self.opt.active & (~torch.isfinite(values) | (values.abs() > self.loss_bound))
        for s in torch.nonzero(bad).flatten().tolist():
            p = self.ps[s]
            self.errors[self.slots[s]] = DivergenceError(
                f"translator loss diverged (fairness={p['fairness']!r}, bound={p['loss_bound']})",
                epoch=epoch, step=self.step, value=float(values[s]),
            )  # fmt: skip
            self.opt.freeze(s)

    def _fair(self, zf: Tensor, qf: Tensor, yf: Tensor, weight: Tensor | None = None) -> Tensor:
        """Each member's fairness term on its own rows, ``[S]`` (``weight``: each member's
        decoder's last layer, ``zf`` that layer's input: ``linear_guard(weight=...)``)."""
        p = self.ps[0]
        if p["fairness"] == "none":
            return zf.new_zeros(self.size)
        kw = {"grl_lambda": p["grl_lambda"], "adversary_loss": p["adversary_loss"],
              "n_classes": self.n_q}  # fmt: skip
        return torch.stack([fairness_term(p["fairness"], zf[s], qf[s], y=yf[s], **kw,
                                          weight=None if weight is None else weight[s])
                            for s in range(self.size)])  # fmt: skip

    @torch.no_grad()
    def validation(self, val: tuple[np.ndarray, ...], *, probe: bool) -> dict[int, dict[str, float]]:
        """``Translator._validation_row`` of every active member, from one batched forward pass
        (and one over the rows each member's fresh probe trains on)."""
        from fairsearch.probes.ladder.fresh import classification_scores, probe_scores

        net, dev = self.net, self.net.mean.device
        Ev, yv, qv = val
        live = torch.nonzero(self.opt.active).flatten().tolist()
        net.eval()
        ev = torch.from_numpy(Ev).to(dev).expand(self.size, *Ev.shape)
        qv_t = torch.from_numpy(qv).to(dev).expand(self.size, len(qv))
        z = net.standardise(ev)
        z_fair = net.translate_std(z, self._onehot(qv_t))
        pred = net.control_head(z_fair).argmax(-1).cpu().numpy()
        rec = (z_fair - z).pow(2).mean((1, 2)).cpu().numpy()
        train_z, train_q = self._probe_rows(live) if probe else ({}, {})
        out: dict[int, dict[str, float]] = {}
        for s in live:
            ctrl = classification_scores(yv, pred[s])
            row = {"control_f1": ctrl["f1"], "control_acc": ctrl["acc"],
                   "reconstruction": float(rec[s]), "adversary_f1": math.nan,
                   "adversary_bacc": math.nan}  # fmt: skip
            if probe:
                scores = probe_scores(train_z[s], train_q[s], z_fair[s].cpu().numpy(), qv,
                                      max_train=None, seed=self.ps[s]["seed"])  # fmt: skip
                row["adversary_f1"], row["adversary_bacc"] = scores["f1"], scores["bacc"]
            out[s] = row
        net.train()
        return out

    def _probe_rows(self, live: Sequence[int]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Each member's fresh-probe training rows, translated: the seeded subsample that
        ``probe_scores`` draws from all the training rows (``probe_max_train``), in its order."""
        n, m = len(self.Z), self.ps[0]["probe_max_train"]
        rows = [np.random.default_rng(self.ps[s]["seed"]).choice(n, m, replace=False) if n > m
                else np.arange(n) for s in range(self.size)]  # fmt: skip
        idx = torch.from_numpy(np.stack(rows)).to(self.Z.device)
        z = self.net.translate_std(self.Z[idx], self._onehot(self.q[idx]))
        zs = z.cpu().numpy().astype(np.float32)
        qs = self.q[idx].cpu().numpy()
        return {s: zs[s] for s in live}, {s: qs[s] for s in live}
