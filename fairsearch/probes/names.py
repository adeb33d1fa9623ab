"""The audit ladder's probe family names, importable without scikit-learn (the spec checks
``post.probes`` against them before anything is fitted)."""

from __future__ import annotations

__all__ = ["PROBE_FAMILIES"]

#: Probe families of :mod:`fairsearch.probes.ladder`, weakest first. Ties in the nested
#: selection go to the earlier family.
PROBE_FAMILIES: tuple[str, ...] = ("majority", "logistic", "mlp", "gbt", "knn", "svm")
