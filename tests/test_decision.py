"""The decision's baselines: the trivial predictor and per-group thresholds on the unconstrained
model (the choice itself is tested on run folders in test_report.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from fairsearch.analysis.decide.baseline import threshold_baseline
from fairsearch.analysis.decide.choice import UTILITY_MARGIN, gain
from fairsearch.data import synthetic_regression
from fairsearch.families import get_family

SPEC = {
    "name": "tb",
    "data": {"name": "adult", "protected": "sex", "max_rows": 3000, "seed": 0},
    "model": "wrapper",
    "objectives": [{"metric": "f1", "direction": "maximize"},
                   {"metric": "dp_gap", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0.0, "high": 10.0}},
    "search": {"algorithm": "random", "trials": 2, "max_concurrent": 1, "seed": 0},
    "trial": {"epochs": 5, "batch_size": 128},
    "post": {"select": {"maximize": "f1", "subject_to": ["dp_gap <= 0.05"]}},
}


def test_per_group_thresholds_close_the_gap_of_the_unconstrained_model(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    b = threshold_baseline(tmp_path, {"mu": 3.0}, ["dp_gap <= 0.05"])
    assert b is not None
    assert b.unconstrained["dp_gap"] > 0.08  # the unconstrained model treats the groups apart
    assert b.thresholds["dp_gap"] < b.unconstrained["dp_gap"] / 2  # the thresholds close it
    assert b.rule_holds == (b.thresholds["dp_gap"] <= 0.05)
    cost, text = b.sentences("f1", "maximize", {"f1": 0.0}, ["dp_gap <= 0.05"])
    assert "does not beat it on F1" in text and "a cost of" in cost
    # a knee rule has no target and no constraint: the thresholds are shown on the objectives
    _, knee = b.sentences(None, "maximize", {"f1": 0.0}, [], ["f1", "dp_gap"])
    assert f"on test: F1 {b.thresholds['f1']:.3f}, " in knee and "on test: ;" not in knee


@pytest.mark.slow
def test_thresholds_of_a_separation_run_close_the_equalized_odds_gap(tmp_path: Path) -> None:
    spec = {**SPEC, "fairness": {"criterion": "separation"},
            "objectives": [{"metric": "f1", "direction": "maximize"},
                           {"metric": "eo_gap", "direction": "minimize"}],
            "post": {"select": {"maximize": "f1", "subject_to": ["eo_gap <= 0.05"]}}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    b = threshold_baseline(tmp_path, {"mu": 3.0}, ["eo_gap <= 0.05"])
    assert b is not None and b.constraint == "equalized_odds"
    assert {"eo_gap", "eopp_gap"} <= set(b.unconstrained) & set(b.thresholds)
    assert b.unconstrained["eo_gap"] > 0.05  # the effect exists before the thresholds
    assert b.thresholds["eo_gap"] < b.unconstrained["eo_gap"]
    _, text = b.sentences("f1", "maximize", {"f1": 0.0}, ["eo_gap <= 0.05"])
    assert "ThresholdOptimizer, equalized odds, fitted on validation" in text
    assert "equalized-odds gap" in text


def test_no_threshold_baseline_for_a_regression(tmp_path: Path) -> None:
    spec = {**SPEC, "data": {"name": "synthetic_regression", "n": 800},
            "objectives": [{"metric": "mse", "direction": "minimize"},
                           {"metric": "cka", "direction": "minimize"}],
            "post": {"select": {"minimize": "mse"}}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert threshold_baseline(tmp_path, {"mu": 1.0}, []) is None


@pytest.mark.parametrize("family", ["wrapper", "translator"])
def test_the_majority_class_scores_as_the_family_reports(family: str) -> None:
    """A near-constant classifier (class 1 for 96% of rows) gains less than the margin over the
    majority class on accuracy, though its F1 looks fine."""
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.6).astype(int)
    pred = np.where(rng.random(2000) < 0.96, 1, y)
    fam = get_family(family)
    model = fam.utility_scores(y, pred, task="classification", n_classes=2)
    trivial = fam.utility_scores(y, np.ones_like(y), task="classification", n_classes=2)
    acc = "accuracy" if family == "wrapper" else "control_acc"
    assert gain(acc, model[acc], trivial[acc]) < UTILITY_MARGIN
    f1 = "f1" if family == "wrapper" else "control_f1"
    assert model[f1] > 0.7


def test_a_mean_predictor_gains_nothing_on_mse() -> None:
    y = np.asarray(synthetic_regression(n=300, seed=0, n_train=200).y)
    fam = get_family("wrapper")
    mean = fam.utility_scores(y, np.full_like(y, y.mean()), task="regression", n_classes=0)
    good = fam.utility_scores(y, y + 0.1, task="regression", n_classes=0)
    assert gain("mse", mean["mse"], mean["mse"]) == 0.0
    assert gain("mse", good["mse"], mean["mse"]) > UTILITY_MARGIN
