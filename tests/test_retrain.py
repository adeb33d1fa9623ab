from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fairsearch.analysis.retrain.plan import plan_retrain
from fairsearch.analysis.retrain.summary import summarise_seeds
from fairsearch.analysis.retrain.units import retrain_configuration, save_unit, train_unit
from fairsearch.analysis.retrain.weights import load_model, weights_load
from fairsearch.data import synthetic_embeddings, synthetic_regression
from fairsearch.families import get_family
from fairsearch.families.wrapper import FairModelWrapper


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
    assert plan[0]["config_id"] == "trial-2" and plan[0]["params"] == {"mu": 8.0, "width": 16.0}
    assert "width" not in plan_retrain(trials, pareto, top_k=3)[2]["params"]  # null = condition off
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        plan_retrain(trials, pareto, top_k=0)


def test_plan_skips_a_front_member_that_repeats_a_planned_configuration():
    trials, pareto = _tables()
    # trial 4: an exact copy of trial 2 (as NSGA-II can propose), on the front beside it
    trials.loc[4] = ["t4", 4, 8.0, 16.0]
    pareto.loc[4] = ["t4", 4, 0, True, False]
    plan = plan_retrain(trials, pareto, top_k=4)
    assert [p["trial_id"] for p in plan] == ["t2", "t0", "t1"]  # four front members, three configurations


def test_summary_robust_front_and_instability():
    runs = pd.DataFrame({
        "config_id": ["a", "a", "b", "b", "c", "c"], "seed": [0, 1] * 3,
        "status": ["completed"] * 6,
        "metric.f1": [0.90, 0.91, 0.80, 0.81, 0.70, 0.71],
        "metric.adv": [0.30, 0.31, 0.05, 0.50, 0.40, 0.41],
    })  # fmt: skip
    s = summarise_seeds(runs, [("f1", "maximize"), ("adv", "minimize")], ("adv <= 0.1",)).set_index(
        "config_id"
    )
    assert s.loc["a", "metric.f1.mean"] == pytest.approx(0.905)
    # c is dominated by a on both seed means; a and b are not dominated
    assert s["robust_front"].to_dict() == {"a": True, "b": True, "c": False}
    # b's adversary score flips across the constraint between seeds, a's and c's do not
    assert s.loc["b", "unstable"] and "holds for some seeds only" in s.loc["b", "unstable_reason"]
    assert not s.loc["a", "unstable"] and not s.loc["c", "unstable"]
    # Measured against the range over the whole search, a small std is no longer a flip.
    wide = summarise_seeds(runs, [("f1", "maximize"), ("adv", "minimize")], (), {"f1": 1.0, "adv": 5.0})
    assert not wide["unstable"].any()
    narrow = summarise_seeds(runs, [("f1", "maximize"), ("adv", "minimize")], (), {"f1": 1.0, "adv": 0.2})
    assert narrow.set_index("config_id").loc["b", "unstable_reason"].startswith("adv std")


def test_summary_flags_seeds_that_fail_and_keeps_all_failed_configs():
    runs = pd.DataFrame({
        "config_id": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
        "status": ["completed", "diverged", "failed", "failed"],
        "metric.f1": [0.9, np.nan, np.nan, np.nan],
    })  # fmt: skip
    s = summarise_seeds(runs, [("f1", "maximize")]).set_index("config_id")
    assert s.loc["a", "unstable_reason"] == "1 of 2 seeds diverged"
    assert s.loc["b", "seeds"] == 0 and not s.loc["b", "robust_front"]
    assert not s.loc["b", "unstable"]  # failing every time is not a flip
    only_failed = summarise_seeds(runs[runs["config_id"] == "b"][["config_id", "seed", "status"]],
                            [("f1", "maximize")])  # fmt: skip
    assert only_failed["seeds"].tolist() == [0]


def test_a_diverged_seed_is_recorded_not_raised():
    data = synthetic_regression(n=200, n_train=150)
    out = train_unit("wrapper", {"mu": 0.0, "lr": 1e12}, data, 0, 3, 64)
    assert out["status"] == "diverged" and "diverged" in out["error"]
    assert out["metrics"] == {} and out["duration_s"] >= 0
    bad = train_unit("wrapper", {"hidden": "x-y"}, data, 0, 1, 64)
    assert bad["status"] == "failed" and bad["error"].startswith("ValueError")


def test_retrained_model_round_trips_without_executing_code(tmp_path):
    data = synthetic_regression(n=200, n_train=150)
    params = {"mu": 1.0, "lr": 3e-3, "hidden": "16"}
    out = train_unit("wrapper", params, data, 0, 2, 64)
    assert out["status"] == "completed", out["error"]
    assert out["test_repr"].shape == (50, 1) and np.isfinite(out["test_repr"]).all()
    assert set(out["test_metrics"]) == set(out["metrics"]) >= {"mse", "cka"}
    save_unit(tmp_path, out, {"family": "wrapper", "config": params, "seed": 0})
    assert torch.load(tmp_path / "model.pt", weights_only=True).keys() == out["state"].keys()
    model, config = load_model(tmp_path)
    assert config["config"] == params and config["status"] == "completed"
    assert isinstance(model, FairModelWrapper)  # what fit returns, so outputs() takes it
    test = data.subset("test")
    outputs = get_family("wrapper").outputs(model, test)
    assert np.array_equal(outputs.representation, np.load(tmp_path / "test_repr.npy"))
    with torch.no_grad():
        pred = model.module(torch.as_tensor(test.X)).numpy()
    assert np.array_equal(pred, np.load(tmp_path / "test_repr.npy"))
    # Same seed, same config: same model.
    again = retrain_configuration("wrapper", params, data, seed=0, epochs=2, batch_size=64)
    assert np.array_equal(again["test_repr"], out["test_repr"])


