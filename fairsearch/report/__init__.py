"""The run report: verdict first, then the tables and plots of the earlier stages."""

from fairsearch.analysis.decide.verdict import compute_verdict, verdict_text

__all__ = ["compute_verdict", "verdict_text"]
