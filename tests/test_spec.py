from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from fairsearch.spec.schema import load_spec, parse_spec
from fairsearch.spec.validated import PostSpec

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "name": "t",
    "data": {"name": "synthetic_regression", "n": 200},
    "model": "wrapper",
    "objectives": [{"metric": "mse", "direction": "minimize"},
                   {"metric": "cka", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0, "high": 10},
              "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    "search": {"algorithm": "nsga2", "trials": 4, "max_concurrent": 2, "seed": 0},
}


def spec_with(**changes):
    raw = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = raw
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return raw


@pytest.mark.parametrize("name", ["smoke_wrapper.yaml", "smoke_translator.yaml"])
def test_shipped_specs_validate(name):
    spec = load_spec(ROOT / "search_spaces" / name)
    assert spec.search.trials == 4 and spec.search.max_concurrent == 2
    assert parse_spec(spec.to_dict()) == spec  # the run folder's spec.yaml reads back the same


def test_defaults_and_post_fields():
    spec = parse_spec(BASE)
    assert spec.trial.workers == 1 and spec.trial.epochs == 30
    assert isinstance(spec.post, PostSpec) and spec.post.seeds is None
    # retrain seeds default to fresh ones: none is a seed the search selected on
    assert spec.search.training_seeds == (0, 1, 2, 3)
    assert spec.retrain_seeds == (4, 5, 6)
    assert not set(spec.retrain_seeds) & set(spec.search.training_seeds)
    raw = spec_with(post={"select": {"maximize": "mse", "subject_to": ["cka <= 0.1"]},
                          "top_k": 2, "seeds": [3], "retrain_epochs": 5, "probes": ["mlp"]})
    post = parse_spec(raw).post
    assert (post.select_maximize, post.subject_to, post.top_k, post.seeds) == (
        "mse", ("cka <= 0.1",), 2, (3,))
    assert post.retrain_epochs == 5 and post.probes == ("mlp",) and post.knee is False


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (spec_with(serch={}), r"unknown key `serch` \(did you mean 'search'\?\)"),
        (spec_with(search__trails=3), r"unknown key `search.trails` \(did you mean 'trials'\?\)"),
        (spec_with(search__trials="many"), r"`search.trials` must be an integer >= 1, but got 'many'"),
        (spec_with(search__algorithm="cmaes"),
         r"`search.algorithm` must be one of nsga2, tpe, random, gp, but got 'cmaes'"),
        (spec_with(space={"mu": {"type": "float", "low": 5, "high": 1}}),
         r"`space.mu`: `low <= high` must hold, but got \(low=5.0, high=1.0\)"),
        (spec_with(space={"lr": {"type": "float", "low": 0, "high": 1, "log": True}}),
         r"`space.lr.low` must be > 0 when `log` is true, but got \(low=0.0, log=True\)"),
        (spec_with(space={"lr": {"type": "float", "low": "a", "high": 1}}),
         r"`space.lr.low` must be a finite number, but got 'a'"),
        (spec_with(space={"mu": {"type": "float", "low": 0, "high": 1, "hgih": 2}}),
         r"unknown key `space.mu.hgih`"),
        (spec_with(objectives=[{"metric": "mes", "direction": "minimize"}]),
         r"`objectives\[0\].metric` must be one of .*but got 'mes' \(did you mean 'mse'\?\)"),
        (spec_with(objectives=[{"metric": "mse", "direction": "down"}]),
         r"`objectives\[0\].direction` must be one of minimize, maximize, but got 'down'"),
        (spec_with(space={"dependence": {"type": "categorical", "choices": ["cka", "hsci"]}}),
         r"`space.dependence.choices` must be one of .*but got 'hsci' \(did you mean 'hsic'\?\)"),
        (spec_with(space={"mu": {"type": "float", "low": 0, "high": 1,
                                 "when": {"dependence": "cka"}}}),
         r"`space.mu.when.dependence`: a condition must name a parameter of the space"),
        (spec_with(space={"muu": {"type": "float", "low": 0, "high": 1}}),
         r"unknown parameter `space.muu` \(did you mean 'mu'\?\)"),
        (spec_with(model="translater"), r"`model` must be one of wrapper, translator"),
        (spec_with(trial__gpus_per_worker=-1), r"`trial.gpus_per_worker` must be a finite number >= 0"),
        (spec_with(post={"select": {"maximize": "a", "minimize": "b"}}),
         r"`post.select` takes one of `maximize` or `minimize`, but got both"),
        (spec_with(post={"select": {"subject_to": ["cka < small"]}}),
         r"subject_to entries must read '<metric> <op> <number>'.*but got 'cka < small'"),
        (spec_with(space="no_such_space.yaml"), r"`space` names a file that does not exist"),
    ],
)
def test_bad_specs_name_key_value_and_rule(raw, match):
    with pytest.raises(ValueError, match=match):
        parse_spec(raw)


def test_translator_fairness_loss_names_checked():
    raw = spec_with(model="translator",
                    objectives=[{"metric": "control_f1", "direction": "maximize"}],
                    space={"fairness": {"type": "categorical", "choices": ["adversarial", "negce"]}})
    with pytest.raises(ValueError, match=r"`space.fairness.choices` must be one of .*'negce'"):
        parse_spec(raw)


def test_fractional_gpus_allowed(tmp_path):
    spec = parse_spec(spec_with(trial__gpus_per_worker=0.25, trial__workers=2))
    assert spec.trial.gpus_per_worker == 0.25
    with pytest.raises(ValueError, match="fraction <= 1 or a whole number"):
        parse_spec(spec_with(trial__gpus_per_worker=1.5))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec_with(search__seed=-1)))
    with pytest.raises(ValueError, match=r"`search.seed` must be an integer >= 0, but got -1"):
        load_spec(path)


def test_json_schema_accepts_shipped_specs_and_rejects_a_typo(capsys):
    import json

    import jsonschema

    from fairsearch.cli import main

    assert main(["validate", "--json-schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in ("search_spaces/names_translator.yaml", "search_spaces/adult_resnet.yaml",
                 "jobs/wrapper_full.yaml"):  # fmt: skip
        raw = yaml.safe_load(open(path))
        assert not list(validator.iter_errors(raw)), path
    raw = yaml.safe_load(open("search_spaces/smoke_wrapper.yaml"))
    raw["search"]["trails"] = 5
    errors = [e.message for e in validator.iter_errors(raw)]
    assert any("'trails' was unexpected" in e for e in errors), errors


@pytest.mark.parametrize("name", ["wrapper_mlp", "translator"])  # translator's has `fairness`
def test_a_search_space_given_as_a_spec_says_how_to_name_it(tmp_path, name):
    """A copied space file validated as a spec: one line, not an "unknown key" per parameter."""
    space = tmp_path / f"{name}.yaml"
    space.write_bytes((ROOT / "search_spaces" / f"{name}.yaml").read_bytes())
    with pytest.raises(ValueError, match=rf"{name}.yaml is a search space, not a run spec: "
                                         rf"name it from a spec as `space: {name}.yaml`") as e:
        load_spec(space)
    assert "\n" not in str(e.value) and "unknown key" not in str(e.value)
    # a spec with a stray key is still a spec: its problems are listed as before
    with pytest.raises(ValueError, match=r"`name` is required"):
        parse_spec({"data": {"name": "synthetic_regression"}, "mu": {"type": "float"}})
