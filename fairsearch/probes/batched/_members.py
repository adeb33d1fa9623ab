"""Members and their batches: every independent fit of a probe kind's cross-fit as one member
of a batched model, fitted in two phases as ``GridSearchCV`` fits them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from fairsearch.probes.batched._knn import knn_proba
from fairsearch.probes.batched._logistic import fit_logistic
from fairsearch.probes.batched._mlp import fit_mlp
from fairsearch.probes.batched._tensors import class_proba, default_device, torch_threads
from fairsearch.probes.registry import KINDS, PROBE_KINDS

__all__ = ["BATCHED_KINDS", "BatchMember", "BatchedFit", "batched_cross_fits", "fit_members"]

#: Ladder kinds with a batched form; the others (majority, gbt, svm) stay scikit-learn.
BATCHED_KINDS: tuple[str, ...] = tuple(k for k in PROBE_KINDS if KINDS[k].batched)


@dataclass(frozen=True)
class BatchMember:
    """One fit in a batch: rows it trains on (index into the base masks), its grid point and its
    ``random_state`` (the mlp's, as scikit-learn's ``MLPClassifier(random_state=seed)``)."""

    base: int
    params: dict[str, Any]
    seed: int


def _grid_values(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The ladder's grid keys (sklearn pipeline names) as plain settings."""
    plain = {key.rsplit("__", 1)[-1]: v for key, v in params.items()}
    if kind == "logistic":
        return {"C": float(plain.get("C", 0.05))}
    if kind == "mlp":
        return {"hidden": tuple(plain.get("hidden_layer_sizes", (64,))),
                "alpha": float(plain.get("alpha", 1e-4))}
    if kind == "knn":
        return {"n_neighbors": int(plain.get("n_neighbors", 15))}
    raise ValueError(f"kind must be one of {list(BATCHED_KINDS)}, got {kind!r}")


