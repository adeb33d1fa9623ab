"""Measures: kernel dependence (CKA, HSIC, MMD) and group-fairness gaps, the training penalties and their metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairsearch._lazy import lazy_exports

if TYPE_CHECKING:
    from fairsearch.measures.dependence import cka, cka_score, hsic, hsic_score, linear_cka, mmd
    from fairsearch.measures.fairness import demographic_parity_gap, equalized_odds_gap

__all__ = [
    "cka", "cka_score", "demographic_parity_gap", "equalized_odds_gap", "hsic", "hsic_score",
    "linear_cka", "mmd",
]  # fmt: skip

#: Imported on first use: the gaps need no torch.
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("cka", "cka_score", "hsic", "hsic_score", "linear_cka", "mmd"),
                    "fairsearch.measures.dependence"),
    **dict.fromkeys(("demographic_parity_gap", "equalized_odds_gap"),
                    "fairsearch.measures.fairness"),
})  # fmt: skip
