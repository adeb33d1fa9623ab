"""NSGA-II in a small budget: plain Optuna NSGA-II proposes configurations the study already
holds (a parent copied unchanged); the search's sampler (``make_sampler("nsga2", ...)``) does
not, until the space is used up. Ray-free and fast: a hash of the configuration stands in for
training."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import optuna
import pytest

from fairsearch.search.study import make_sampler
from fairsearch.spec.space import Space, parse_space, sample

optuna.logging.set_verbosity(optuna.logging.WARNING)

# 3 x 3 x 4 x 9 = 324 configurations: categorical, int and a float on a grid
SMALL = parse_space({
    "act": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
    "width": {"type": "categorical", "choices": [16, 32, 64]},
    "depth": {"type": "int", "low": 1, "high": 4},
    "mu": {"type": "float", "low": 0.0, "high": 4.0, "step": 0.5},
})  # fmt: skip

# 30 configurations; ``every`` exists only for ``adv``, ``hidden`` has one possible value
CONDITIONAL = parse_space({
    "fairness": {"type": "categorical", "choices": ["adv", "gr", "none"]},
    "every": {"type": "int", "low": 1, "high": 3, "when": {"fairness": "adv"}},
    "width": {"type": "categorical", "choices": [16, 32]},
    "depth": {"type": "int", "low": 1, "high": 3},
    "hidden": {"type": "categorical", "choices": ["32"]},
})  # fmt: skip

# 4 configurations
TINY = parse_space({"a": {"type": "categorical", "choices": ["x", "y"]},
                    "b": {"type": "categorical", "choices": [1, 2]}})  # fmt: skip

SEEDS = range(6)
BUDGETS = (8, 20)


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def _objectives(params: dict[str, Any]) -> tuple[float, float]:
    """Two cheap, deterministic objectives that trade off against each other."""
    d = hashlib.sha256(_key(params).encode()).digest()
    return d[0] / 255 + d[1] / 255, 1 - d[0] / 255 + d[2] / 400


def _search(sampler: optuna.samplers.BaseSampler, space: Space, trials: int, *,
            batch: int = 1, prune: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Ask ``batch`` configurations at a time (running together), then tell them with a
    constraint (first objective <= 1), as the search's recorder does, every ``prune``-th one
    PRUNED (successive halving stopped it); the configurations."""
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    configs: list[dict[str, Any]] = []
    while len(configs) < trials:
        asked = [study.ask() for _ in range(min(batch, trials - len(configs)))]
        drawn = [sample(t, space) for t in asked]  # every one drawn before any is told
        for trial, params in zip(asked, drawn, strict=True):
            values = _objectives(params)
            if prune and len(configs) % prune == prune - 1:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                trial.set_constraint("f1 <= 1", values[0] - 1)
                study.tell(trial, values)
            configs.append(params)
    return configs


def _repeats(configs: list[dict[str, Any]]) -> int:
    return len(configs) - len({_key(c) for c in configs})


def _plain(seed: int, trials: int) -> optuna.samplers.NSGAIISampler:
    """Optuna's NSGA-II with the search's population (``trials // 5`` clamped to [4, 50])."""
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(4, trials // 5)))


@pytest.mark.parametrize("space", [SMALL, CONDITIONAL], ids=["small", "conditional"])
def test_plain_nsga2_repeats_configurations_in_a_small_budget(space: Space) -> None:
    per_seed = {(seed, trials): _repeats(_search(_plain(seed, trials), space, trials))
                for seed in SEEDS for trials in BUDGETS}  # fmt: skip
    assert sum(per_seed.values()) >= len(SEEDS), per_seed  # the effect to remove exists


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("space", [SMALL, CONDITIONAL], ids=["small", "conditional"])
def test_the_search_nsga2_proposes_no_configuration_twice(space: Space, batch: int) -> None:
    per_seed = {(seed, trials): _repeats(_search(make_sampler("nsga2", seed, trials), space,
                                                 trials, batch=batch))
                for seed in SEEDS for trials in BUDGETS}  # fmt: skip
    assert set(per_seed.values()) == {0}, per_seed


def test_a_pruned_configuration_is_not_proposed_again() -> None:
    per_seed = {seed: _repeats(_search(make_sampler("nsga2", seed, 20), SMALL, 20, prune=3))
                for seed in SEEDS}  # fmt: skip
    assert set(per_seed.values()) == {0}, per_seed


@pytest.mark.parametrize("seed", SEEDS)
def test_a_space_smaller_than_the_budget_is_used_up_then_repeated(seed: int) -> None:
    configs = _search(make_sampler("nsga2", seed, 12), TINY, 12)
    assert len(configs) == 12 and _repeats(configs) == 12 - 4  # all 4 configurations, then repeats


def test_a_seed_fixes_every_proposal() -> None:
    first, again = (_search(make_sampler("nsga2", 3, 20), CONDITIONAL, 20) for _ in range(2))
    assert first == again
    assert first != _search(make_sampler("nsga2", 4, 20), CONDITIONAL, 20)


def test_generations_keep_optuna_nsga2_records_so_older_studies_resume() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=make_sampler("nsga2", 0, 20))  # population 4
    study.optimize(lambda t: _objectives(sample(t, SMALL)), n_trials=9)
    keys = {k for t in study.trials for k in t.system_attrs if k.endswith(":generation")}
    assert keys == {"NSGAIISampler:generation"}
    assert max(t.system_attrs["NSGAIISampler:generation"] for t in study.trials) == 2
