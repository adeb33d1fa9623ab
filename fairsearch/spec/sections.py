"""What a run trains on: the ``data``, ``model``, ``objectives`` and ``space`` sections checked
against the built-in datasets, the model family (its parameters, metrics and options) and a user's
factory or loader."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fairsearch.families import FAMILIES
from fairsearch.families._factory import ANY, accepted_parameters, resolve_factory
from fairsearch.nets import parse_layers
from fairsearch.plugins import resolve_import
from fairsearch.spec.fields import Errors, SpecError, as_mapping, one_of, short
from fairsearch.spec.safe_yaml import read_yaml
from fairsearch.spec.space import Space, close_match
from fairsearch.spec.validated import HalvingSpec, Objective

__all__ = ["BUILTIN_DATA", "HALVING_KEYS", "LAYER_PARAMS", "MODEL_KEYS", "SPACES_DIR",
           "check_space_for_family", "default_rungs", "parse_data", "parse_halving", "parse_model",
           "parse_objectives", "resolve_space"]  # fmt: skip

BUILTIN_DATA = {
    "synthetic_regression": "regression",
    "synthetic_embeddings": "classification",
    "adult": "classification",
    "adult_embeddings": "classification",
    "names_minilm": "classification",
}


MODEL_KEYS = ("family", "factory", "factory_args")


#: Family parameters whose values are layer lists (``"256-60"``), each choice checked at validate.
LAYER_PARAMS = ("hidden", "bottleneck")


#: The shipped example specs and search spaces (package data; in a checkout, search_spaces/).
SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"


def resolve_space(value: Any, base: Path | None) -> tuple[Any, str]:
    """An inline space, or a file from search_spaces/ or beside the spec (no ``..``)."""
    if isinstance(value, Mapping):
        return value, "space"
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"`space` must be a file under search_spaces/ or an inline mapping, but got "
            f"{short(value)}"
        )
    rel = Path(value)
    if rel.is_absolute() or ".." in rel.parts or rel.suffix not in ("", ".yaml", ".yml"):
        raise ValueError(
            f"`space` must name a .yaml file in search_spaces/ or beside the spec, without '..' "
            f"or an absolute path, but got {value!r}"
        )
    roots = ([base] if base is not None else []) + [SPACES_DIR]
    for root in roots:
        for cand in (root / rel, root / f"{value}.yaml", root / rel.name):
            if cand.suffix in (".yaml", ".yml") and cand.is_file():
                return read_yaml(cand, "space file"), f"space ({value})"
    shipped = sorted(p.name for p in SPACES_DIR.glob("*.yaml")) if SPACES_DIR.is_dir() else []
    raise ValueError(
        f"`space` names a file that does not exist, got {value!r}; shipped spaces are "
        f"{', '.join(shipped)}{close_match(rel.name, shipped)}"
    )


def parse_model(raw: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(raw, str):
        return one_of("model", raw, tuple(FAMILIES)), {}
    raw = as_mapping("model", raw)
    named = FAMILIES.get(raw.get("family")) if isinstance(raw.get("family"), str) else None
    own = tuple(named.model_options) if named else ()
    allowed = (*MODEL_KEYS, *own)
    bad = [k for k in raw if k not in allowed]
    if bad:
        raise ValueError(f"unknown key `model.{bad[0]}`{close_match(str(bad[0]), allowed)}; "
                         f"allowed keys are {', '.join(allowed)}")  # fmt: skip
    family = one_of("model.family", raw.get("family"), tuple(FAMILIES))
    args: dict[str, Any] = {}
    if any(k in raw for k in own):
        args.update(FAMILIES[family].check_model_options({k: raw[k] for k in own if k in raw}))
    if raw.get("factory") is not None:
        resolve_factory(raw["factory"])
        args["factory"] = raw["factory"]
        args["factory_args"] = dict(as_mapping("model.factory_args", raw.get("factory_args") or {}))
    elif raw.get("factory_args"):
        raise ValueError("`model.factory_args` needs `model.factory`, but no factory is named")
    return family, args


def parse_data(raw: Any) -> tuple[dict[str, Any], str | None]:
    data = dict(as_mapping("data", raw))
    if ("name" in data) == ("path" in data) == ("loader" in data) or \
            sum(k in data for k in ("name", "path", "loader")) != 1:  # fmt: skip
        raise ValueError(
            f"`data` must have exactly one of `name` (a built-in dataset), `path` (Parquet) or "
            f"`loader` (an import path 'pkg.module:function' returning a Dataset), but got keys "
            f"{sorted(data)}"
        )
    if "name" in data:
        task = BUILTIN_DATA[one_of("data.name", data["name"], tuple(BUILTIN_DATA))]
        from fairsearch.data import BUILTIN

        _check_data_keys(data, "name", BUILTIN[data["name"]])
        return data, task
    if "loader" in data:
        _check_data_keys(data, "loader", resolve_import(data["loader"], "data.loader"))
    elif not isinstance(data["path"], str):
        raise ValueError(f"`data.path` must be a file path, but got {short(data['path'])}")
    else:
        from fairsearch.data import load_parquet

        _check_data_keys(data, "path", load_parquet, skip_first=True)
    task = data.get("task")
    if task is not None:
        one_of("data.task", task, ("regression", "classification"))
    return data, task


def _check_data_keys(data: Mapping[str, Any], source: str, fn: Callable[..., Any], *,
                     skip_first: bool = False) -> None:  # fmt: skip
    """Every key of ``data`` besides ``source`` must be a keyword argument of its loader ``fn``."""
    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return  # a loader taking **kwargs accepts any key
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    allowed = (source, *(p.name for p in params[int(skip_first):] if p.kind in kinds))
    errors = [
        f"unknown key `data.{key}`{close_match(str(key), allowed)}; allowed keys with "
        f"`data.{source}` are {', '.join(allowed)}"
        for key in data if key not in allowed
    ]  # fmt: skip
    if errors:
        raise SpecError(errors)


def parse_objectives(raw: Any, metrics: tuple[str, ...] | None) -> tuple[Objective, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"`objectives` must be a non-empty list, but got {short(raw)}")
    err, out = Errors(), []
    for i, item in enumerate(raw):
        path = f"objectives[{i}]"
        if not isinstance(item, Mapping):
            err.add(f"`{path}` must be a mapping with `metric` and `direction`, but got "
                    f"{short(item)}")  # fmt: skip
            continue
        err.unknown_keys(path, item, ("metric", "direction"))
        metric = item.get("metric")
        if metrics is not None:
            metric = err.check(one_of, f"{path}.metric", metric, metrics, default=None)
        direction = err.check(one_of, f"{path}.direction", item.get("direction"),
                              ("minimize", "maximize"), default=None)  # fmt: skip
        if metric is not None and direction is not None:
            out.append(Objective(metric, direction))
    names = [o.metric for o in out]
    if len(set(names)) != len(names):
        err.add(f"`objectives` must name each metric once, but got {names}")
    if err.messages:
        raise SpecError(err.messages)
    return tuple(out)


def _layers(value: Any, what: str) -> tuple[int, ...]:
    """A layer list such as ``"256-60"`` or ``60`` (:func:`fairsearch.nets.parse_layers`)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"{what} must be positive layer sizes such as '60' or '256-60', but "
                         f"got {value!r}")  # fmt: skip
    return parse_layers(value, what)


