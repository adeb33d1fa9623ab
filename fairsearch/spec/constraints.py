"""The one grammar for constraints: ``<metric> <op> <number> [@ <confidence>]``, op in
``<= < >= > ==`` (no eval).

Used by the spec (``post.select.subject_to``, validated against the family's metrics), by the
sampler (``constraints_func``), by the Pareto pick, by the retrain stage's per-seed check and by
the verdict. A constraint is judged on a configuration's seed mean. With ``@ c`` (``0.5 < c <
1``) it must hold with confidence ``c`` given the seed standard error ``se``: for ``<=`` the
one-sided bound ``mean + t_c * se`` (Student's t with ``S - 1`` degrees of freedom over ``S``
seeds) must meet it, for ``>=`` ``mean - t_c * se``. Without a standard error (one seed) a
constraint with a confidence does not hold: one seed cannot show it.
"""

from __future__ import annotations

import math
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
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATTERN = re.compile(
    rf"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|<|>)\s*({_NUMBER})\s*(?:@\s*({_NUMBER}))?\s*$"
)


def _t_quantile(confidence: float, dof: np.ndarray) -> np.ndarray:
    from scipy.stats import t  # scipy comes with scikit-learn

    return np.asarray(t.ppf(confidence, np.maximum(dof, 1)), dtype=np.float64)


@dataclass(frozen=True)
class Constraint:
    """``<metric> <op> <number>``, e.g. ``adversary_f1 <= 0.1``; ``confidence``: ``@ 0.9``."""

    metric: str
    op: Op
    value: float
    confidence: float | None = None

    def __str__(self) -> str:
        tail = f" @ {self.confidence:g}" if self.confidence is not None else ""
        return f"{self.metric} {self.op} {self.value:g}{tail}"

    def plain(self) -> Constraint:
        """The constraint without its confidence: how one seed's own value is judged."""
        return Constraint(self.metric, self.op, self.value)

    def _bound(self, values: np.ndarray, se: np.ndarray | None, n: np.ndarray | None) -> np.ndarray:
        """The value judged: the mean, or its one-sided bound at ``confidence``."""
        v = np.asarray(values, dtype=np.float64)
        if self.confidence is None or self.op == "==":
            return v
        if se is None:
            return np.full_like(v, np.nan)
        s = np.asarray(se, dtype=np.float64)
        dof = (np.asarray(n, dtype=np.float64) - 1) if n is not None else np.full_like(v, 1e9)
        k = np.where(np.isfinite(dof) & (dof >= 1), _t_quantile(self.confidence, dof), np.nan)
        sign = 1.0 if self.op in ("<=", "<") else -1.0
        return v + sign * k * s

    def holds(self, values: np.ndarray, se: np.ndarray | None = None,
              n: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """Element-wise truth on seed means ``values`` (standard errors ``se`` over ``n`` seeds
        for a constraint with a confidence); NaN never satisfies a constraint."""
        b = self._bound(values, se, n)
        with np.errstate(invalid="ignore"):
            return _OPS[self.op](b, self.value) & np.isfinite(b)

    def violation(self, value: float, se: float | None = None, n: int | None = None) -> float:
        """How far ``value`` (with its standard error) is from satisfying the constraint (<= 0
        when it holds), for Optuna's ``constraints_func``."""
        arr_se = None if se is None else np.array([se], dtype=np.float64)
        arr_n = None if n is None else np.array([n], dtype=np.float64)
        b = float(self._bound(np.array([value], dtype=np.float64), arr_se, arr_n)[0])
        if self.op in ("<=", "<"):
            return float(b - self.value)
        if self.op in (">=", ">"):
            return float(self.value - b)
        return abs(float(b - self.value))


def parse_constraint(text: str) -> Constraint:
    """Parse ``<metric> <op> <number> [@ <confidence>]``; ``ValueError`` naming the text and
    the grammar."""
    if not isinstance(text, str):
        raise ValueError(f"post.select.subject_to entries must be strings, but got {text!r}")
    m = _PATTERN.match(text)
    if m is None:
        raise ValueError(
            "post.select.subject_to entries must read '<metric> <op> <number>' with op one of "
            "<=, <, >=, >, ==, optionally followed by '@ <confidence>' (e.g. "
            f"'adversary_f1 <= 0.1' or 'adversary_bacc <= 0.55 @ 0.9'), but got {text!r}"
        )
    confidence = float(m.group(4)) if m.group(4) is not None else None
    if confidence is not None and not (0.5 < confidence < 1.0 and math.isfinite(confidence)):
        raise ValueError(
            f"a constraint's confidence must lie strictly between 0.5 and 1, but got "
            f"{m.group(4)} in {text!r}"
        )
    return Constraint(metric=m.group(1), op=m.group(2), value=float(m.group(3)),  # type: ignore[arg-type]
                      confidence=confidence)
