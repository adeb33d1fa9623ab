"""The translator's search leak objective measures leakage as the audit does.

A leak planted where the old objective's probes (a logistic and an untuned MLP fitted on train
rows) cannot see it, but boosted trees can: ``q`` follows a fine stripe pattern of one feature
among noise features. The search objective must report it, and stay near chance on noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from fairsearch.data import Dataset, split_train_val, validate_dataset
from fairsearch.families import TrialSettings
from fairsearch.families.translator import TranslatorFamily
from fairsearch.families.translator.family import (
    LEAK_FOLDS,
    LEAK_PROBES,
    OBJECTIVE_GRIDS,
    leak_probes,
)
from fairsearch.probes.ladder import cross_fit
from fairsearch.probes.ladder.fresh import leak_scores, probe_scores
from fairsearch.spec.schema import parse_spec
from fairsearch.spec.sections import SPACES_DIR

N_TRAIN, N_VAL, STRIPES = 2000, 800, 12


def _planted(seed: int, leak: bool) -> Dataset:
    """Ten features: feature 0 uniform on [0, 1), the rest standard normal noise. With ``leak``,
    ``q`` is the parity of feature 0's stripe (12 stripes of width 1/12); else a coin flip."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + 2 * N_VAL
    X = rng.standard_normal((n, 10)).astype(np.float32)
    u = rng.random(n)
    X[:, 0] = u
    q = (np.floor(u * STRIPES) % 2).astype(np.int64) if leak else rng.integers(0, 2, n)
    split = np.array(["train"] * N_TRAIN + ["val"] * N_VAL + ["test"] * N_VAL)
    return validate_dataset(Dataset("planted", X, rng.integers(0, 2, n), q, split,
                                    "classification", "categorical"))  # fmt: skip


class _Identity:
    """A stand-in translator that hands its inputs on unchanged (the leak stays in)."""

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, np.float32)


@pytest.fixture(scope="module")
def planted():
    return split_train_val(_planted(0, leak=True), 0)


def test_old_probes_miss_the_planted_leak_and_boosted_trees_find_it(planted):
    train, val = planted
    old = {k: probe_scores(train.X, train.q, val.X, val.q, kind=k, max_train=2000, seed=0)["bacc"]
           for k in ("logistic", "mlp")}  # the old objective's probes, as it fitted them
    assert max(old.values()) < 0.6, old
    assert probe_scores(train.X, train.q, val.X, val.q, kind="gbt", seed=0)["bacc"] > 0.9


def test_search_objective_reports_the_planted_leak(planted):
    train, val = planted
    m = TranslatorFamily().evaluate(_Identity(), val, train=train, seed=0)
    assert m["adversary_bacc"] > 0.9, m
    assert m["adversary_bacc_gbt"] > 0.9
    assert max(m["adversary_bacc_logistic"], m["adversary_bacc_mlp"]) < 0.65  # gbt found it
    assert {f"adversary_bacc_{f}" for f in LEAK_PROBES} <= set(m)


def test_search_objective_stays_near_chance_on_noise():
    train, val = split_train_val(_planted(1, leak=False), 0)
    m = TranslatorFamily().evaluate(_Identity(), val, train=train, seed=0)
    # on 800 noise rows a cross-fitted tuned probe spreads about chance: the logistic's score over
    # eight noise draws ran from 0.446 to 0.531 with 5 folds and from 0.439 to 0.530 with 3
    for key in ("adversary_bacc", *(f"adversary_bacc_{f}" for f in LEAK_PROBES)):
        assert abs(m[key] - 0.5) < 0.08, (key, m[key])


def test_leak_scores_is_the_nested_worst_case_and_keeps_each_kind(planted):
    _, val = planted
    out = leak_scores(val.X, val.q, kinds=("logistic", "gbt"), seed=0)
    assert set(out["by_kind"]) == {"logistic", "gbt"}
    assert out["max"] == max(out["by_kind"].values())
    assert out["bacc"] <= out["max"] + 0.02  # nested selection: never much above the best kind
    assert out["bacc"] > 0.9 and 0.0 <= out["f1"] <= 1.0


