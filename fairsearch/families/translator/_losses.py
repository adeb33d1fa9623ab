"""Fairness terms of the translator loss.

``total = w_control * CE(control) + w_fair * fairness + w_rec * MSE(e_fair, e)`` where ``fairness``
is, for a batch of translated embeddings ``z`` and protected codes ``q``:

* ``adversarial``: ``-CE(adversary(z), q)``; the adversary is a separate network with its own
  optimiser, trained to *minimise* that CE every ``k`` translator steps (a min-max game);
  with ``adversary_loss="confusion"`` the translator instead minimises ``CE(adversary(z), uniform)``
  (push the adversary's posterior to uniform; Alvi et al. 2018), which cannot be won by making the
  adversary confidently *wrong* (a label flip keeps all the information);
* ``gradient_reversal``: ``CE(head(GRL_lambda(z)), q)``; one optimiser: the head minimises the CE,
  the reversed gradient makes the translator maximise it (Raff & Sylvester 2018);
* ``negative_ce``: ``-CE(head(z), q)`` with head and translator in one optimiser: the head is free
  to become arbitrarily wrong, so the loss runs to ``-inf`` (the report's divergence);
* ``cka`` / ``hsic``: kernel dependence between ``z`` (RBF, median bandwidth) and ``q``
  (delta kernel), from :mod:`fairsearch.measures.dependence`;
* ``linear_cka``: linear CKA between ``z`` and one-hot ``q``: zero exactly when every coordinate of
  ``z`` has the same mean in every group, i.e. no *linear* information (LEACE's criterion), made
  a differentiable penalty.
* ``linear_guard``: the squared canonical correlations between ``z`` and one-hot ``q`` (for a
  binary ``q``: the R^2 of the least-squares linear probe), i.e. the cross-covariance measured in
  whitened units (ridge-regularised). Zero exactly when the class-conditional means of ``z`` are
  equal (LEACE's criterion: then no linear probe, whatever its loss, class weights or feature
  scaling, beats a constant), and unlike ``linear_cka`` it does not ignore low-variance
  directions, which a standardising probe blows up. Estimate it on many rows (``fair_rows``):
  on a small batch its chance level is about ``d / batch``.
* ``mmd``: multi-bandwidth RBF MMD^2 between each group's translated embeddings and the pooled
  rest (mean over the ``K`` groups; bandwidths = median pairwise distance x ``MMD_SCALES``):
  zero exactly when every group has the same *distribution*, so no probe, linear or not, can
  tell the groups apart. It also removes what the control label says about ``q``, which costs
  control accuracy when ``y`` and ``q`` are correlated.
* ``conditional_mmd``: the same within each control class, averaged with class-size weights:
  zero when ``z`` is independent of ``q`` *given* ``y``, so a probe can recover no more of ``q``
  than the control label itself predicts (the floor). Estimate both on many rows
  (``fair_rows``, e.g. 2048): the estimator's noise is about ``1 / rows``.
* ``conditional_sw``: the sliced 2-Wasserstein distance between each group and the rest of its
  control class, averaged like ``conditional_mmd`` (:mod:`._group`; no bandwidth to choose).
* ``adversarial`` with ``adversary_control=True``: the adversary sees ``[z, onehot(y)]``, so
  the translator is only pushed to hide what ``z`` adds beyond ``y`` (with ``confusion``, the
  target posterior is the training set's ``p(q | y)`` instead of uniform).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fairsearch.families.translator._group import conditional_sw
from fairsearch.families.translator._model import grad_reverse
from fairsearch.families.translator._options import FAIRNESS_CHOICES
from fairsearch.measures.dependence import cka, hsic, linear_cka

Fairness = Literal[
    "none", "adversarial", "gradient_reversal", "negative_ce", "cka", "hsic", "linear_cka",
    "linear_guard", "mmd", "conditional_mmd", "conditional_sw",
]
#: Multipliers of the median pairwise distance: the RBF bandwidths summed in ``mmd``.
MMD_SCALES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
#: Losses that need a protected head / adversary network.
HEADED: frozenset[str] = frozenset({"adversarial", "gradient_reversal", "negative_ce"})


def reconstruction_loss(z_fair: Tensor, z: Tensor) -> Tensor:
    """Mean over the batch of ``||z_fair - z||^2 / d`` (standardised units: 1 = predicting the mean)."""
    return (z_fair - z).pow(2).mean()


def linear_guard(z: Tensor, q: Tensor, *, n_classes: int | None = None, ridge: float = 1e-4,
                 weight: Tensor | None = None) -> Tensor:  # fmt: skip
    """Sum of squared canonical correlations between ``z`` and one-hot ``q`` (first class dropped).

    ``tr(Sqq^-1 Sqz (Szz + ridge * tr(Szz)/d * I)^-1 Szq)``: in ``[0, n_classes - 1]``, invariant to
    any invertible linear map of ``z`` (up to the ridge); 0 iff every class has the same mean.

    ``weight`` (``[r, d]``): ``z`` is the narrower ``h`` of ``h @ weight + bias`` (the decoder's
    last layer), and the term is that of the ``d``-wide output, computed from ``r x r`` matrices:
    with ``G = weight weight^T``, ``Szq^T (Szz + l I_d)^-1 Szq = Shq^T (G Shh + l I_r)^-1 G Shq``
    (push-through identity) and ``tr(Szz) = sum(G * Shh)``, so ``n x d`` outputs and a
    ``d x d`` solve are never formed.
    """
    k = int(n_classes) if n_classes is not None else int(q.max()) + 1
    onehot = F.one_hot(q, max(k, 2)).to(z.dtype)[:, 1:]
    n, r = z.shape
    zc, qc = z - z.mean(0), onehot - onehot.mean(0)
    szz = zc.T @ zc / n
    szq = zc.T @ qc / n
    sqq = qc.T @ qc / n
    eye_r = torch.eye(r, dtype=z.dtype, device=z.device)
    eye_k = torch.eye(qc.shape[1], dtype=z.dtype, device=z.device)
    if weight is None:
        szz = szz + (ridge * szz.diagonal().mean().clamp_min(1e-12)) * eye_r
        m = szq.T @ torch.linalg.solve(szz, szq)
    else:
        g = weight @ weight.T
        lam = ridge * ((g * szz).sum() / weight.shape[1]).clamp_min(1e-12)
        m = szq.T @ torch.linalg.solve(g @ szz + lam * eye_r, g @ szq)
    return torch.linalg.solve(sqq + 1e-6 * eye_k, m).diagonal().sum()


def _multi_rbf(z: Tensor, scales: tuple[float, ...]) -> Tensor:
    """Mean over bandwidths ``median x s`` of the RBF Gram matrix (bandwidths not differentiated)."""
    sq = (z.pow(2).sum(1)[:, None] + z.pow(2).sum(1)[None, :] - 2.0 * z @ z.T).clamp_min(0.0)
    m = min(z.shape[0], 256)  # the median of the first rows' pairs: cheap and stable enough
    off = sq.detach()[:m, :m][torch.triu(torch.ones(m, m, dtype=torch.bool, device=z.device), 1)]
    med = off.median().clamp_min(1e-12) if off.numel() else sq.new_ones(())
    k = sq.new_zeros(sq.shape)
    for s in scales:
        k = k + torch.exp(-sq / (2.0 * med * s * s))
    return k / len(scales)


def mmd_rbf(
    z: Tensor, q: Tensor, *, n_classes: int | None = None, scales: tuple[float, ...] = MMD_SCALES
) -> Tensor:
    """Mean over groups of the unbiased MMD^2 (multi-bandwidth RBF) of one group vs the rest.

    Groups with fewer than 2 rows, or whose rest has fewer than 2 rows, are skipped; ``0`` when
    none is left. ``n_classes`` only fixes the one-hot width (default ``max(q) + 1``).
    """
    k_cls = int(n_classes) if n_classes is not None else int(q.max()) + 1
    g = F.one_hot(q, max(k_cls, 2)).to(z.dtype)
    kern = _multi_rbf(z, scales)
    n_k = g.sum(0)
    n = n_k.sum()
    diag = kern.diagonal()
    within = g.T @ kern @ g  # block sums (K x K)
    s_kk = within.diagonal() - g.T @ diag  # within group k, diagonal removed
    row = g.T @ kern.sum(1)  # sum over rows of group k against all rows
    s_kr = row - within.diagonal()  # group k vs the rest
    s_all = kern.sum() - diag.sum()
    s_rr = s_all - s_kk - 2.0 * s_kr  # the rest vs itself, diagonal removed
    n_r = n - n_k
    ok = (n_k >= 2) & (n_r >= 2)
    if not bool(ok.any()):
        return z.new_zeros(())
    nk, nr = n_k[ok], n_r[ok]
    m = s_kk[ok] / (nk * (nk - 1)) + s_rr[ok] / (nr * (nr - 1)) - 2.0 * s_kr[ok] / (nk * nr)
    return m.mean()


def conditional_mmd(
    z: Tensor, q: Tensor, y: Tensor, *, n_classes: int | None = None,
    scales: tuple[float, ...] = MMD_SCALES,
) -> Tensor:  # fmt: skip
    """``mmd_rbf`` within each control class ``y``, averaged with weights ``n_y / n``."""
    k_cls = int(n_classes) if n_classes is not None else int(q.max()) + 1
    total = z.new_zeros(())
    for c in torch.unique(y):
        mask = y == c
        if int(mask.sum()) >= 4:
            total = total + mask.to(z.dtype).mean() * mmd_rbf(
                z[mask], q[mask], n_classes=k_cls, scales=scales
            )
    return total


def fairness_term(
    kind: str,
    z_fair: Tensor,
    q: Tensor,
    *,
    head: nn.Module | None = None,
    grl_lambda: float = 1.0,
    adversary_loss: str = "negative_ce",
    n_classes: int | None = None,
    y: Tensor | None = None,
    target: Tensor | None = None,
    weight: Tensor | None = None,
) -> Tensor:
    """The un-weighted fairness term that the translator *minimises* (see the module docstring).

    ``conditional_mmd`` needs the control codes ``y`` of the same rows; ``target`` (rows x K)
    replaces the uniform posterior of ``adversary_loss="confusion"`` (e.g. ``p(q | y)``);
    ``weight``: ``linear_guard`` of a linear layer's output given its input (:func:`linear_guard`).
    """
    if kind == "none":
        return z_fair.new_zeros(())
    if kind in HEADED:
        if head is None:
            raise ValueError(f"fairness={kind!r} needs a protected head or adversary, but got None")
        if kind == "gradient_reversal":
            return F.cross_entropy(head(grad_reverse(z_fair, grl_lambda)), q)
        if kind == "adversarial" and adversary_loss == "confusion":
            logp = F.log_softmax(head(z_fair), dim=1)
            if target is None:
                return -logp.mean()
            return -(target * logp).sum(1).mean()
        if kind == "adversarial" and adversary_loss != "negative_ce":
            raise ValueError(
                f"adversary_loss must be 'negative_ce' or 'confusion', but got {adversary_loss!r}"
            )
        return -F.cross_entropy(head(z_fair), q)
    if kind == "cka":
        return cka(z_fair, q, kernel_y="delta")
    if kind == "hsic":
        return hsic(z_fair, q, kernel_y="delta")
    if kind == "linear_cka":
        return linear_cka(z_fair, F.one_hot(q).to(z_fair.dtype))
    if kind == "linear_guard":
        return linear_guard(z_fair, q, n_classes=n_classes, weight=weight)
    if kind == "mmd":
        return mmd_rbf(z_fair, q, n_classes=n_classes)
    if kind == "conditional_mmd":
        if y is None:
            raise ValueError("fairness='conditional_mmd' needs the control labels y, but got None")
        return conditional_mmd(z_fair, q, y, n_classes=n_classes)
    if kind == "conditional_sw":
        if y is None:
            raise ValueError("fairness='conditional_sw' needs the control labels y, but got None")
        return conditional_sw(z_fair, q, y)
    raise ValueError(f"fairness must be one of {list(FAIRNESS_CHOICES)}, but got {kind!r}")