def test_retrained_translator_round_trips(tmp_path):
    data = synthetic_embeddings(n=300, d=8, seed=0)
    params = {"fairness": "adversarial", "probe_every": 0}
    out = train_unit("translator", params, data, 0, 1, 64)
    assert out["status"] == "completed", out["error"]
    assert {"control_f1", "adversary_f1"} <= set(out["test_metrics"])
    save_unit(tmp_path, out, {"family": "translator", "config": params, "seed": 0})
    tr, _ = load_model(tmp_path)
    test = data.subset("test")
    assert np.allclose(tr.transform(test.X), np.load(tmp_path / "test_repr.npy"), atol=1e-6)
    assert np.array_equal(tr.predict(test.X), np.load(tmp_path / "test_pred.npy"))


def _saved_wrapper(folder):
    data = synthetic_regression(n=200, n_train=150)
    params = {"mu": 1.0, "hidden": "8"}
    out = train_unit("wrapper", params, data, 0, 1, 64)
    save_unit(folder, out, {"family": "wrapper", "config": params, "seed": 0})
    return folder


def test_a_tampered_config_json_never_runs_the_factory_it_names(tmp_path):
    folder = _saved_wrapper(tmp_path / "seed-0")
    marker = tmp_path / "ran"
    config = json.loads((folder / "config.json").read_text())
    config["model"] = {"factory": "subprocess:getoutput",
                       "factory_args": {"cmd": f"touch {marker}"}}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config.json names the model factory "
                                         r"'subprocess:getoutput', but loading only imports a "
                                         r"factory the caller names"):
        load_model(folder)
    with pytest.raises(ValueError, match=r"'subprocess:getoutput'.*the caller trusts "
                                         r"\['examples.tabular_resnet:make_resnet'\]"):
        load_model(folder, factories=["examples.tabular_resnet:make_resnet"])
    config["model"] = {"factory": "examples.tabular_resnet:make_resnet", "code": "x"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"`model` must hold only `factory` and `factory_args`"):
        load_model(folder, factories=["examples.tabular_resnet:make_resnet"])
    config["model"], config["family"] = {}, ["os:system"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"`family` must be a family's name"):
        load_model(folder)
    assert not marker.exists()


def test_damaged_weights_and_config_name_the_file_and_the_recovery(tmp_path):
    folder = _saved_wrapper(tmp_path / "seed-0")
    assert weights_load(folder)
    data = (folder / "model.pt").read_bytes()
    (folder / "model.pt").write_bytes(data[: len(data) // 2])
    assert not weights_load(folder)  # never offered for deployment
    with pytest.raises(ValueError, match=rf"{folder / 'model.pt'} cannot be loaded .*re-run "
                                         r"`fairsearch retrain`"):
        load_model(folder)
    (folder / "config.json").write_text("{garbage")
    with pytest.raises(ValueError, match=rf"{folder / 'config.json'} is unreadable .*re-run "
                                         r"`fairsearch retrain`"):
        load_model(folder)


def test_a_population_of_seeds_gives_each_seed_what_it_gets_trained_alone():
    from fairsearch.families import TrialSettings, train_seeds
    from fairsearch.families import train_one as family_train_one

    data = synthetic_regression(n=240, n_train=180)
    params = {"mu": 2.0, "lr": 3e-3, "hidden": "16"}
    family = get_family("wrapper")
    settings = TrialSettings(epochs=3, batch_size=64, seed=5)
    together = train_seeds(family, params, [5, 6], data, settings)
    for seed, member in zip([5, 6], together, strict=True):
        alone = family_train_one(family, params, data, TrialSettings(epochs=3, batch_size=64,
                                                                     seed=seed))  # fmt: skip
        for k, v in alone["state"].items():
            torch.testing.assert_close(member["state"][k], v, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(member["test_repr"], alone["test_repr"], rtol=1e-3, atol=1e-5)
        assert member["metrics"].keys() == alone["metrics"].keys()
    # the two seeds are different models (fresh initialisation and data order, same rows)
    assert not np.allclose(together[0]["test_repr"], together[1]["test_repr"])


def test_retrain_units_run_in_process_without_ray(tmp_path) -> None:
    import subprocess
    import sys

    from test_stage_safety import _searched_run  # a searched run folder, Pareto stage done

    from fairsearch.analysis.retrain.runners import InProcess
    from fairsearch.analysis.retrain.stage import run_retrain

    run = _searched_run(tmp_path)
    table = run_retrain(run, quiet=True, runner=InProcess(device="cpu"))
    assert len(table) == 4 and (table["status"] == "completed").all()  # 2 configurations x 2 seeds
    assert set(table["seed"]) == {0, 1}
    assert pd.read_parquet(run / "retrain.parquet").equals(table)
    assert (run / "retrain_summary.parquet").is_file() and not (run / "ray").exists()
    for folder in sorted((run / "retrain").glob("*/seed-*")):
        assert weights_load(folder)
    # only the Ray runner's module imports Ray: the stage itself does not
    code = ("import sys, fairsearch.analysis.retrain.stage, fairsearch.analysis.retrain.runners\n"
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
