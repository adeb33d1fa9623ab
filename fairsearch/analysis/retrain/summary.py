"""The retrain summary: per configuration, the seed mean and std of each objective, the robust
front on the seed means, and why a configuration is unstable over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairsearch.analysis.pareto.front import is_pareto_front, loss_matrix
from fairsearch.spec.constraints import parse_constraint

__all__ = ["PER_SEED_CLAUSE", "UNSTABLE_SPREAD", "search_spreads", "summarise_seeds",
           "without_per_seed"]

#: An objective whose std over seeds exceeds this share of its spread over configs is unstable.
UNSTABLE_SPREAD = 0.25

#: How an instability reason says that a constraint of the rule held for some seeds only.
PER_SEED_CLAUSE = "holds for some seeds only"


def search_spreads(trials: pd.DataFrame, objectives: list[tuple[str, str]]) -> dict[str, float]:
    """Per objective, the range it took over the search's completed trials."""
    spreads = {}
    for metric, _ in objectives:
        values = trials.loc[trials["status"] == "completed", f"objective.{metric}"].astype(float)
        spreads[metric] = float(values.max() - values.min()) if len(values) else float("nan")
    return spreads


def summarise_seeds(runs: pd.DataFrame, objectives: list[tuple[str, str]],
                    subject_to: tuple[str, ...] = (),
                    spreads: dict[str, float] | None = None) -> pd.DataFrame:  # fmt: skip
    """Mean/std per configuration, robust front on the seed means, instability flags.

    ``spreads``: per objective, the range it took over the whole search (default: over the
    retrained configurations); a seed std above 25% of it flags the configuration unstable.
    """
    cols = [f"metric.{m}" for m, _ in objectives]
    runs = runs.assign(**{c: np.nan for c in cols if c not in runs.columns})  # all seeds failed
    ok = runs[runs["status"] == "completed"]
    shown = cols + [f"test.{m}" for m, _ in objectives if f"test.{m}" in ok.columns]
    g = ok.groupby("config_id", sort=False)[shown]
    summary = g.mean().add_suffix(".mean").join(g.std(ddof=0).add_suffix(".std"))
    summary["seeds"] = g.size()
    summary = summary.reindex(pd.Index(runs["config_id"].unique(), name="config_id"))
    summary["seeds"] = summary["seeds"].fillna(0).astype("int64")
    summary = summary.reset_index()
    means = summary[[f"{c}.mean" for c in cols]].to_numpy(dtype=float)
    finite = np.isfinite(means).all(axis=1)
    robust = np.zeros(len(summary), dtype=bool)
    if finite.any():
        robust[finite] = is_pareto_front(loss_matrix(means[finite], [d for _, d in objectives]))
    summary["robust_front"] = robust
    reasons: list[list[str]] = [[] for _ in range(len(summary))]
    tried = runs.groupby("config_id")["status"].agg(list)
    for i, cid in enumerate(summary["config_id"]):
        bad = [st for st in tried[cid] if st != "completed"]
        if 0 < len(bad) < len(tried[cid]):  # some seeds train, others do not
            reasons[i].append(f"{len(bad)} of {len(tried[cid])} seeds {'/'.join(sorted(set(bad)))}")
    for (metric, _), c in zip(objectives, cols, strict=True):
        spread = (spreads or {}).get(metric)
        if spread is None:
            values = summary[f"{c}.mean"].dropna()
            spread = float(values.max() - values.min()) if len(values) else float("nan")
        for i, std in enumerate(summary[f"{c}.std"]):
            if spread > 0 and std > UNSTABLE_SPREAD * spread:
                reasons[i].append(f"{metric} std {std:.3g} > 25% of its range {spread:.3g}")
    for text in subject_to:
        con = parse_constraint(text)
        col = f"metric.{con.metric}"
        if col not in ok.columns:
            continue
        share = ok.assign(_ok=con.plain().holds(ok[col])).groupby("config_id")["_ok"].mean()
        for i, cid in enumerate(summary["config_id"]):
            if 0 < share.get(cid, 0) < 1:
                reasons[i].append(f"'{text}' {PER_SEED_CLAUSE}")
    summary["unstable"] = [bool(r) for r in reasons]
    summary["unstable_reason"] = ["; ".join(r) for r in reasons]
    return summary


def without_per_seed(reason: str | None) -> str | None:
    """An ``unstable_reason`` without its per-seed constraint clauses, for a reader that judges
    or states the rule seed by seed itself (None when nothing else is left)."""
    rest = [x for x in str(reason or "").split("; ") if x and PER_SEED_CLAUSE not in x]
    return "; ".join(rest) or None
