"""An estimate with its interval: what every probe score and floor of the audit reports.

Importable without scikit-learn or torch (:func:`fairsearch.audit`'s result carries one).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Interval"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval (``ci_low``, ``ci_high``), named as the audit table's
    columns."""

    value: float
    ci_low: float
    ci_high: float
