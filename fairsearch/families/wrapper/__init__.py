"""The fair model wrapper family: :class:`FairModelWrapper` and its search/retrain contract."""

from __future__ import annotations

from fairsearch.families.wrapper.family import WrapperFamily, build_module_for
from fairsearch.families.wrapper.model import EpochRecord, FairModelWrapper

__all__ = ["EpochRecord", "FairModelWrapper", "WrapperFamily", "build_module_for"]
