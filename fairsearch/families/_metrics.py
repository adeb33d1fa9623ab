"""What a model family declares about each number it reports, so that no stage keeps a table of
the family's metric names: the report's labels, the side that is better, and the role.

Roles: ``utility`` (the task the model keeps: higher F1, lower MSE), ``leakage`` (what it reveals
about the protected attribute ``q``), ``loss`` (a training-loss term of the per-epoch history)
and ``check`` (a diagnostic, such as a flag for a constant prediction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ROLES", "Metric", "Role"]

Role = Literal["utility", "leakage", "loss", "check"]
ROLES: tuple[Role, ...] = ("utility", "leakage", "loss", "check")


@dataclass(frozen=True)
class Metric:
    """One metric of a family: ``label`` as a person reads it, ``direction`` (which side is
    better), ``role``; ``balanced_accuracy`` marks a balanced accuracy of ``q``, whose chance
    level and floor the report draws beside it."""

    label: str
    direction: Literal["maximize", "minimize"]
    role: Role
    balanced_accuracy: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"`direction` must be 'maximize' or 'minimize', but got "
                             f"{self.direction!r}")
        if self.role not in ROLES:
            raise ValueError(f"`role` must be one of {', '.join(ROLES)}, but got {self.role!r}")
