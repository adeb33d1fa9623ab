"""Bring your own model: a factory named by import path is validated, trained, saved and loaded."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
import yaml

from examples.tabular_resnet import TabularResNet
from fairsearch.analysis.retrain.units import save_unit as _save
from fairsearch.analysis.retrain.units import train_unit as _task
from fairsearch.analysis.retrain.weights import load_model
from fairsearch.data import synthetic_embeddings
from fairsearch.families import TrialSettings, train_and_evaluate
from fairsearch.spec import load_spec, parse_spec
from fairsearch.spec.fields import SpecError
from fairsearch.spec.validate import check_runnable

FACTORY = {"factory": "examples.tabular_resnet:make_resnet", "factory_args": {"dropout": 0.0}}


def byo_spec(**changes):
    raw = {
        "name": "byo",
        "data": {"name": "synthetic_embeddings", "n": 400, "d": 8, "seed": 0},
        "model": {"family": "wrapper", **FACTORY},
        "objectives": [{"metric": "f1", "direction": "maximize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": {"mu": {"type": "float", "low": 0.0, "high": 4.0},
                  "width": {"type": "categorical", "choices": [16, 32]},
                  "blocks": {"type": "int", "low": 1, "high": 2}},
        "trial": {"epochs": 2, "batch_size": 64},
    }  # fmt: skip
    raw.update(changes)
    return raw


@pytest.fixture(scope="module")
def data():
    return synthetic_embeddings(n=400, d=8, seed=0)


def test_searched_parameters_reach_the_users_factory(data):
    spec = parse_spec(byo_spec())
    assert spec.model_args["factory"] == FACTORY["factory"]
    settings = TrialSettings(epochs=2, batch_size=64, model=spec.model_args)
    seen = []
    metrics = train_and_evaluate("wrapper", {"mu": 1.0, "width": 16, "blocks": 2}, data, settings,
                                 seen.append)  # fmt: skip
    assert {"f1", "cka", "accuracy"} <= set(metrics) and len(seen) == 2
    # The retrained module is the user's class, rebuilt from its state dict without pickles.
    out = _task("wrapper", {"mu": 1.0, "width": 16, "blocks": 2}, data, 0, 2, 64,
                dict(spec.model_args))  # fmt: skip
    assert out["status"] == "completed", out["error"]
    assert {k for k in out["state"] if k.startswith("blocks.1.")}, "blocks=2 reached the factory"
    assert out["state"]["stem.weight"].shape == (16, 8), "width=16 reached the factory"


def test_a_retrained_user_module_round_trips(tmp_path, data):
    spec = parse_spec(byo_spec())
    params = {"mu": 0.5, "width": 32, "blocks": 1}
    out = _task("wrapper", params, data, 0, 2, 64, dict(spec.model_args))
    _save(tmp_path, out, {"family": "wrapper", "model": dict(spec.model_args), "config": params,
                          "seed": 0})  # fmt: skip
    with pytest.raises(ValueError, match=r"names the model factory 'examples.tabular_resnet:"
                                         r"make_resnet'.*pass factories="):
        load_model(tmp_path)  # a factory named only in config.json is never imported
    model, config = load_model(tmp_path, factories=[spec.model_args["factory"]])
    assert isinstance(model.module, TabularResNet) and config["config"] == params
    test = data.subset("test")
    with torch.no_grad():
        proba = model.module(torch.as_tensor(test.X, dtype=torch.float32)).softmax(-1).numpy()
    assert np.allclose(proba, np.load(tmp_path / "test_repr.npy"), atol=1e-5)


def test_a_factory_that_cannot_be_imported_names_the_path_and_reason():
    bad = byo_spec(model={"family": "wrapper", "factory": "no_such_pkg.models:make"})
    with pytest.raises(SpecError, match=r"`model.factory` 'no_such_pkg.models:make' cannot be "
                                        r"imported: ModuleNotFoundError"):  # fmt: skip
        parse_spec(bad)
    with pytest.raises(SpecError, match=r"module 'examples.tabular_resnet' has no attribute 'nope'"):
        parse_spec(byo_spec(model={"family": "wrapper", "factory": "examples.tabular_resnet:nope"}))
    with pytest.raises(SpecError, match=r"must be an import path 'package.module:function'"):
        parse_spec(byo_spec(model={"family": "wrapper", "factory": "examples.tabular_resnet"}))


def test_a_factory_that_returns_no_module_fails_at_validation(tmp_path, monkeypatch):
    (tmp_path / "userpkg_notmodule.py").write_text(textwrap.dedent("""
        def make(input_dim, output_dim, width=8):
            return {"not": "a module"}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = parse_spec(byo_spec(model={"family": "wrapper", "factory": "userpkg_notmodule:make"},
                               space={"width": {"type": "categorical", "choices": [8]}}))
    with pytest.raises(SpecError, match=r"must return a torch.nn.Module, but returned dict"):
        check_runnable(spec, local=False)
    sys.modules.pop("userpkg_notmodule", None)


