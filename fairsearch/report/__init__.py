"""The run report: verdict first, then the tables and plots of the earlier stages."""

from fairsearch.analysis.decide.compute import compute_verdict
from fairsearch.analysis.decide.text import verdict_text

__all__ = ["compute_verdict", "verdict_text"]