def check_space_for_family(err: Errors, space: Space, family: str,
                            model_args: Mapping[str, Any], where: str) -> None:  # fmt: skip
    fam = FAMILIES[family]
    takes: frozenset[str] = frozenset()
    if model_args.get("factory"):
        takes = err.check(accepted_parameters, model_args["factory"], default=frozenset())
    known = tuple(fam.parameters)
    for p in space:
        if p.name not in fam.parameters:
            if p.name in takes or ANY in takes:
                continue
            extra = f", or the factory's own arguments {sorted(takes - {ANY})}" if takes else ""
            err.add(f"unknown parameter `{where}.{p.name}`{close_match(p.name, known)}; the "
                    f"{family} family takes {', '.join(known)}{extra}")  # fmt: skip
            continue
        if p.name in LAYER_PARAMS and p.type == "categorical":
            for c in p.choices:  # each choice must be a layer list the family can build
                err.check(_layers, c, f"`{where}.{p.name}.choices`", default=None)
        allowed = fam.parameters[p.name]
        if allowed is None:
            continue
        if p.type != "categorical":
            err.add(f"`{where}.{p.name}` must be categorical (choices among "
                    f"{', '.join(map(str, allowed))}), but got type {p.type!r}")  # fmt: skip
            continue
        for c in p.choices:
            err.check(one_of, f"{where}.{p.name}.choices", c, allowed, default=None)



