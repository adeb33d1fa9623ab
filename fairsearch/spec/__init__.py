"""The run spec: YAML read once at the edge, validated whole, frozen dataclasses inside."""

from __future__ import annotations

from fairsearch.spec.schema import load_spec, parse_spec
from fairsearch.spec.sections import SPACES_DIR
from fairsearch.spec.space import Param, Space, parse_space, sample
from fairsearch.spec.validated import Objective, PostSpec, SearchSpec, Spec, TrialSpec

__all__ = [
    "SPACES_DIR", "Objective", "Param", "PostSpec", "SearchSpec", "Space", "Spec", "TrialSpec",
    "load_spec", "parse_space", "parse_spec", "sample",
]  # fmt: skip
