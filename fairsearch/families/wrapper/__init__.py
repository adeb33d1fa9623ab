"""The fair model wrapper family: :class:`FairModelWrapper` and its search/retrain contract."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairsearch._lazy import lazy_exports

if TYPE_CHECKING:
    from fairsearch.families.wrapper.family import WrapperFamily, build_module_for
    from fairsearch.families.wrapper.model import EpochRecord, FairModelWrapper

__all__ = ["EpochRecord", "FairModelWrapper", "WrapperFamily", "build_module_for"]

#: Imported on first use: the spec reads the family's options (``family``) without torch.
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("WrapperFamily", "build_module_for"), "fairsearch.families.wrapper.family"),
    **dict.fromkeys(("EpochRecord", "FairModelWrapper"), "fairsearch.families.wrapper.model"),
})  # fmt: skip