def _knn_members(Zt: torch.Tensor, ct: torch.Tensor, k: int, base: torch.Tensor,
                 members: Sequence[BatchMember], settings: list[dict[str, Any]]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Vote fractions of every kNN member and its prior-corrected predictions."""
    proba = torch.empty(len(members), Zt.shape[0], k, dtype=torch.float64, device=Zt.device)
    bases = sorted({mem.base for mem in members})
    ks = sorted({s["n_neighbors"] for s in settings})
    votes = knn_proba(Zt, ct, k, base[bases], ks)
    for i, (mem, s) in enumerate(zip(members, settings, strict=True)):
        proba[i] = votes[ks.index(s["n_neighbors"])][bases.index(mem.base)]
    rows = base[[mem.base for mem in members]].to(torch.float64)
    prior = (rows @ torch.nn.functional.one_hot(ct, k).to(torch.float64))
    prior = prior / prior.sum(1, keepdim=True)
    return proba, (proba / prior.clamp_min(1e-300)[:, None, :]).argmax(-1)


def _trained_members(kind: str, Zt: torch.Tensor, ct: torch.Tensor, k: int,
                     base: torch.Tensor, members: Sequence[BatchMember],
                     settings: list[dict[str, Any]]) -> torch.Tensor:
    """Class probabilities of every logistic or mlp member (mlps of one shape trained
    together)."""
    proba = torch.empty(len(members), Zt.shape[0], k, dtype=torch.float64, device=Zt.device)
    groups: dict[Any, list[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault(s.get("hidden"), []).append(i)
    for hidden, idx in groups.items():
        rows = base[[members[i].base for i in idx]]
        if kind == "logistic":
            C = torch.tensor([settings[i]["C"] for i in idx], device=Zt.device)
            logits = fit_logistic(Zt, ct, k, rows, C)
        else:
            alpha = torch.tensor([settings[i]["alpha"] for i in idx], device=Zt.device)
            logits = fit_mlp(Zt, ct, k, rows, hidden, alpha, [members[i].seed for i in idx])
        proba[idx] = class_proba(logits)
    return proba


def fit_members(kind: str, Z: np.ndarray, codes: np.ndarray, k: int, train: np.ndarray,
                members: Sequence[BatchMember], *, device: torch.device | str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Fit every member of ``kind`` on its rows ``train[member.base]``; return the class
    probabilities ``(M, n, K)`` and predictions ``(M, n)`` of every row (knn: prior-corrected)."""
    dev = torch.device(device) if device is not None else default_device()
    Zt = torch.as_tensor(np.asarray(Z, dtype=np.float64), device=dev)
    ct = torch.as_tensor(np.asarray(codes, dtype=np.int64), device=dev)
    base = torch.as_tensor(np.asarray(train, dtype=bool), device=dev)
    settings = [_grid_values(kind, mem.params) for mem in members]
    if kind == "knn":
        proba, pred = _knn_members(Zt, ct, k, base, members, settings)
        return proba.cpu().numpy(), pred.cpu().numpy()
    proba = _trained_members(kind, Zt, ct, k, base, members, settings)
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


@dataclass(frozen=True)
class _Plan:
    """The training rows of every fit: the inner folds' (``inner``: fold seed, outer fold, inner
    fold, validation rows), then one refit per fold seed x outer fold (``outer``)."""

    base: np.ndarray  # (fits, n) training masks, inner fits first
    inner: list[tuple[int, int, int, np.ndarray]]
    outer: list[tuple[int, int]]


def _plan(codes: np.ndarray, folds: Sequence[np.ndarray], seeds: Sequence[int],
          tune_folds: int) -> _Plan:
    n = codes.size
    bases: list[np.ndarray] = []
    inner: list[tuple[int, int, int, np.ndarray]] = []
    outer: list[tuple[int, int]] = []
    for r, (fold, seed) in enumerate(zip(folds, seeds, strict=True)):
        for j in range(int(fold.max()) + 1):
            train = np.flatnonzero(fold != j)
            splitter = StratifiedKFold(tune_folds, shuffle=True, random_state=seed)
            for i, (tr, va) in enumerate(splitter.split(np.zeros(train.size), codes[train])):
                mask = np.zeros(n, dtype=bool)
                mask[train[tr]] = True
                inner.append((r, j, i, train[va]))
                bases.append(mask)
            outer.append((r, j))
    bases += [folds[r] != j for r, j in outer]
    return _Plan(np.stack(bases), inner, outer)


def _tune(kind: str, Z: np.ndarray, codes: np.ndarray, k: int, plan: _Plan,
          grid: list[dict[str, Any]], seeds: Sequence[int], device: Any
          ) -> tuple[dict[tuple[int, int], np.ndarray], dict[tuple[int, int], int]]:
    """Phase one: every grid point on every inner fold. Per fold seed x outer fold, the grid
    points' mean inner-CV balanced accuracy and the first best."""
    members = [BatchMember(b, g, seeds[plan.inner[b][0]])
               for b in range(len(plan.inner)) for g in grid]
    _, pred = fit_members(kind, Z, codes, k, plan.base, members, device=device)
    scores = np.array([_bacc_rows(codes, pred[m], plan.inner[mem.base][3], k)
                       for m, mem in enumerate(members)]).reshape(len(plan.inner), len(grid))
    per_fold: dict[tuple[int, int], list[np.ndarray]] = {}
    for b, (r, j, _, _) in enumerate(plan.inner):
        per_fold.setdefault((r, j), []).append(scores[b])
    mean = {key: np.mean(v, axis=0) for key, v in per_fold.items()}
    return mean, {key: int(np.argmax(v)) for key, v in mean.items()}


def batched_cross_fits(Z: np.ndarray, codes: np.ndarray, k: int, kind: str,
                       folds: Sequence[np.ndarray], seeds: Sequence[int],
                       grid: Sequence[dict[str, Any]], *, tune_folds: int,
                       device: torch.device | str | None = None, n_threads: int | None = None
                       ) -> list[BatchedFit]:
    """Cross-fit ``kind`` for every fold assignment ``folds[r]`` (inner CV seeded by
    ``seeds[r]``) with all independent fits batched; one :class:`BatchedFit` per ``r``."""
    if kind not in BATCHED_KINDS:
        raise ValueError(f"kind must be one of {list(BATCHED_KINDS)}, got {kind!r}")
    if len(folds) != len(seeds):
        raise ValueError(f"folds and seeds must have the same length, got {len(folds)} and "
                         f"{len(seeds)}")
    grid = list(grid) or [{}]
    plan = _plan(codes, folds, seeds, tune_folds)
    with torch_threads(n_threads):
        mean, chosen = _tune(kind, Z, codes, k, plan, grid, seeds, device)
        refits = [BatchMember(len(plan.inner) + o, grid[chosen[(r, j)]], seeds[r])
                  for o, (r, j) in enumerate(plan.outer)]
        proba, pred = fit_members(kind, Z, codes, k, plan.base, refits, device=device)
    out = []
    for r, fold in enumerate(folds):
        p_r = np.empty(codes.size, dtype=np.int64)
        pr_r = np.zeros((codes.size, k))
        inner = np.empty(int(fold.max()) + 1)
        picks = []
        for o, (rr, j) in enumerate(plan.outer):
            if rr == r:
                test = fold == j
                p_r[test], pr_r[test] = pred[o][test], proba[o][test]
                inner[j] = float(mean[(r, j)][chosen[(r, j)]])
                picks.append(chosen[(r, j)])
        out.append(BatchedFit(p_r, pr_r, inner, tuple(picks)))
    return out
