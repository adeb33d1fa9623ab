"""fairsearch: search, audit and report accuracy/fairness trade-offs of PyTorch models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fairsearch.analysis.audit.leakage import AuditResult, audit
    from fairsearch.families.wrapper.model import FairModelWrapper
    from fairsearch.measures.dependence import cka, cka_score, hsic, hsic_score, linear_cka, mmd
    from fairsearch.nets import DivergenceError

__version__ = "0.1.0"

__all__ = [
    "AuditResult",
    "DivergenceError",
    "FairModelWrapper",
    "audit",
    "cka",
    "cka_score",
    "hsic",
    "hsic_score",
    "linear_cka",
    "mmd",
]

#: Imported on first use: the audit needs scikit-learn, which a training process never loads,
#: and the rest torch, which ``fairsearch`` commands import while Ray starts, not before it.
_LAZY = {"audit": "fairsearch.analysis.audit.leakage", "AuditResult": "fairsearch.analysis.audit.leakage",
         "FairModelWrapper": "fairsearch.families.wrapper.model",
         "DivergenceError": "fairsearch.nets",
         **dict.fromkeys(("cka", "cka_score", "hsic", "hsic_score", "linear_cka", "mmd"),
                         "fairsearch.measures.dependence")}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fairsearch' has no attribute {name!r}")