def test_leak_scores_shrinks_its_folds_on_tiny_splits_and_scores_a_constant_below_that():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((30, 3))
    q = np.array([0] * 24 + [1] * 6)  # 6 rows of class 1: 3 folds, not 5
    assert 0.0 <= leak_scores(Z, q, kinds=("logistic",), folds=5)["bacc"] <= 1.0
    q = np.array([0] * 27 + [1] * 3)  # too few rows of class 1 to cross-fit
    out = leak_scores(Z, q, kinds=("logistic", "gbt"))
    assert out["bacc"] == 0.5 and out["by_kind"] == {"logistic": 0.5, "gbt": 0.5}


def test_leak_scores_grows_its_folds_where_a_class_is_too_small_for_the_mlps_inner_fits():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((30, 3))
    q = np.array([0, 1] * 15)  # 3 folds leave the MLP's early stopping one row for two classes
    with pytest.raises(ValueError, match="test_size"):
        cross_fit(Z, q, "mlp", folds=3, engine="sklearn", grid=OBJECTIVE_GRIDS["mlp"])
    out = leak_scores(Z, q, kinds=("mlp",), folds=3, engine="sklearn", grids=OBJECTIVE_GRIDS)
    assert 0.0 <= out["bacc"] <= 1.0 and set(out["by_kind"]) == {"mlp"}
    assert len(out["selected"]) == 7  # one kind chosen per outer fold: the folds grew to 7


def test_leak_probes_come_from_the_model_section_and_reach_the_fitted_model(planted):
    train, val = planted
    settings = TrialSettings(epochs=1, model={"leak_probes": ["gbt"]})
    fitted = TranslatorFamily().fit({"fairness": "none", "bottleneck": "8"}, train, val,
                                    settings, lambda row: None)  # fmt: skip
    assert fitted.leak_probes == ("gbt",)
    m = TranslatorFamily().evaluate(fitted, val, train=train, seed=0)
    assert "adversary_bacc_gbt" in m and "adversary_bacc_logistic" not in m
    default = TranslatorFamily().fit({"fairness": "none"}, train, val,
                                     TrialSettings(epochs=1, batch_size=128, seed=0),
                                     lambda row: None)  # fmt: skip
    assert default.leak_probes == LEAK_PROBES


def _names_spec(model):
    raw = yaml.safe_load((SPACES_DIR / "names_translator.yaml").read_text())
    raw["model"] = model
    return parse_spec(raw, base=Path(SPACES_DIR))


def test_leak_probe_choices_are_the_ladders_kinds_and_loading_the_family_needs_no_sklearn():
    import subprocess
    import sys

    from fairsearch.families.translator.family import LEAK_PROBE_CHOICES
    from fairsearch.probes.registry import PROBE_KINDS

    assert ("majority", *LEAK_PROBE_CHOICES) == PROBE_KINDS
    code = ("import sys; import fairsearch.families.translator.family; "
            "print('sklearn' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_spec_model_leak_probes_round_trips():
    spec = _names_spec({"family": "translator", "leak_probes": ["gbt", "knn"]})
    assert spec.model_args == {"leak_probes": ["gbt", "knn"]}
    assert spec.to_dict()["model"] == {"family": "translator", "leak_probes": ["gbt", "knn"]}
    assert leak_probes(spec.model_args) == ("gbt", "knn")


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ({"family": "translator", "leak_probes": ["tree"]},
         r"`model.leak_probes` must be a non-empty list of distinct probe families from "
         r"\['logistic', 'mlp', 'gbt', 'knn', 'svm'\], but got \['tree'\]"),
        ({"family": "translator", "leak_probes": []}, r"but got \[\]"),
        ({"family": "translator", "leak_probes": ["gbt", "gbt"]}, r"but got \['gbt', 'gbt'\]"),
        ({"family": "translator", "leak_probes": "gbt"}, r"but got 'gbt'"),
        ({"family": "translator", "leak_probe": ["gbt"]},
         r"unknown key `model.leak_probe` \(did you mean 'leak_probes'\?\)"),
        ({"family": "wrapper", "leak_probes": ["gbt"]},
         r"unknown key `model.leak_probes`; allowed keys are family, factory, factory_args$"),
    ],
)
def test_bad_leak_probes_are_named(model, match):
    with pytest.raises(ValueError, match=match):
        _names_spec(model)


