"""Measures: kernel dependence (CKA, HSIC, MMD), fresh probes and group-fairness gaps."""

from __future__ import annotations

from fairsearch.measures.dependence import cka, cka_score, hsic, hsic_score, linear_cka, mmd
from fairsearch.measures.fairness import demographic_parity_gap, equalized_odds_gap

__all__ = [
    "cka", "cka_score", "demographic_parity_gap", "equalized_odds_gap", "hsic", "hsic_score",
    "linear_cka", "mmd",
]  # fmt: skip
