"""Model families: one :class:`ModelFamily` object per kind of model, looked up by name.

``wrapper`` (any ``torch.nn.Module`` + a dependence penalty; a user's own module through
``model.factory``) and ``translator`` (fair embeddings from frozen ones) are built in.
"""

from __future__ import annotations

from fairsearch.families._base import (
    FAMILIES,
    Member,
    ModelFamily,
    Outputs,
    TrialSettings,
    get_family,
    register,
    train_and_evaluate,
    train_one,
    train_population,
    train_seeds,
)
from fairsearch.families._metrics import Metric
from fairsearch.families.translator.family import TranslatorFamily
from fairsearch.families.wrapper.family import WrapperFamily

__all__ = [
    "FAMILIES", "Member", "Metric", "ModelFamily", "Outputs", "TrialSettings", "get_family",
    "train_and_evaluate", "train_one", "train_population", "train_seeds",
]  # fmt: skip

register(WrapperFamily())
register(TranslatorFamily())
