"""Checks of one spec field: each raises a ``ValueError`` that names the key path, shows the value
and says what is allowed; :class:`Errors` collects them so that a spec reports every problem at
once, as one :class:`SpecError`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fairsearch.spec.space import close_match

__all__ = ["Errors", "SpecError", "as_float", "as_int", "as_mapping", "one_of", "short", "str_list"]

T = TypeVar("T")


class SpecError(ValueError):
    """Every problem of one spec, each naming the key, the value and what is allowed."""

    def __init__(self, errors: list[str], source: str | None = None) -> None:
        self.errors = list(errors)
        where = f"spec {source!r}" if source else "the spec"
        if len(errors) == 1:
            text = errors[0]
        else:
            text = f"{where} has {len(errors)} problems:\n" + "\n".join(f"  - {e}" for e in errors)
        super().__init__(text)


class Errors:
    """Collects ``ValueError`` messages so that every problem is reported at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def check(self, fn: Callable[..., T], *args: Any, default: T) -> T:
        try:
            return fn(*args)
        except SpecError as exc:
            self.messages.extend(exc.errors)
        except ValueError as exc:
            self.messages.append(str(exc))
        return default

    def unknown_keys(self, where: str, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in given:
            if key not in allowed:
                path = f"{where}.{key}" if where else str(key)
                self.add(f"unknown key `{path}`{close_match(str(key), allowed)}; allowed keys are "
                         f"{', '.join(allowed)}")  # fmt: skip


def as_mapping(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"`{path}` must be a mapping, but got {short(value)}")
    return value


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_int(path: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{path}` must be an integer >= {minimum}, but got {short(value)}")
    return value


def as_float(path: str, value: Any, minimum: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not value >= minimum:
        raise ValueError(f"`{path}` must be a finite number >= {minimum}, but got {short(value)}")
    return float(value)


def one_of(path: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    if not isinstance(value, str | int | float | bool | None) or value not in allowed:
        raise ValueError(
            f"`{path}` must be one of {', '.join(map(str, allowed))}, but got {short(value)}"
            f"{close_match(str(value), tuple(map(str, allowed)))}"
        )
    return value


def str_list(path: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"`{path}` must be a list of strings, but got {short(value)}")
    return tuple(value)