def test_a_retrained_translator_with_leak_probes_records_and_reloads(tmp_path):
    from fairsearch.analysis.retrain.units import save_unit as _save
    from fairsearch.analysis.retrain.units import train_unit as _task
    from fairsearch.analysis.retrain.weights import load_model

    data = _planted(0, leak=True)
    params, model = {"fairness": "none", "bottleneck": "8"}, {"leak_probes": ["gbt"]}
    out = _task("translator", params, data, 0, 1, 128, model)
    assert out["status"] == "completed", out["error"]
    assert 0.0 <= out["metrics"]["adversary_bacc_gbt"] <= 1.0
    assert "adversary_bacc_mlp" not in out["metrics"]
    assert "adversary_bacc_gbt" in out["test_metrics"]  # the test rows, cross-fitted alike
    _save(tmp_path, out, {"family": "translator", "model": model, "config": params, "seed": 0})
    loaded, config = load_model(tmp_path)
    assert config["model"] == model and loaded.transform(data.X[:5]).shape == (5, 10)


def test_a_smaller_probe_grid_is_checked_and_tunes_only_its_points():
    from fairsearch.probes.ladder import kind_grid, make_probe

    key_h, key_a = "estimator__mlpclassifier__hidden_layer_sizes", "estimator__mlpclassifier__alpha"
    full = kind_grid("mlp")
    assert len(full) == 6
    small = kind_grid("mlp", {key_h: [(64,)], key_a: [1e-4, 1e-1]})
    assert small == [p for p in full if p[key_h] == (64,)]
    assert kind_grid("mlp", {key_a: [1e-1]}) == [{key_h: (64,), key_a: 1e-1}]  # others: first
    assert make_probe("mlp", 0, grid={key_a: [1e-1]}).param_grid == {key_h: [(64,)], key_a: [1e-1]}
    with pytest.raises(ValueError, match="alpha of a mlp probe must take values from"):
        kind_grid("mlp", {key_a: [0.5]})
    with pytest.raises(ValueError, match="grid has the keys"):
        kind_grid("logistic", {key_a: [1e-4]})


def test_the_objective_tunes_its_mlp_over_its_own_grid_with_either_engine(planted):
    """``OBJECTIVE_GRIDS`` reaches the objective's MLP, and the batched engine fits the same
    smaller grid as scikit-learn does."""
    from fairsearch.families.translator.family import OBJECTIVE_GRIDS

    train, val = planted
    Z, q = np.asarray(val.X)[:400], np.asarray(val.q)[:400]
    kw = {"kinds": ("mlp",), "folds": 3, "seed": 0, "grids": OBJECTIVE_GRIDS}
    fits = {e: leak_scores(Z, q, engine=e, **kw) for e in ("sklearn", "batched")}
    assert fits["sklearn"]["by_kind"] == fits["batched"]["by_kind"]
    m = TranslatorFamily().evaluate(_Identity(), val, train=train, seed=0)
    own = leak_scores(val.X, val.q, kinds=("mlp",), folds=LEAK_FOLDS, seed=0, engine="sklearn",
                      grids=OBJECTIVE_GRIDS)  # fmt: skip
    assert m["adversary_bacc_mlp"] == own["by_kind"]["mlp"]
