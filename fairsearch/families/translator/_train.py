"""``Translator``: scikit-learn-style estimator training the embedding translator.

``fit`` trains ``w_control * CE(control) + w_fair * fairness + w_rec * ||e_fair - e||^2`` with Adam
on seeded mini-batches (fairness terms in :mod:`._losses`); every ``probe_every`` epochs a fresh
logistic regression is trained on translated *training* embeddings and scored on translated
validation embeddings. A non-finite loss, or one whose magnitude exceeds ``loss_bound``, raises
:class:`fairsearch.families.wrapper.model.DivergenceError` with the epoch, step and value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fairsearch.families.translator._losses import (
    FAIRNESS_CHOICES,
    HEADED,
    fairness_term,
    reconstruction_loss,
)
from fairsearch.families.translator._model import TranslatorNet, mlp, parse_bottleneck
from fairsearch.families.translator._options import DEFAULTS as _DEFAULTS
from fairsearch.families.translator._quantize import cell_balance
from fairsearch.nets import DivergenceError, resolve_device

__all__ = ["Translator"]

HistoryRow = dict[str, float]



def _check_labels(name: str, v: Any, n: int) -> np.ndarray:
    a = np.asarray(v)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with one label per row of E ({n}), but got shape {a.shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must not contain NaN or inf")
    return a


def _check_embeddings(name: str, E: Any, d: int | None = None) -> np.ndarray:
    a = np.asarray(E, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must be a 2-D (rows x dims) array with >= 2 rows, but got shape {a.shape}")
    if d is not None and a.shape[1] != d:
        raise ValueError(f"{name} must have {d} columns like the training embeddings, but got {a.shape[1]}")
    if not np.all(np.isfinite(a)):
        bad = int((~np.isfinite(a)).any(1).sum())
        raise ValueError(f"{name} must be finite, but {bad} rows contain NaN or inf")
    return a


def _encode(name: str, labels: np.ndarray, classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    if classes is None:
        classes, codes = np.unique(labels, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"{name} needs at least 2 classes, but got only {classes.tolist()!r}")
        return classes, codes.astype(np.int64)
    unknown = np.setdiff1d(np.unique(labels), classes)
    if unknown.size:
        raise ValueError(f"{name} has classes not seen in training: {unknown.tolist()!r}")
    return classes, np.searchsorted(classes, labels).astype(np.int64)


class Translator:
    """Translate embeddings so that a fresh probe cannot recover ``q`` while ``y`` stays predictable.

    Args (all keyword):
        fairness: ``adversarial`` | ``gradient_reversal`` | ``negative_ce`` | ``cka`` | ``hsic`` |
            ``linear_cka`` | ``linear_guard`` | ``none`` (see :mod:`fairsearch.families.translator._losses`).
        bottleneck: encoder sizes, ``"60"`` or ``"256-60"`` (the decoder mirrors them).
        activation: ``relu`` | ``tanh`` | ``gelu`` | ``silu`` | ``elu``.
        w_control, w_fair, w_rec: loss weights (``>= 0``).
        lr, weight_decay, batch_size, epochs: Adam settings of the translator (and heads).
        lr_schedule: ``constant`` or ``cosine`` (the translator's lr decays to 0 over the run, so
            that the last steps settle on the penalty's minimum instead of jittering around it).
        adversary_every: the adversary is updated after every ``k``-th translator step, with
            ``adversary_steps`` Adam steps of ``adversary_lr``; ``adversary_width``/``adversary_depth``
            size the adversary (and the protected head of ``gradient_reversal``/``negative_ce``).
        adversary_loss: what the translator does to the adversary: ``negative_ce`` (maximise its
            cross-entropy, the report's min-max) or ``confusion`` (make its posterior uniform).
        adversary_count: adversaries trained side by side (``adversarial`` only); the translator
            minimises the mean of their terms, so it cannot win by fooling one of them.
        adversary_reset_every: every this many translator steps one adversary (in turn) is
            re-initialised with a fresh optimiser (``0``: never), so that the translator keeps
            facing a fresh probe instead of one it has learned to fool.
        adversary_control: the adversary / protected head sees ``[z, onehot(y)]``: only what
            ``z`` says about ``q`` beyond the control label is penalised; with
            ``adversary_loss="confusion"`` the target posterior becomes the training ``p(q | y)``.
        grl_lambda: gradient reversal scale.
        fair_rows: rows on which a head-free fairness term (``cka``, ``hsic``, ``linear_cka``,
            ``linear_guard``, ``mmd``, ``conditional_mmd``) is estimated each step: ``0`` = the mini-batch; otherwise a fresh
            seeded sample of that many training rows (all of them when ``>= n``), so that batch
            noise does not leave a residual dependence (use it with the linear terms: the kernel
            ones cost ``rows^2``).
        q_input: the encoder also reads one-hot ``q`` (group-aware; :mod:`._group`): ``q`` is then
            needed to translate (``transform(E, q=...)``), i.e. only where ``q`` is known.
        quantize: ``K >= 2`` cells: the output is one of ``K`` decoded codes of a straight-through
            codebook (:mod:`._quantize`), so any classifier of it can be bounded; ``0``: off.
        w_cells: weight of the cell-balance term (``quantize`` only): within each control class,
            every group's distribution over cells is pulled to the groups' average. It is
            estimated on ``fair_rows`` rows like the head-free fairness terms.
        probe_every: epochs between fresh logistic probes (``0``: only after the last epoch);
            ``probe_max_train``: training rows the probe sees (a seeded subsample).
        loss_bound: ``|total loss|`` above this raises ``DivergenceError``.
    """

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown Translator parameter(s) {unknown}; allowed: {sorted(_DEFAULTS)}")
        self.params = {**_DEFAULTS, **params}
        #: ``d -> (encoder, decoder)``: a user's auto-encoder in place of ``bottleneck``'s MLPs
        self.build_autoencoder: Callable[[int], tuple[nn.Module, nn.Module]] | None = None

    # ------------------------------------------------------------------ sklearn-ish plumbing
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return dict(self.params)

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.params.items() if _DEFAULTS[k] != v}
        return f"Translator({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def validated_params(self) -> dict[str, Any]:
        p = dict(self.params)
        if p["fairness"] not in FAIRNESS_CHOICES:
            raise ValueError(f"fairness must be one of {list(FAIRNESS_CHOICES)}, but got {p['fairness']!r}")
        for key in ("w_control", "w_fair", "w_rec", "weight_decay", "w_cells"):
            v = p[key]
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{key} must be a finite number >= 0, but got {v!r}")
        for key in ("lr", "adversary_lr", "grl_lambda", "loss_bound"):
            v = p[key]
            if not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"{key} must be a number > 0, but got {v!r}")
        for key, low in (("batch_size", 1), ("epochs", 1), ("adversary_every", 1),
                         ("adversary_steps", 1), ("adversary_width", 1), ("adversary_depth", 0),
                         ("probe_every", 0), ("probe_max_train", 10), ("fair_rows", 0),
                         ("adversary_count", 1), ("adversary_reset_every", 0),
                         ("quantize", 0)):  # fmt: skip
            v = p[key]
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
                raise ValueError(f"{key} must be an integer >= {low}, but got {v!r}")
        if p["adversary_loss"] not in ("negative_ce", "confusion"):
            raise ValueError(
                f"adversary_loss must be 'negative_ce' or 'confusion', but got {p['adversary_loss']!r}"
            )
        if p["quantize"] == 1:
            raise ValueError("quantize must be 0 (off) or a number of cells >= 2, but got 1")
        if not isinstance(p["q_input"], bool | np.bool_):
            raise ValueError(f"q_input must be true or false, but got {p['q_input']!r}")
        p["q_input"] = bool(p["q_input"])
        if not isinstance(p["adversary_control"], bool | np.bool_):
            raise ValueError(f"adversary_control must be true or false, but got {p['adversary_control']!r}")
        p["adversary_control"] = bool(p["adversary_control"])
        if p["lr_schedule"] not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', but got {p['lr_schedule']!r}")
        p["bottleneck"] = parse_bottleneck(p["bottleneck"])
        return p

    # ------------------------------------------------------------------ training
    def fit(
        self,
        E: Any,
        y: Any,
        *,
        q: Any,
        E_val: Any = None,
        y_val: Any = None,
        q_val: Any = None,
        on_epoch_end: Callable[[HistoryRow], None] | None = None,
    ) -> Translator:
        """Train on ``(E, y, q)``; validation metrics need ``E_val, y_val, q_val``. Returns ``self``."""
        p = self.validated_params()
        E = _check_embeddings("E", E)
        n, d = E.shape
        self.control_classes_, yc = _encode("y", _check_labels("y", y, n))
        self.protected_classes_, qc = _encode("q", _check_labels("q", q, n))
        val = None
        if E_val is not None:
            if y_val is None or q_val is None:
                raise ValueError("E_val needs y_val and q_val as well, but got None for one of them")
            Ev = _check_embeddings("E_val", E_val, d)
            _, yv = _encode("y_val", _check_labels("y_val", y_val, len(Ev)), self.control_classes_)
            _, qv = _encode("q_val", _check_labels("q_val", q_val, len(Ev)), self.protected_classes_)
            val = (Ev, yv, qv)

        device = resolve_device(p["device"])
        torch.manual_seed(p["seed"])
        custom = self.build_autoencoder(d) if self.build_autoencoder is not None else None
        q_dim = len(self.protected_classes_) if p["q_input"] else 0
        net = TranslatorNet(d, len(self.control_classes_), bottleneck=p["bottleneck"],
                            activation=p["activation"], autoencoder=custom, q_dim=q_dim,
                            quantize=p["quantize"]).to(device)  # fmt: skip
        net.mean.copy_(torch.from_numpy(E.mean(0)))
        net.scale.copy_(torch.from_numpy(np.maximum(E.std(0), 1e-6)))
        if net.codebook is not None:  # codes start at the encoder outputs of random rows
            with torch.no_grad():
                rows = np.random.default_rng(p["seed"]).permutation(n)[:4096]
                e0 = torch.from_numpy(E[rows]).to(device)
                h0 = net.encode(net.standardise(e0), self._q_onehot(torch.from_numpy(qc[rows]).to(device)))
                net.codebook.init_from(h0, torch.Generator().manual_seed(p["seed"]))
        rank, world = _data_parallel()
        self.train_rows_ = np.arange(n)
        if world > 1:  # this rank's equal share of the rows (every rank takes as many steps)
            self.train_rows_ = self.train_rows_[rank : n // world * world : world]
            E, yc, qc = E[self.train_rows_], yc[self.train_rows_], qc[self.train_rows_]
            n = len(E)
        n_q, n_y = len(self.protected_classes_), len(self.control_classes_)
        self.n_head_inputs_ = d + (n_y if p["adversary_control"] else 0)
        count = p["adversary_count"] if p["fairness"] == "adversarial" else 1
        heads = [self._new_head(p, device) for _ in range(count)] if p["fairness"] in HEADED else []
        head = heads[0] if heads else None
        self.net_, self.head_ = net, head
        params = list(net.parameters())
        adv_opts: list[torch.optim.Optimizer] = []
        if heads and p["fairness"] == "adversarial":
            adv_opts = [self._adversary_opt(h, p) for h in heads]
        elif head is not None:
            params += list(head.parameters())
        opt = torch.optim.Adam(params, lr=p["lr"], weight_decay=p["weight_decay"])
        # p(q | y) on the training rows: the confusion target of an adversary that sees y
        joint = np.zeros((n_y, n_q))
        np.add.at(joint, (yc, qc), 1.0)
        self.q_given_y_ = torch.from_numpy(joint / joint.sum(1, keepdims=True)).float().to(device)
        if world > 1:  # same initial weights (same seed) + averaged gradients = same weights
            for o in (opt, *adv_opts):
                o.register_step_pre_hook(_average_gradients)
        total_steps = p["epochs"] * sum(
            1 for start in range(0, n, p["batch_size"]) if min(p["batch_size"], n - start) >= 2
        )
        sched = (
            torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
            )
            if p["lr_schedule"] == "cosine" else None
        )

        Et = torch.from_numpy(E).to(device)
        yt, qt = torch.from_numpy(yc).to(device), torch.from_numpy(qc).to(device)
        gen = torch.Generator().manual_seed(p["seed"])
        self.history_: list[HistoryRow] = []
        step = 0
        use_rows = p["fair_rows"] > 0 and (p["quantize"] > 0 or (p["fairness"] not in HEADED
                                                                 and p["fairness"] != "none"))
        for epoch in range(p["epochs"]):
            net.train()
            sums = np.zeros(4)
            batches = 0
            perm = torch.randperm(n, generator=gen).to(device)
            for start in range(0, n, p["batch_size"]):
                idx = perm[start : start + p["batch_size"]]
                if idx.numel() < 2:
                    continue
                fair_batch = None
                if use_rows:
                    rows = (slice(None) if p["fair_rows"] >= n else
                            torch.randperm(n, generator=gen)[: p["fair_rows"]].to(device))  # fmt: skip
                    fair_batch = (Et[rows], qt[rows], yt[rows])
                if adv_opts and p["adversary_reset_every"] and step and \
                        step % p["adversary_reset_every"] == 0:  # fmt: skip
                    i = (step // p["adversary_reset_every"]) % len(heads)
                    heads[i] = self._new_head(p, device)
                    adv_opts[i] = self._adversary_opt(heads[i], p)
                    if world > 1:
                        adv_opts[i].register_step_pre_hook(_average_gradients)
                    self.head_ = heads[0]
                terms = self._step(net, heads, opt, adv_opts, p, Et[idx], yt[idx], qt[idx],
                                   epoch=epoch, step=step, fair_batch=fair_batch)  # fmt: skip
                if sched is not None:
                    sched.step()
                sums += terms
                batches += 1
                step += 1
            row: HistoryRow = {"epoch": float(epoch)}
            names = ("loss", "control_loss", "fair_loss", "reconstruction_loss")
            row.update({k: float(v) for k, v in zip(names, sums / max(batches, 1), strict=True)})
            last = epoch == p["epochs"] - 1
            do_probe = last or (p["probe_every"] > 0 and (epoch + 1) % p["probe_every"] == 0)
            if val is not None:
                row.update(self._validation_row(E, qc, val, probe=do_probe, p=p))
            self.history_.append(row)
            if on_epoch_end is not None:
                on_epoch_end(dict(row))
        net.eval()
        return self

    def _q_onehot(self, q: Tensor) -> Tensor:
        """One-hot ``q`` codes (float32), the encoder's extra input when it reads ``q``."""
        return F.one_hot(q, len(self.protected_classes_)).to(torch.float32)

    def _new_head(self, p: dict[str, Any], device: torch.device) -> nn.Module:
        return mlp(self.n_head_inputs_, len(self.protected_classes_), depth=p["adversary_depth"],
                   width=p["adversary_width"], activation=p["activation"]).to(device)  # fmt: skip

    @staticmethod
    def _adversary_opt(head: nn.Module, p: dict[str, Any]) -> torch.optim.Optimizer:
        return torch.optim.Adam(head.parameters(), lr=p["adversary_lr"], weight_decay=p["weight_decay"])

    def _head_input(self, head: nn.Module, y: Tensor, control: bool) -> Callable[[Tensor], Tensor]:
        """``head`` itself, or ``z -> head([z, onehot(y)])`` when the adversary sees ``y``."""
        if not control:
            return head
        onehot = F.one_hot(y, len(self.control_classes_)).to(torch.float32)
        return lambda z: head(torch.cat([z, onehot.to(z.dtype)], 1))

    def _fair(self, p: dict[str, Any], heads: list[nn.Module], zf: Tensor, qf: Tensor,
              yf: Tensor) -> Tensor:  # fmt: skip
        target = self.q_given_y_[yf] if p["adversary_control"] else None
        kw = {"grl_lambda": p["grl_lambda"], "adversary_loss": p["adversary_loss"],
              "n_classes": len(self.protected_classes_), "y": yf, "target": target}  # fmt: skip
        if not heads:
            return fairness_term(p["fairness"], zf, qf, **kw)
        terms = [fairness_term(p["fairness"], zf, qf, head=self._head_input(h, yf, p["adversary_control"]), **kw)
                 for h in heads]  # fmt: skip
        return torch.stack(terms).mean()

    def _step(self, net: TranslatorNet, heads: list[nn.Module], opt: torch.optim.Optimizer,
              adv_opts: list[torch.optim.Optimizer], p: dict[str, Any], e: Tensor, y: Tensor,
              q: Tensor, *, epoch: int, step: int,
              fair_batch: tuple[Tensor, Tensor, Tensor] | None = None) -> np.ndarray:  # fmt: skip
        z = net.standardise(e)
        z_fair, assign, vq = net.translate_parts(z, self._q_onehot(q) if net.q_dim else None)
        logits = net.control_head(z_fair)
        control = F.cross_entropy(logits, y)
        zf, qf, yf, af = z_fair, q, y, assign
        if fair_batch is not None:
            qf, yf = fair_batch[1], fair_batch[2]
            zf, af, _ = net.translate_parts(net.standardise(fair_batch[0]),
                                            self._q_onehot(qf) if net.q_dim else None)  # fmt: skip
        fair = self._fair(p, heads, zf, qf, yf)
        rec = reconstruction_loss(z_fair, z)
        total = p["w_control"] * control + p["w_fair"] * fair + p["w_rec"] * rec
        if af is not None:  # quantized: codebook loss and the groups' balance within each cell
            cells = cell_balance(af, qf, yf, n_groups=len(self.protected_classes_))
            total = total + vq + p["w_cells"] * cells
            fair = fair + cells
        value = float(total.detach())
        if not math.isfinite(value) or abs(value) > p["loss_bound"]:
            raise DivergenceError(
                f"translator loss diverged (fairness={p['fairness']!r}, bound={p['loss_bound']})",
                epoch=epoch, step=step, value=value,
            )  # fmt: skip
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if adv_opts and (step + 1) % p["adversary_every"] == 0:
            zd = z_fair.detach()
            for head, adv_opt in zip(heads, adv_opts, strict=True):
                fwd = self._head_input(head, y, p["adversary_control"])
                for _ in range(p["adversary_steps"]):
                    adv_opt.zero_grad(set_to_none=True)
                    F.cross_entropy(fwd(zd), q).backward()
                    adv_opt.step()
        return np.array([value, float(control.detach()), float(fair.detach()), float(rec.detach())])

    @torch.no_grad()
    def _validation_row(self, E: np.ndarray, qc: np.ndarray, val: tuple[np.ndarray, ...], *,
                        probe: bool, p: dict[str, Any]) -> HistoryRow:  # fmt: skip
        from fairsearch.probes.fresh import classification_scores, probe_scores

        Ev, yv, qv = val
        self.net_.eval()
        dev = self.net_.mean.device
        qv1h = self._q_onehot(torch.from_numpy(qv).to(dev)) if self.net_.q_dim else None
        z, z_fair, logits = self.net_(torch.from_numpy(Ev).to(dev), qv1h)
        ctrl = classification_scores(yv, logits.argmax(1).cpu().numpy())
        row = {
            "control_f1": ctrl["f1"],
            "control_acc": ctrl["acc"],
            "reconstruction": float(reconstruction_loss(z_fair, z)),
            "adversary_f1": math.nan,
            "adversary_bacc": math.nan,
        }
        if probe:
            scores = probe_scores(self._translate_std(E, qc), qc, z_fair.cpu().numpy(), qv,
                                  max_train=p["probe_max_train"], seed=p["seed"])  # fmt: skip
            row["adversary_f1"], row["adversary_bacc"] = scores["f1"], scores["bacc"]
        self.net_.train()
        return row

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> TranslatorNet:
        if not hasattr(self, "net_"):
            raise RuntimeError("this Translator is not fitted yet: call fit(E, y, q=...) first")
        return self.net_

    def _q_codes(self, q: Any, n: int) -> np.ndarray | None:
        """Codes of ``q`` for a translator that reads it (None for one that does not)."""
        if not self._check_fitted().q_dim:
            return None
        if q is None:
            raise ValueError("this translator reads q (q_input=true): pass q=... with one label "
                             "per row, but got None")  # fmt: skip
        return _encode("q", _check_labels("q", q, n), self.protected_classes_)[1]

    @torch.no_grad()
    def _translate_std(self, E: np.ndarray, qc: np.ndarray | None = None, batch: int = 8192,
                       cells: bool = False) -> np.ndarray:  # fmt: skip
        net = self._check_fitted()
        was_training = net.training
        net.eval()
        out = []
        for start in range(0, len(E), batch):
            e = torch.from_numpy(np.ascontiguousarray(E[start : start + batch])).to(net.mean.device)
            q1h = None
            if net.q_dim and qc is not None:
                q1h = self._q_onehot(torch.from_numpy(qc[start : start + batch]).to(e.device))
            z = net.standardise(e)
            if cells:
                assert net.codebook is not None
                out.append(net.codebook.cells(net.encode(z, q1h)).cpu().numpy())
            else:
                out.append(net.translate_std(z, q1h).cpu().numpy())
        net.train(was_training)
        return np.concatenate(out) if cells else np.concatenate(out).astype(np.float32)

    def transform(self, E: Any, q: Any = None) -> np.ndarray:
        """Translated embeddings, float32, in the original embeddings' units (``q``: needed, and
        only used, when the translator reads it)."""
        net = self._check_fitted()
        E = _check_embeddings("E", E, int(net.mean.shape[0]))
        z = self._translate_std(E, self._q_codes(q, len(E)))
        return z * net.scale.cpu().numpy() + net.mean.cpu().numpy()

    def cells(self, E: Any, q: Any = None) -> np.ndarray:
        """The cell (code index, ``0..quantize-1``) of every row of a quantized translator."""
        net = self._check_fitted()
        if net.codebook is None:
            raise ValueError("cells needs a quantized translator (quantize >= 2), but got "
                             f"quantize={self.params['quantize']!r}")  # fmt: skip
        E = _check_embeddings("E", E, int(net.mean.shape[0]))
        return self._translate_std(E, self._q_codes(q, len(E)), cells=True).astype(np.int64)

    @torch.no_grad()
    def predict(self, E: Any, q: Any = None) -> np.ndarray:
        """The control head's predicted labels (original label values)."""
        net = self._check_fitted()
        E = _check_embeddings("E", E, int(net.mean.shape[0]))
        z = torch.from_numpy(self._translate_std(E, self._q_codes(q, len(E)))).to(net.mean.device)
        return self.control_classes_[net.control_head(z).argmax(1).cpu().numpy()]


def _data_parallel() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed process group, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Optimizer step pre-hook: all-reduce (mean) every gradient across the process group."""
    world = torch.distributed.get_world_size()
    for group in opt.param_groups:
        for param in group["params"]:
            if param.grad is not None:
                torch.distributed.all_reduce(param.grad)
                param.grad /= world
