"""``Translator``: scikit-learn-style estimator training the embedding translator.

``fit`` checks and codes its arrays (:mod:`._inputs`), builds the network, then runs the
optimisation of :mod:`._loop` epoch by epoch (the loss and its fairness terms are described
there and in :mod:`._losses`); every ``probe_every`` epochs a fresh logistic regression is
trained on translated *training* embeddings and scored on translated validation embeddings.
``transform``, ``cells`` and ``predict`` apply a fitted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fairsearch.families.translator._decision import DECISIONS, f1_cut
from fairsearch.families.translator._inputs import check_embeddings, check_labels, encode_classes
from fairsearch.families.translator._loop import TrainingLoop, data_parallel
from fairsearch.families.translator._losses import FAIRNESS_CHOICES, reconstruction_loss
from fairsearch.families.translator._model import TranslatorNet, parse_bottleneck
from fairsearch.families.translator._options import DEFAULTS as _DEFAULTS
from fairsearch.families.translator._restarts import (
    check_restarts,
    objective_rows,
    restart_seed,
    training_objective,
)
from fairsearch.nets import resolve_device

__all__ = ["Translator"]

HistoryRow = dict[str, float]


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
        control_decision: ``"f1"`` (default): after the last epoch's steps a binary control
            head's class-1 bias moves to the cut of highest F1 on the training rows
            (:mod:`._decision`); ``"argmax"``: the trained head as it is.
        restarts: ``k >= 1`` copies of a quantized translator trained from derived seeds,
            epoch by epoch; the one with the lowest training objective is kept
            (:mod:`._restarts`). Each epoch's history row is that of the copy lowest at that
            epoch; ``1`` (default): one fit.
        probe_every: epochs between fresh logistic probes (``0``, the default: only after the
            last epoch and the epoch counts of :attr:`probe_at`); ``probe_max_train``: training
            rows the probe sees (a seeded subsample).
        loss_bound: ``|total loss|`` above this raises ``DivergenceError``.
    """

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown Translator parameter(s) {unknown}; allowed: {sorted(_DEFAULTS)}")
        self.params = {**_DEFAULTS, **params}
        #: ``d -> (encoder, decoder)``: a user's auto-encoder in place of ``bottleneck``'s MLPs
        self.build_autoencoder: Callable[[int], tuple[nn.Module, nn.Module]] | None = None
        #: epoch counts after which a fresh probe also scores the translation (successive
        #: halving's rungs, where the search reads it)
        self.probe_at: tuple[int, ...] = ()

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
        if p["control_decision"] not in DECISIONS:
            raise ValueError(f"control_decision must be one of {list(DECISIONS)}, but got "
                             f"{p['control_decision']!r}")  # fmt: skip
        check_restarts(p)
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
        E, yc, qc = self._coded_training_rows(E, y, q)
        val = self._coded_validation_rows(E_val, y_val, q_val, E.shape[1])
        device = resolve_device(p["device"])
        every_row = E, yc, qc  # the decision's cut is drawn on all of them, on every rank
        n_classes = (len(self.control_classes_), len(self.protected_classes_))
        E, yc, qc, world = self._this_ranks_rows(*every_row)
        loops = []
        for r in range(p["restarts"]):
            pr = {**p, "seed": restart_seed(p["seed"], r)}
            torch.manual_seed(pr["seed"])
            net = self._new_net(pr, every_row[0], every_row[2], device)
            loops.append(TrainingLoop(pr, net, E, yc, qc, world=world, device=device,
                                      n_classes=n_classes))  # fmt: skip
        lowest = self._lowest_of(p, loops, every_row) if len(loops) > 1 else None
        best = loops[0]
        self.net_, self.head_ = best.net, best.head
        self.n_head_inputs_, self.q_given_y_ = best.n_head_inputs, best.q_given_y
        self.history_: list[HistoryRow] = []
        for epoch in range(p["epochs"]):
            means = []
            for loop in loops:
                loop.net.train()
                means.append(loop.run_epoch(epoch))
            if epoch == p["epochs"] - 1:
                for loop in loops:
                    self._place_decision(p, *every_row, net=loop.net)
            at = lowest() if lowest is not None else 0
            best = loops[at]
            self.net_, self.head_ = best.net, best.head
            row: HistoryRow = {"epoch": float(epoch), **means[at]}
            if val is not None:
                row.update(self._validation_row(E, qc, val, probe=_probes_after(epoch, p, self.probe_at),
                                                  p=best.p))  # fmt: skip
            self.history_.append(row)
            if on_epoch_end is not None:
                on_epoch_end(dict(row))
        self.net_.eval()
        return self

    def _lowest_of(self, p: dict[str, Any], loops: Sequence[TrainingLoop],
                   rows: tuple[np.ndarray, ...]) -> Callable[[], int]:  # fmt: skip
        """A function giving the restart whose training objective on all of ``rows`` is lowest
        now (the first of equals); the rows are standardised and sampled once."""
        E, yc, qc = rows
        dev = loops[0].device
        with torch.no_grad():
            Z = loops[0].net.standardise(torch.from_numpy(E).to(dev))
        y, q = torch.from_numpy(yc).to(dev), torch.from_numpy(qc).to(dev)
        fair = objective_rows(p, len(E), dev)
        n_q = len(self.protected_classes_)

        def lowest() -> int:
            return int(np.argmin([training_objective(loop.net, p, Z, y, q, n_q=n_q, fair_rows=fair)
                                  for loop in loops]))  # fmt: skip

        return lowest

    @torch.no_grad()
    def _place_decision(self, p: dict[str, Any], E: np.ndarray, yc: np.ndarray,
                        qc: np.ndarray, *, net: TranslatorNet) -> None:  # fmt: skip
        """``control_decision: "f1"``: move a binary head's class-1 bias to the cut of highest
        F1 on the training rows ``(E, yc, qc)`` (:func:`._decision.f1_cut`)."""
        if p["control_decision"] != "f1" or len(self.control_classes_) != 2:
            return
        z = torch.from_numpy(self._translate_std(E, qc if net.q_dim else None, net=net)).to(
            net.mean.device)
        logits = net.control_head(z)
        net.control_head.bias[1] -= f1_cut((logits[:, 1] - logits[:, 0]).cpu().numpy(), yc)

    def _coded_training_rows(self, E: Any, y: Any, q: Any) -> tuple[np.ndarray, ...]:
        """``(E, y codes, q codes)``, checked; sets the control and protected classes."""
        E = check_embeddings("E", E)
        n = len(E)
        self.control_classes_, yc = encode_classes("y", check_labels("y", y, n))
        self.protected_classes_, qc = encode_classes("q", check_labels("q", q, n))
        return E, yc, qc

    def _coded_validation_rows(self, E_val: Any, y_val: Any, q_val: Any,
                               d: int) -> tuple[np.ndarray, ...] | None:  # fmt: skip
        """``(E_val, y_val codes, q_val codes)`` in the training classes, or None without E_val."""
        if E_val is None:
            return None
        if y_val is None or q_val is None:
            raise ValueError("E_val needs y_val and q_val as well, but got None for one of them")
        Ev = check_embeddings("E_val", E_val, d)
        _, yv = encode_classes("y_val", check_labels("y_val", y_val, len(Ev)), self.control_classes_)
        _, qv = encode_classes("q_val", check_labels("q_val", q_val, len(Ev)), self.protected_classes_)
        return Ev, yv, qv

    def _new_net(self, p: dict[str, Any], E: np.ndarray, qc: np.ndarray,
                 device: torch.device) -> TranslatorNet:  # fmt: skip
        """The untrained network, standardising with ``E``'s statistics; a quantized one's
        codes start at the encoder outputs of seeded random rows."""
        n, d = E.shape
        custom = self.build_autoencoder(d) if self.build_autoencoder is not None else None
        q_dim = len(self.protected_classes_) if p["q_input"] else 0
        net = TranslatorNet(d, len(self.control_classes_), bottleneck=p["bottleneck"],
                            activation=p["activation"], autoencoder=custom, q_dim=q_dim,
                            quantize=p["quantize"]).to(device)  # fmt: skip
        net.mean.copy_(torch.from_numpy(E.mean(0)))
        net.scale.copy_(torch.from_numpy(np.maximum(E.std(0), 1e-6)))
        if net.codebook is not None:
            with torch.no_grad():
                rows = np.random.default_rng(p["seed"]).permutation(n)[:4096]
                e0 = torch.from_numpy(E[rows]).to(device)
                h0 = net.encode(net.standardise(e0), self._q_onehot(torch.from_numpy(qc[rows]).to(device)))
                net.codebook.init_from(h0, torch.Generator().manual_seed(p["seed"]))
        return net

    def _this_ranks_rows(self, E: np.ndarray, yc: np.ndarray,
                         qc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:  # fmt: skip
        """The rows this process trains on, and the data-parallel world size; sets
        ``train_rows_``. Under ``torch.distributed`` each rank takes an equal share of the rows
        (so every rank takes as many steps)."""
        n = len(E)
        rank, world = data_parallel()
        self.train_rows_ = np.arange(n)
        if world > 1:
            self.train_rows_ = self.train_rows_[rank : n // world * world : world]
            E, yc, qc = E[self.train_rows_], yc[self.train_rows_], qc[self.train_rows_]
        return E, yc, qc, world

    def _q_onehot(self, q: Tensor) -> Tensor:
        """One-hot ``q`` codes (float32), the encoder's extra input when it reads ``q``."""
        return F.one_hot(q, len(self.protected_classes_)).to(torch.float32)

    @torch.no_grad()
    def _validation_row(self, E: np.ndarray, qc: np.ndarray, val: tuple[np.ndarray, ...], *,
                        probe: bool, p: dict[str, Any]) -> HistoryRow:  # fmt: skip
        from fairsearch.probes.ladder.fresh import classification_scores, probe_scores

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
        return encode_classes("q", check_labels("q", q, n), self.protected_classes_)[1]

    @torch.no_grad()
    def _translate_std(self, E: np.ndarray, qc: np.ndarray | None = None, batch: int = 8192,
                       cells: bool = False, net: TranslatorNet | None = None) -> np.ndarray:  # fmt: skip
        net = net if net is not None else self._check_fitted()
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
        E = check_embeddings("E", E, int(net.mean.shape[0]))
        z = self._translate_std(E, self._q_codes(q, len(E)))
        return z * net.scale.cpu().numpy() + net.mean.cpu().numpy()

    def cells(self, E: Any, q: Any = None) -> np.ndarray:
        """The cell (code index, ``0..quantize-1``) of every row of a quantized translator."""
        net = self._check_fitted()
        if net.codebook is None:
            raise ValueError("cells needs a quantized translator (quantize >= 2), but got "
                             f"quantize={self.params['quantize']!r}")  # fmt: skip
        E = check_embeddings("E", E, int(net.mean.shape[0]))
        return self._translate_std(E, self._q_codes(q, len(E)), cells=True).astype(np.int64)

    @torch.no_grad()
    def predict(self, E: Any, q: Any = None) -> np.ndarray:
        """The control head's predicted labels (original label values)."""
        net = self._check_fitted()
        E = check_embeddings("E", E, int(net.mean.shape[0]))
        z = torch.from_numpy(self._translate_std(E, self._q_codes(q, len(E)))).to(net.mean.device)
        return self.control_classes_[net.control_head(z).argmax(1).cpu().numpy()]



def _probes_after(epoch: int, p: dict[str, Any], at: Sequence[int] = ()) -> bool:
    """Whether a fresh probe scores the translation after ``epoch`` (0-based): every
    ``probe_every`` epochs, after ``at``'s epoch counts and after the last epoch."""
    done = epoch + 1
    return (done == p["epochs"] or done in at
            or (p["probe_every"] > 0 and done % p["probe_every"] == 0))  # fmt: skip
