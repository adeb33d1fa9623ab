from __future__ import annotations

import optuna
import pytest

from fairsearch.spec.space import parse_space, sample

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "adv_every": {"type": "int", "low": 1, "high": 5, "when": {"fairness": "adversarial"}},
    "fairness": {"type": "categorical", "choices": ["adversarial", "gradient_reversal", "cka"]},
    "grl_lambda": {"type": "float", "low": 0.1, "high": 10, "log": True,
                   "when": {"fairness": ["gradient_reversal"]}},
    "adv_lr": {"type": "float", "low": 1e-4, "high": 1e-2, "when": {"adv_every": [1, 2]}},
    "mu": {"type": "float", "low": 0, "high": 10, "step": 0.5},
}


def draw(space, n=60, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs = []
    for _ in range(n):
        trial = study.ask()
        configs.append(sample(trial, space))
        study.tell(trial, 0.0)
    return configs


def test_conditional_params_exist_only_when_their_condition_holds():
    space = parse_space(SPACE)
    order = [p.name for p in space]
    assert order.index("fairness") < order.index("adv_every") < order.index("adv_lr")
    configs = draw(space)
    for c in configs:
        assert ("adv_every" in c) == (c["fairness"] == "adversarial")
        assert ("grl_lambda" in c) == (c["fairness"] == "gradient_reversal")
        assert ("adv_lr" in c) == (c.get("adv_every") in (1, 2))
        assert 1e-4 <= c["lr"] <= 1e-2 and (c["mu"] * 2).is_integer()
    # the effect is exercised both ways
    assert any("adv_every" in c for c in configs) and any("adv_every" not in c for c in configs)
    assert any("grl_lambda" in c for c in configs) and any("adv_lr" in c for c in configs)


def test_seeded_sampling_is_reproducible():
    space = parse_space(SPACE)
    assert draw(space, 10, seed=3) == draw(space, 10, seed=3)


def test_cycle_and_bad_condition_value_rejected():
    with pytest.raises(ValueError, match="conditions must not form a cycle"):
        parse_space({"a": {"type": "categorical", "choices": [1, 2], "when": {"b": 1}},
                     "b": {"type": "categorical", "choices": [1, 2], "when": {"a": 1}}})
    with pytest.raises(ValueError, match=r"condition values must be among \['x', 'y'\], but got \['z'\]"):
        parse_space({"a": {"type": "categorical", "choices": ["x", "y"]},
                     "b": {"type": "int", "low": 1, "high": 2, "when": {"a": "z"}}})
    with pytest.raises(ValueError, match=r"`space.a.type` must be one of float, int, categorical"):
        parse_space({"a": {"type": "flaot", "low": 0, "high": 1}})
    with pytest.raises(ValueError, match=r"`space.a.choices` must be a non-empty list"):
        parse_space({"a": {"type": "categorical", "choices": []}})
