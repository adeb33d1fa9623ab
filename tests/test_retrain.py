from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fairsearch.datasets import synthetic_regression
from fairsearch.retrain import _save, load_model, plan_retrain, summarise, train_one


def _tables():
    trials = pd.DataFrame({
        "trial_id": ["t0", "t1", "t2", "t3"], "number": [0, 1, 2, 3],
        "param.mu": [0.0, 2.0, 8.0, 1.0], "param.width": [32.0, np.nan, 16.0, 8.0],
    })  # fmt: skip
    pareto = pd.DataFrame({
        "trial_id": ["t0", "t1", "t2", "t3"], "number": [0, 1, 2, 3],
        "rank": [0, 0, 0, 1], "on_front": [True, True, True, False],
        "chosen": [False, False, True, False],
    })  # fmt: skip
    return trials, pareto


def test_plan_takes_front_members_chosen_first_capped():
    trials, pareto = _tables()
    plan = plan_retrain(trials, pareto, top_k=2)
    assert [p["trial_id"] for p in plan] == ["t2", "t0"]
    assert plan[0]["config_id"] == "cfg-2" and plan[0]["params"] == {"mu": 8.0, "width": 16.0}
    assert "width" not in plan_retrain(trials, pareto, top_k=3)[2]["params"]  # null = condition off
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        plan_retrain(trials, pareto, top_k=0)


def test_summary_robust_front_and_instability():
    runs = pd.DataFrame({
        "config_id": ["a", "a", "b", "b", "c", "c"], "seed": [0, 1] * 3,
        "status": ["completed"] * 6,
        "metric.f1": [0.90, 0.91, 0.80, 0.81, 0.70, 0.71],
        "metric.adv": [0.30, 0.31, 0.05, 0.50, 0.40, 0.41],
    })  # fmt: skip
    s = summarise(runs, [("f1", "maximize"), ("adv", "minimize")], ("adv <= 0.1",)).set_index(
        "config_id"
    )
    assert s.loc["a", "metric.f1.mean"] == pytest.approx(0.905)
    # c is dominated by a on both seed means; a and b are not dominated
    assert s["robust_front"].to_dict() == {"a": True, "b": True, "c": False}
    # b's adversary score flips across the constraint between seeds, a's and c's do not
    assert s.loc["b", "unstable"] and "holds for some seeds only" in s.loc["b", "unstable_reason"]
    assert not s.loc["a", "unstable"] and not s.loc["c", "unstable"]
    # Measured against the range over the whole search, a small std is no longer a flip.
    wide = summarise(runs, [("f1", "maximize"), ("adv", "minimize")], (), {"f1": 1.0, "adv": 5.0})
    assert not wide["unstable"].any()
    narrow = summarise(runs, [("f1", "maximize"), ("adv", "minimize")], (), {"f1": 1.0, "adv": 0.2})
    assert narrow.set_index("config_id").loc["b", "unstable_reason"].startswith("adv std")


def test_retrained_model_round_trips_without_executing_code(tmp_path):
    data = synthetic_regression(n=200, n_train=150)
    out = train_one("wrapper", {"mu": 1.0, "lr": 3e-3}, data, seed=0, epochs=2, batch_size=64)
    assert out["test_repr"].shape == (50, 1) and np.isfinite(out["test_repr"]).all()
    out["status"] = "completed"
    _save(tmp_path, out, {"model": "wrapper", "config": {"mu": 1.0}, "seed": 0})
    state, config = load_model(tmp_path)
    assert config["config"] == {"mu": 1.0}
    assert all(torch.equal(state[k], out["state"][k]) for k in out["state"])
    assert np.array_equal(np.load(tmp_path / "test_repr.npy"), out["test_repr"])
    # Same seed, same config: same model.
    again = train_one("wrapper", {"mu": 1.0, "lr": 3e-3}, data, seed=0, epochs=2, batch_size=64)
    assert np.array_equal(again["test_repr"], out["test_repr"])
