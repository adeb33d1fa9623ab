"""fairsearch: search, audit and report accuracy/fairness trade-offs of PyTorch models."""

from __future__ import annotations

from fairsearch.families.wrapper.model import FairModelWrapper
from fairsearch.measures.dependence import cka, cka_score, hsic, hsic_score, linear_cka, mmd
from fairsearch.nets import DivergenceError

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
