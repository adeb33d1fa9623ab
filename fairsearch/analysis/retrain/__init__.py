"""The retrain stage: the candidates and the front over fresh seeds, saved and summarised.

``from fairsearch.analysis.retrain import load_model`` is the documented way to load retrained
weights (README, docs/schemas.md and the verdict's snippet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairsearch._lazy import lazy_exports

if TYPE_CHECKING:
    from fairsearch.analysis.retrain.stage import run_retrain
    from fairsearch.analysis.retrain.weights import load_model

__all__ = ["load_model", "run_retrain"]

#: Imported on first use: the stage imports torch and the families.
__getattr__ = lazy_exports(__name__, {
    "load_model": "fairsearch.analysis.retrain.weights",
    "run_retrain": "fairsearch.analysis.retrain.stage",
})  # fmt: skip