#: The keys of a ``search.halving`` mapping.
HALVING_KEYS = ("rungs", "keep", "confidence", "min_trials")


def default_rungs(epochs: int) -> tuple[int, ...]:
    """The rungs of ``search.halving: true``: a quarter and a half of ``epochs`` (at least 1,
    each below ``epochs``)."""
    return tuple(sorted({r for r in (max(1, epochs // 4), epochs // 2) if 1 <= r < epochs}))


def parse_halving(err: Errors, raw: Any, *, epochs: int, seeds: int, workers: int,
                  family: str | None) -> HalvingSpec | None:  # fmt: skip
    """``search.halving``: false (off, the default), true (:func:`default_rungs`, the other
    keys' defaults) or a mapping of :data:`HALVING_KEYS`; every problem added to ``err``."""
    if raw is None or raw is False:
        return None
    if raw is not True and not isinstance(raw, Mapping):
        err.add(f"`search.halving` must be true, false or a mapping of {', '.join(HALVING_KEYS)}, "
                f"but got {short(raw)}")  # fmt: skip
        return None
    given: Mapping[str, Any] = {} if raw is True else raw
    err.unknown_keys("search.halving", given, HALVING_KEYS)
    d = HalvingSpec(rungs=())
    rungs = given.get("rungs", default_rungs(epochs))
    ok = (isinstance(rungs, list | tuple) and len(rungs) > 0
          and all(isinstance(r, int) and not isinstance(r, bool) and 1 <= r < epochs for r in rungs)
          and list(rungs) == sorted(set(rungs)))  # fmt: skip
    if not ok:
        err.add(f"`search.halving.rungs` must be a non-empty increasing list of epoch counts from 1 "
                f"to `trial.epochs` - 1 = {epochs - 1}, but got {short(rungs)}")  # fmt: skip
    keep = given.get("keep", d.keep)
    if isinstance(keep, bool) or not isinstance(keep, int | float) or not 0 < keep < 1:
        err.add(f"`search.halving.keep` must be a number > 0 and < 1 (the share of configurations "
                f"a rung keeps), but got {short(keep)}")  # fmt: skip
    confidence = given.get("confidence", d.confidence)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or \
            not 0.5 <= confidence < 1:  # fmt: skip
        err.add(f"`search.halving.confidence` must be a number >= 0.5 and < 1, but got "
                f"{short(confidence)}")  # fmt: skip
    min_trials = given.get("min_trials", d.min_trials)
    if isinstance(min_trials, bool) or not isinstance(min_trials, int) or min_trials < 1:
        err.add(f"`search.halving.min_trials` must be an integer >= 1, but got {short(min_trials)}")
    if seeds < 2:
        err.add(f"`search.halving` judges seed means by their standard errors: set "
                f"`search.seeds` >= 2, but got {seeds}")  # fmt: skip
    if workers > 1:
        err.add(f"`search.halving` needs `trial.workers: 1` (data-parallel workers would each "
                f"judge their own rows), but got {workers}")  # fmt: skip
    if family in FAMILIES and len(FAMILIES[family].rung_terms) != 2:
        err.add(f"`search.halving` needs a model family that declares two rung terms, but "
                f"{family!r} declares {list(FAMILIES[family].rung_terms)}")  # fmt: skip
    if not ok:
        return None
    return HalvingSpec(rungs=tuple(int(r) for r in rungs), keep=float(keep),
                       confidence=float(confidence), min_trials=int(min_trials))  # fmt: skip
