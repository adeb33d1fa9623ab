"""A JSON Schema of the run spec, for editors (``fairsearch validate --json-schema``).

Derived from the same tables the validator uses (section keys, dataclass defaults, families'
parameters and metrics, samplers, probes), so it cannot drift from them. It checks shapes and
names while you type; ``fairsearch validate`` remains the authority (data, factory, resources).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fairsearch.families import FAMILIES
from fairsearch.probes.registry import PROBE_KINDS
from fairsearch.spec.sections import BUILTIN_DATA, MODEL_KEYS
from fairsearch.spec.validated import (
    ALGORITHMS,
    CRITERIA,
    FairnessSpec,
    PostSpec,
    SearchSpec,
    TrialSpec,
)

__all__ = ["spec_json_schema"]

_NUMBER = {"type": "number"}
_TYPES = {int: {"type": "integer"}, float: _NUMBER, str: {"type": "string"}}


def _section(cls: type, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        entry = dict(_TYPES.get(type(default), {}))
        if not isinstance(default, tuple):
            entry["default"] = default
        props[f.name] = entry
    props.update(extra or {})
    return {"type": "object", "properties": props, "additionalProperties": False}


def _param() -> dict[str, Any]:
    when = {"type": "object"}  # parameter -> a value or a list of values
    numeric = {"type": "object", "required": ["type", "low", "high"], "additionalProperties": False,
               "properties": {"type": {"enum": ["float", "int"]}, "low": _NUMBER, "high": _NUMBER,
                              "log": {"type": "boolean"}, "step": _NUMBER, "when": when}}
    categorical = {"type": "object", "required": ["type", "choices"], "additionalProperties": False,
                   "properties": {"type": {"const": "categorical"},
                                  "choices": {"type": "array", "minItems": 1}, "when": when}}
    return {"oneOf": [numeric, categorical]}  # fmt: skip


def _halving() -> dict[str, Any]:
    rule = {"type": "object", "additionalProperties": False, "properties": {
        "rungs": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}},
        "keep": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.5},
        "confidence": {"type": "number", "minimum": 0.5, "exclusiveMaximum": 1, "default": 0.9},
        "min_trials": {"type": "integer", "minimum": 1, "default": 4}}}
    return {"oneOf": [{"type": "boolean"}, rule], "default": False}  # fmt: skip


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a run spec."""
    metrics = sorted({m for f in FAMILIES.values() for c in f.criteria for m in f.metrics(None, c)})
    families = sorted(FAMILIES)
    options = {k: dict(v) for f in FAMILIES.values() for k, v in f.model_options.items()}
    model = {"oneOf": [
        {"enum": families},
        {"type": "object", "required": ["family"], "additionalProperties": False,
         "properties": {k: {"type": "object"} if k == "factory_args" else {"type": "string"}
                        for k in MODEL_KEYS} | {"family": {"enum": families}} | options},
    ]}  # fmt: skip
    data = {"type": "object", "properties": {"name": {"enum": sorted(BUILTIN_DATA)},
                                             "path": {"type": "string"},
                                             "loader": {"type": "string"}}}  # fmt: skip
    objective = {"type": "object", "required": ["metric", "direction"],
                 "additionalProperties": False,
                 "properties": {"metric": {"enum": metrics},
                                "direction": {"enum": ["minimize", "maximize"]}}}  # fmt: skip
    select = {"type": "object", "additionalProperties": False, "properties": {
        "maximize": {"enum": metrics}, "minimize": {"enum": metrics}, "knee": {"type": "boolean"},
        "subject_to": {"type": "array", "items": {"type": "string", "pattern":
                       r"^\s*[A-Za-z_][A-Za-z0-9_.]*\s*(<=|>=|==|<|>)\s*[-+0-9.eE]+\s*"
                       r"(@\s*[0-9.eE]+\s*)?$"}}}}
    post = _section(PostSpec, {
        "select": select, "seeds": {"oneOf": [
            {"type": "array", "items": {"type": "integer", "minimum": 0}},
            {"type": "integer", "minimum": 1}]},
        "probes": {"type": "array", "items": {"enum": list(PROBE_KINDS)}},
        "retrain_epochs": {"type": ["integer", "null"], "minimum": 1}})
    for key in ("select_maximize", "select_minimize", "subject_to", "knee", "fresh_seeds"):
        post["properties"].pop(key)
    search = _section(SearchSpec, {"algorithm": {"enum": list(ALGORITHMS), "default": "nsga2"},
                                   "executor": {"enum": ["ray", "inprocess", "local"], "default": "ray"},
                                   "halving": _halving()})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "fairsearch run spec",
        "type": "object",
        "required": ["name", "data", "model", "objectives", "space"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
            "data": data, "model": model,
            "objectives": {"type": "array", "minItems": 1, "items": objective},
            "space": {"oneOf": [{"type": "string"},
                                {"type": "object", "additionalProperties": _param()}]},
            "search": search, "trial": _section(TrialSpec), "post": post,
            "fairness": _section(FairnessSpec, {"criterion": {"enum": list(CRITERIA),
                                                              "default": "independence"}}),
        },
    }  # fmt: skip