def test_a_searched_parameter_the_factory_does_not_take_is_refused():
    raw = byo_spec(space={"mu": {"type": "float", "low": 0, "high": 1},
                          "depth": {"type": "int", "low": 1, "high": 3}})  # fmt: skip
    with pytest.raises(SpecError, match=r"unknown parameter `space.depth`.*the factory's own "
                                        r"arguments \['blocks', 'dropout', 'input_dim'"):  # fmt: skip
        parse_spec(raw)


def test_validate_lists_every_mistake_of_a_spec_at_once(tmp_path, capsys):
    from fairsearch.cli import main

    raw = byo_spec(model="translator", space={"w_fiar": {"type": "float", "low": 0, "high": 1}})
    raw["objectives"] = [{"metric": "control_f1", "direction": "maximize"},
                         {"metric": "adversary_bac", "direction": "minimize"}]  # fmt: skip
    raw["search"] = {"algorithm": "tpee", "trials": 0}
    raw["post"] = {"probes": ["logistc"], "select": {"subject_to": ["adversary_bac <= 0.55"]}}
    path = tmp_path / "five.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    for pattern in (r"`objectives\[1\].metric` must be one of .* but got 'adversary_bac' \(did "
                    r"you mean 'adversary_bacc'\?\)",
                    r"unknown parameter `space.w_fiar` \(did you mean 'w_fair'\?\)",
                    r"`search.algorithm` must be one of nsga2, tpe, random, gp, but got 'tpee'",
                    r"`search.trials` must be an integer >= 1, but got 0",
                    r"`post.probes\[0\]` must be one of .* but got 'logistc' \(did you mean "
                    r"'logistic'\?\)",
                    r"`post.select.subject_to\[0\]` names metric 'adversary_bac' \(did you mean "
                    r"'adversary_bacc'\?\)"):  # fmt: skip
        assert __import__("re").search(pattern, err), (pattern, err)
    assert "has 6 problems" in err and "Traceback" not in err


def test_the_shipped_example_spec_validates():
    spec = load_spec("search_spaces/adult_resnet.yaml")
    assert spec.model_args["factory"] == "examples.tabular_resnet:make_resnet"
    assert {p.name for p in spec.space} >= {"width", "blocks", "mu"}


@pytest.mark.slow
@pytest.mark.ray
def test_fairsearch_run_searches_retrains_audits_and_reports_a_users_module(tmp_path, capsys):
    import ray

    from fairsearch.cli import main

    raw = yaml.safe_load(open("search_spaces/adult_resnet.yaml"))
    raw["data"]["max_rows"] = 1500
    raw["search"].update(trials=3)
    raw["trial"]["epochs"] = 2
    raw["post"].update(top_k=1, seeds=[0], select={"knee": True})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    try:
        assert main(["run", str(path), "--storage", str(tmp_path / "runs"), "--quiet"]) == 0
    finally:
        ray.shutdown()
    run = next((tmp_path / "runs").iterdir())
    assert (run / "report" / "report.html").is_file() and (run / "audit.parquet").is_file()
    model, config = load_model(next((run / "retrain").glob("*/seed-0")),
                               factories=["examples.tabular_resnet:make_resnet"])
    assert isinstance(model.module, TabularResNet)
    assert config["model"]["factory"] == "examples.tabular_resnet:make_resnet"


def test_the_translator_trains_a_users_encoder_and_decoder(tmp_path, data):
    from examples.residual_autoencoder import make_autoencoder  # noqa: F401 - importable

    model = {"factory": "examples.residual_autoencoder:make_autoencoder",
             "factory_args": {"dropout": 0.0}}  # fmt: skip
    raw = byo_spec(model={"family": "translator", **model},
                   objectives=[{"metric": "control_f1", "direction": "maximize"}],
                   space={"w_fair": {"type": "float", "low": 0.1, "high": 1.0},
                          "fairness": {"type": "categorical", "choices": ["mmd"]},
                          "code": {"type": "categorical", "choices": [12, 24]}})  # fmt: skip
    spec = parse_spec(raw)
    check_runnable(spec, local=False)
    params = {"w_fair": 0.5, "fairness": "mmd", "code": 12}
    out = _task("translator", params, data, 0, 2, 64, dict(spec.model_args))
    assert out["status"] == "completed", out["error"]
    assert out["state"]["net.encoder.4.weight"].shape == (12, 128), "code=12 reached the factory"
    _save(tmp_path, out, {"family": "translator", "model": dict(spec.model_args),
                          "config": params, "seed": 0})  # fmt: skip
    tr, _ = load_model(tmp_path, factories=[model["factory"]])
    assert np.allclose(tr.transform(data.subset("test").X), np.load(tmp_path / "test_repr.npy"),
                       atol=1e-5)  # fmt: skip


def test_a_translator_factory_must_return_an_encoder_decoder_pair():
    raw = byo_spec(model={"family": "translator", "factory": "examples.tabular_resnet:make_resnet"},
                   objectives=[{"metric": "control_f1", "direction": "maximize"}],
                   space={"w_fair": {"type": "float", "low": 0.1, "high": 1.0}})  # fmt: skip
    with pytest.raises(SpecError, match=r"must return an \(encoder, decoder\) pair of "
                                        r"torch.nn.Module for the translator, but returned "
                                        r"TabularResNet"):  # fmt: skip
        check_runnable(parse_spec(raw), local=False)
