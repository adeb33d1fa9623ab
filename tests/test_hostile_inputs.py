"""Specs that validate but mean something else, or that cost more than they look: refused at
validate, with the key, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairsearch.spec.fields import SpecError
from fairsearch.spec.safe_yaml import read_yaml
from fairsearch.spec.schema import load_spec, parse_spec


def _raw(**post):
    return {
        "name": "hostile", "data": {"name": "synthetic_regression", "n": 300, "n_train": 200},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": {"mu": {"type": "float", "low": 0.0, "high": 4.0}},
        "post": post,
    }  # fmt: skip


def test_repeated_seeds_probes_and_objectives_are_refused():
    with pytest.raises(SpecError, match=r"`post.seeds` must not repeat a seed .*but got \[0, 0\]"):
        parse_spec(_raw(seeds=[0, 0]))
    raw = _raw(probes=["logistic", "logistic"])
    raw["objectives"].append({"metric": "mse", "direction": "maximize"})
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    text = str(info.value)
    assert "`objectives` must name each metric once, but got ['mse', 'cka', 'mse']" in text
    assert "`post.probes` must not repeat a probe, but got ['logistic', 'logistic']" in text
    assert parse_spec(_raw(seeds=[0, 1])).post.seeds == (0, 1)


def test_a_hidden_choice_that_is_not_a_layer_list_is_refused():
    raw = _raw()
    raw["space"]["hidden"] = {"type": "categorical", "choices": ["32-32", "32-x", None]}
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    text = str(info.value)
    assert ("`space.hidden.choices` must be positive layer sizes such as '60' or '256-60', but "
            "got '32-x'") in text
    assert "but got None" in text
    raw["space"]["hidden"]["choices"] = ["32-32", 16, ""]  # "" is no hidden layer
    parse_spec(raw)


def test_an_alias_bomb_under_the_alias_limit_is_refused_at_once(tmp_path: Path):
    # 9 levels of 10 aliases each (90 aliases, under the alias limit): 10**9 nodes expanded
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nname: bomb\n")
    with pytest.raises(ValueError, match=r"is not valid YAML.*more than 200000 YAML nodes once "
                                         r"aliases are expanded .*alias bomb"):
        load_spec(path)
    shared = tmp_path / "shared.yaml"  # aliases that stay small are fine
    shared.write_text("base: &b {type: float, low: 0.0, high: 1.0}\nmu: *b\nlr: *b\n")
    assert read_yaml(shared, "spec file")["lr"] == {"type": "float", "low": 0.0, "high": 1.0}
