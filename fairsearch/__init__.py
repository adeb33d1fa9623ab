"""fairsearch: search, audit and report accuracy/fairness trade-offs of PyTorch models."""

from __future__ import annotations

from fairsearch.dependence import cka, cka_score, hsic, hsic_score, linear_cka, mmd
from fairsearch.wrapper import DivergenceError, FairModelWrapper

__version__ = "0.1.0"

__all__ = [
    "DivergenceError",
    "FairModelWrapper",
    "cka",
    "cka_score",
    "hsic",
    "hsic_score",
    "linear_cka",
    "mmd",
]
