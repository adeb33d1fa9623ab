"""Population lanes: a free lane takes up to ``search.population`` configurations of one shape,
at most population x lanes are asked and untold, and a configuration's result does not depend
on the population it trained in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairsearch.data import load_from_spec
from fairsearch.executor.contract import LaneContext
from fairsearch.search.recorder import Recorder, is_population
from fairsearch.search.study import open_study
from fairsearch.search.trial import train_configuration
from fairsearch.spec.schema import parse_spec


def _raw(population: int, trials: int = 7, hidden: bool = True, **search) -> dict:
    space = {"mu": {"type": "float", "low": 0.0, "high": 5.0},
             "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
             "sigma_f": {"type": "float", "low": 0.5, "high": 2.0}}  # fmt: skip
    if hidden:  # a shape-changing parameter: configurations of different widths never share
        space["hidden"] = {"type": "categorical", "choices": ["8", "16"]}
    return {
        "name": "pop", "model": "wrapper",
        "data": {"name": "synthetic_regression", "n": 240, "n_train": 160, "seed": 0},
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": space,
        "search": {"algorithm": "random", "trials": trials, "max_concurrent": 2, "seed": 0,
                   "population": population, "seeds": 2, **search},
        "trial": {"epochs": 2, "batch_size": 64},
    }  # fmt: skip


def _ctx(spec) -> LaneContext:
    return LaneContext(data=load_from_spec(spec.data))


SETTINGS = {"model": "wrapper", "model_args": {}, "epochs": 2, "batch_size": 64, "split_seed": 0}


def test_a_lane_takes_configurations_of_one_shape_and_untold_stays_within_capacity(tmp_path):
    spec = parse_spec(_raw(population=3, trials=9))
    rec = Recorder(open_study(spec, tmp_path), spec, tmp_path)
    items = []
    while (item := rec.ask(len(items))) is not None:  # no result comes back: untold only grows
        items.append(item)
        assert len(rec.pending) <= rec.capacity() == 6
    assert rec.peak_untold == 6 and len(items) >= 2  # the capacity bounded the asks
    for item in items:
        members = item.get("members") or [{"key": item["key"], "params": item["params"]}]
        assert len(members) <= 3
        assert len({m["params"]["hidden"] for m in members}) == 1  # one shape per population
        if "members" in item:
            assert is_population(item["key"]) and list(item["key"][1:]) == [m["key"] for m in members]
    # a population's result tells each member; then the next asks go on
    ctx = _ctx(spec)
    for item in items:
        rec.tell(0, {**train_configuration(item, ctx, settings=SETTINGS), "key": item["key"],
                     "lane": 0, "attempt": 0, "train_s": 1.0, "overhead_s": 0.1})  # fmt: skip
    assert not rec.pending and rec.counts["completed"] == 6
    rec.write_tables()
    df = pd.read_parquet(tmp_path / "trials.parquet")
    assert (df["n_seeds"] == 2).all() and df["per_seed.mse"].map(len).eq(2).all()


def test_a_failed_population_fails_every_member(tmp_path):
    spec = parse_spec(_raw(population=3, trials=3, hidden=False))
    rec = Recorder(open_study(spec, tmp_path), spec, tmp_path)
    item = rec.ask(0)
    assert "members" in item and len(item["members"]) == 3  # no shape parameter: one population
    rec.fail(item["key"], "the lane died")
    assert not rec.pending and rec.counts["failed"] == 3


def test_a_member_of_a_population_equals_its_configuration_trained_alone(tmp_path):
    spec = parse_spec(_raw(population=3, trials=3, hidden=False))
    rec = Recorder(open_study(spec, tmp_path), spec, tmp_path)
    item = rec.ask(0)
    ctx = _ctx(spec)
    together = train_configuration(item, ctx, settings=SETTINGS)
    assert together["status"] == "completed" and len(together["members"]) == 3
    for member, got in zip(item["members"], together["members"], strict=True):
        alone = train_configuration({"key": member["key"], "params": member["params"],
                                     "seeds": item["seeds"], "attempt": 0}, ctx,
                                    settings=SETTINGS)  # fmt: skip
        assert got["key"] == member["key"] and alone["status"] == "completed"
        for name, value in alone["metrics"].items():
            np.testing.assert_allclose(got["metrics"][name], value, rtol=2e-3, atol=1e-5,
                                       err_msg=name)  # fmt: skip
        assert len(got["history"]) == len(alone["history"]) == 2 * 2  # seeds x epochs


def test_population_must_be_positive():
    with pytest.raises(ValueError, match=r"`search.population` must be an integer >= 1, but got 0"):
        parse_spec(_raw(population=0))


@pytest.mark.ray
def test_population_lanes_search_counts_every_configuration_once(ray_tests_importable, tmp_path):
    from fairsearch.search.engine import run_search
    from fairsearch.search.study import load_run_study

    spec = parse_spec(_raw(population=3, trials=8))
    run_dir = run_search(spec, storage=tmp_path, quiet=True)
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert len(df) == 8 and (df["status"] == "completed").all() and df["number"].is_unique
    study = load_run_study(run_dir, "pop")
    assert 2 < study.user_attrs["max_untold"] <= 3 * 2  # populations were asked, within capacity
    assert (df["train_s"] > 0).all()
