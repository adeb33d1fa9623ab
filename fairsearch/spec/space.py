"""Search spaces: typed parameters with ranges, choices and conditions.

A space is read from YAML (a file under ``search_spaces/`` or an inline mapping in the run spec) at
the edge and becomes a tuple of frozen :class:`Param` in dependency order. Sampling is
define-by-run: :func:`sample` asks an Optuna trial for each parameter whose condition holds, so a
conditional parameter (``when: {fairness: adversarial}``) is simply absent from the flat config
when its condition is off.

YAML form (one entry per parameter)::

    mu:        {type: float, low: 0, high: 10, step: 0.5}
    lr:        {type: float, low: 5.0e-4, high: 1.0e-2, log: true}
    fairness:  {type: categorical, choices: [adversarial, gradient_reversal]}
    adv_every: {type: int, low: 1, high: 10, when: {fairness: adversarial}}
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import optuna

ParamType = Literal["float", "int", "categorical"]
Choice = str | int | float | bool | None

__all__ = ["Param", "Space", "close_match", "distribution", "parse_space", "sample"]

_PARAM_KEYS = {
    "float": ("type", "low", "high", "log", "step", "when"),
    "int": ("type", "low", "high", "log", "step", "when"),
    "categorical": ("type", "choices", "when"),
}


def close_match(key: str, allowed: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` when ``key`` is close to one of ``allowed``, else ``''``."""
    hit = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" (did you mean {hit[0]!r}?)" if hit else ""


def check_keys(where: str, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Reject an unknown key under ``where``, suggesting the closest allowed one."""
    for key in given:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            raise ValueError(
                f"unknown key `{path}`{close_match(key, allowed)}; allowed keys are "
                f"{', '.join(allowed)}"
            )


@dataclass(frozen=True)
class Param:
    """One searchable parameter.

    ``when`` maps another parameter's name to the values for which this one exists (all entries
    must hold).
    """

    name: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Choice, ...] = ()
    when: tuple[tuple[str, tuple[Choice, ...]], ...] = ()

    def active(self, config: Mapping[str, Any]) -> bool:
        return all(name in config and config[name] in values for name, values in self.when)


Space = tuple[Param, ...]


def _number(path: str, value: Any, *, integer: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (integer and float(value) != int(value)):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"`{path}` must be {kind}, but got {value!r}")
    return int(value) if integer else float(value)


def _parse_param(name: str, raw: Any, where: str) -> Param:
    path = f"{where}.{name}" if where else name
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"`{path}` must be a mapping with a `type` (float, int or categorical), but got {raw!r}"
        )
    kind = raw.get("type")
    if kind not in _PARAM_KEYS:
        raise ValueError(
            f"`{path}.type` must be one of float, int, categorical, but got {kind!r}"
            f"{close_match(str(kind), tuple(_PARAM_KEYS))}"
        )
    check_keys(path, raw, _PARAM_KEYS[kind])
    when = _parse_when(f"{path}.when", raw.get("when", {}))
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list | tuple) or not choices:
            raise ValueError(f"`{path}.choices` must be a non-empty list, but got {choices!r}")
        for c in choices:
            if not (c is None or isinstance(c, str | int | float | bool)):
                raise ValueError(
                    f"`{path}.choices` may hold only str, int, float, bool or null, but got {c!r}"
                )
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"`{path}.choices` must not repeat a value, but got {choices!r}")
        return Param(name, "categorical", choices=tuple(choices), when=when)
    integer = kind == "int"
    for key in ("low", "high"):
        if key not in raw:
            raise ValueError(f"`{path}.{key}` is required for a {kind} parameter")
    low = _number(f"{path}.low", raw["low"], integer=integer)
    high = _number(f"{path}.high", raw["high"], integer=integer)
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"`{path}.log` must be true or false, but got {log!r}")
    step = raw.get("step")
    if step is not None:
        step = _number(f"{path}.step", step, integer=integer)
        if step <= 0:
            raise ValueError(f"`{path}.step` must be > 0, but got {step!r}")
    if low > high:
        raise ValueError(f"`{path}`: `low <= high` must hold, but got (low={low}, high={high})")
    if log and low <= 0:
        raise ValueError(
            f"`{path}.low` must be > 0 when `log` is true, but got (low={low}, log=True)"
        )
    if log and step is not None and not (integer and step == 1):
        raise ValueError(
            f"`{path}`: `step` and `log` cannot be used together, but got (step={step}, log=True)"
        )
    return Param(name, kind, low=low, high=high, log=log, step=step, when=when)


def _parse_when(path: str, raw: Any) -> tuple[tuple[str, tuple[Choice, ...]], ...]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"`{path}` must map parameter names to values, but got {raw!r}")
    out = []
    for other, values in raw.items():
        values = tuple(values) if isinstance(values, list | tuple) else (values,)
        if not values:
            raise ValueError(f"`{path}.{other}` must name at least one value, but got []")
        out.append((str(other), values))
    return tuple(out)


def parse_space(raw: Any, where: str = "space") -> Space:
    """Validate a YAML-loaded space mapping and return its parameters in dependency order."""
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"`{where}` must be a non-empty mapping of parameters, but got {raw!r}")
    params = {str(name): _parse_param(str(name), spec, where) for name, spec in raw.items()}
    for p in params.values():
        for other, values in p.when:
            path = f"{where}.{p.name}.when.{other}"
            if other not in params:
                raise ValueError(
                    f"`{path}`: a condition must name a parameter of the space, but got "
                    f"{other!r}{close_match(other, tuple(params))}"
                )
            if other == p.name:
                raise ValueError(f"`{path}`: a parameter cannot be conditional on itself")
            target = params[other]
            if target.type == "categorical":
                bad = [v for v in values if v not in target.choices]
                if bad:
                    raise ValueError(
                        f"`{path}`: condition values must be among {list(target.choices)}, "
                        f"but got {bad!r}"
                    )
    return _topological(params, where)


def _topological(params: dict[str, Param], where: str) -> Space:
    order: list[Param] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(
                f"`{where}`: conditions must not form a cycle, but got {' -> '.join(chain)}"
            )
        state[name] = 1
        for other, _ in params[name].when:
            visit(other, (*chain, other))
        state[name] = 2
        order.append(params[name])

    for name in params:
        visit(name, (name,))
    return tuple(order)


def sample(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Define-by-run sampling: suggest each parameter whose condition holds, in order."""
    config: dict[str, Any] = {}
    for p in space:
        if p.active(config):
            config[p.name] = _suggest(trial, p)
    return config


def complete(params: Mapping[str, Any], space: Space) -> bool:
    """True when ``params`` holds every parameter :func:`sample` draws for it: a trial stopped
    part-way through its sampling holds only some."""
    seen: dict[str, Any] = {}
    for p in space:
        if p.active(seen):
            if p.name not in params:
                return False
            seen[p.name] = params[p.name]
    return True


def _suggest(trial: optuna.Trial, p: Param) -> Any:
    if p.type == "categorical":
        return trial.suggest_categorical(p.name, list(p.choices))
    if p.type == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
    return trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)


def distribution(p: Param) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution that :func:`sample` draws ``p`` from (for ``create_trial``)."""
    if p.type == "categorical":
        return optuna.distributions.CategoricalDistribution(list(p.choices))
    if p.type == "int":
        return optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log,
                                                    step=int(p.step or 1))  # fmt: skip
    return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log, step=p.step)
