"""The one grammar for constraints: ``<metric> <op> <number>``, op in ``<= < >= > ==`` (no eval).

Used by the spec (``post.select.subject_to``, validated against the family's metrics), by the
sampler (``constraints_func``), by the Pareto pick and by the retrain stage's per-seed check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Constraint", "Op", "parse_constraint"]

Op = Literal["<=", "<", ">=", ">", "=="]
_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "<=": np.less_equal, "<": np.less, ">=": np.greater_equal, ">": np.greater, "==": np.equal,
}  # fmt: skip
_PATTERN = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|<|>)\s*"
    r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Constraint:
    """``<metric> <op> <number>``, e.g. ``adversary_f1 <= 0.1``."""

    metric: str
    op: Op
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def holds(self, values: np.ndarray) -> np.ndarray:
        """Element-wise truth on ``values``; NaN never satisfies a constraint."""
        v = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return _OPS[self.op](v, self.value) & np.isfinite(v)

    def violation(self, value: float) -> float:
        """How far ``value`` is from satisfying the constraint (<= 0 when it holds), for
        Optuna's ``constraints_func``."""
        if self.op in ("<=", "<"):
            return float(value - self.value)
        if self.op in (">=", ">"):
            return float(self.value - value)
        return abs(float(value - self.value))


def parse_constraint(text: str) -> Constraint:
    """Parse ``<metric> <op> <number>``; ``ValueError`` naming the text and the grammar."""
    if not isinstance(text, str):
        raise ValueError(f"post.select.subject_to entries must be strings, but got {text!r}")
    m = _PATTERN.match(text)
    if m is None:
        raise ValueError(
            "post.select.subject_to entries must read '<metric> <op> <number>' with op one of "
            f"<=, <, >=, >, == (e.g. 'adversary_f1 <= 0.1'), but got {text!r}"
        )
    return Constraint(metric=m.group(1), op=m.group(2), value=float(m.group(3)))  # type: ignore[arg-type]
