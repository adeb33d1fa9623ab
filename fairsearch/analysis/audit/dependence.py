"""What the audit measures beside the ladder: the neighbour mix of a categorical ``q``, and for
a continuous ``q`` kernel dependence (CKA, HSIC against a permutation baseline) and regression
probes (R²)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import r2_score
from sklearn.neighbors import NearestNeighbors

from fairsearch.analysis.audit.metrics import bootstrap_ci, codes_of
from fairsearch.analysis.audit.split_probes import fit_probe

__all__ = ["DEPENDENCE_MAX_ROWS", "continuous_rows", "knn_mix"]

#: Rows used for the O(n^2) dependence scores (a seeded subsample above this).
DEPENDENCE_MAX_ROWS = 2000


def knn_mix(X: np.ndarray, q: np.ndarray, *, k: int = 10, n_boot: int = 200, seed: int = 0,
            model: str = "model") -> dict[str, Any]:
    """Mean fraction of each point's ``k`` nearest neighbours sharing its ``q``, vs the base rate
    ``sum_c n_c (n_c - 1) / (n (n - 1))`` of random neighbours."""
    codes, _ = codes_of(q)
    n = len(codes)
    k = min(k, n - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    idx = nn.kneighbors(X, return_distance=False)[:, 1:]
    frac = (codes[idx] == codes[:, None]).mean(1)
    counts = np.bincount(codes)
    base = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    lo, hi = bootstrap_ci(lambda i: float(frac[i].mean()), n, n_boot=n_boot, seed=seed)
    return dict(model=model, target="q", probe=f"knn_mix@{k}", metric="same_q_fraction",
                value=float(frac.mean()), ci_low=lo, ci_high=hi, chance=base)


def continuous_rows(model: str, X: np.ndarray, q: np.ndarray, tr: np.ndarray, te: np.ndarray,
                     n_boot: int, seed: int) -> list[dict[str, Any]]:
    from fairsearch.measures.dependence import cka_score, hsic_score

    rng = np.random.default_rng(seed)
    sub = rng.permutation(len(X))[:DEPENDENCE_MAX_ROWS]
    xs, qs = X[sub], q[sub]
    rows: list[dict[str, Any]] = []
    for name, fn in (("cka", cka_score), ("hsic", hsic_score)):
        null = np.mean([fn(xs, qs[rng.permutation(len(qs))]) for _ in range(3)])
        rows.append(dict(model=model, target="q", probe="kernel", metric=name, value=fn(xs, qs),
                         ci_low=np.nan, ci_high=np.nan, chance=float(null)))
    for name in ("ridge", "mlp"):
        pred = fit_probe(name, X[tr], q[tr], task="regression", seed=seed).predict(X[te])
        def r2(i: np.ndarray, pred: np.ndarray = pred) -> float:
            return float(r2_score(q[te][i], pred[i]))
        lo, hi = bootstrap_ci(r2, len(te), n_boot=n_boot, seed=seed)
        rows.append(dict(model=model, target="q", probe=name, metric="r2",
                         value=r2(np.arange(len(te))), ci_low=lo, ci_high=hi, chance=0.0))
    return rows
