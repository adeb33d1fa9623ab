"""``fairness.criterion``: the spec key, the gaps of decisions against fairlearn's, the
conditional penalty of separation, and the wrapper reporting what the criterion asks for."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from fairsearch.data import synthetic_embeddings
from fairsearch.families import TrialSettings, get_family, train_one
from fairsearch.measures.conditional import conditional_dependence, population_conditional
from fairsearch.measures.dependence import dependence_loss
from fairsearch.measures.fairness import (
    demographic_parity_gap,
    equal_opportunity_gap,
    equalized_odds_gap,
)
from fairsearch.spec.json_schema import spec_json_schema
from fairsearch.spec.schema import parse_spec

BASE = {
    "name": "t",
    "data": {"name": "synthetic_embeddings", "n": 300},
    "model": "wrapper",
    "objectives": [{"metric": "accuracy", "direction": "maximize"},
                   {"metric": "cka", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0, "high": 10}},
}


def _spec(**top):
    raw = copy.deepcopy(BASE)
    raw.update(top)
    return raw


# ----------------------------------------------------------------------------- the spec key
def test_criterion_defaults_to_independence_and_the_spec_reads_as_before():
    spec = parse_spec(BASE)
    assert spec.criterion == "independence"
    assert "fairness" not in spec.to_dict()  # a run folder's spec.yaml is unchanged
    assert spec.criterion_setting() == {}


@pytest.mark.parametrize("criterion", ["separation", "opportunity"])
def test_a_criterion_is_kept_and_its_gaps_may_be_objectives(criterion):
    raw = _spec(fairness={"criterion": criterion},
                objectives=[{"metric": "accuracy", "direction": "maximize"},
                            {"metric": "eo_gap", "direction": "minimize"},
                            {"metric": "eopp_gap", "direction": "minimize"}])
    spec = parse_spec(raw)
    assert spec.criterion == criterion
    assert spec.to_dict()["fairness"] == {"criterion": criterion}
    assert parse_spec(spec.to_dict()) == spec
    assert spec.criterion_setting() == {"criterion": criterion}


@pytest.mark.parametrize(("raw", "match"), [
    (_spec(fairness={"criterion": "equalised_odds"}),
     r"`fairness.criterion` must be one of independence, separation, opportunity, but got "
     r"'equalised_odds'"),
    (_spec(fairness={"criterion": "seperation"}), r"but got 'seperation' \(did you mean "
                                                  r"'separation'\?\)"),
    (_spec(fairness={"critrion": "separation"}),
     r"unknown key `fairness.critrion` \(did you mean 'criterion'\?\); allowed keys are criterion"),
    (_spec(fairness="separation"), r"`fairness` must be a mapping, but got 'separation'"),
    (_spec(model="translator", fairness={"criterion": "opportunity"}),
     r"`fairness.criterion` must be one of independence, separation: the translator family "
     r"trains for no other, but got 'opportunity'"),
    (_spec(data={"name": "synthetic_regression"}, fairness={"criterion": "separation"},
           objectives=[{"metric": "mse", "direction": "minimize"}]),
     r"`fairness.criterion: separation` conditions on the true label, which needs a "
     r"classification task, but the data's task is 'regression'"),
    (_spec(objectives=[{"metric": "eo_gap", "direction": "minimize"}]),
     r"`objectives\[0\].metric` must be one of accuracy, f1, cka, dp_gap, trivial, but got "
     r"'eo_gap'"),
])
def test_bad_criterion_names_the_key_the_value_and_the_choices(raw, match):
    with pytest.raises(ValueError, match=match):
        parse_spec(raw)


def test_a_misspelt_criterion_is_one_problem_not_two():
    raw = _spec(fairness={"criterion": "seperation"},
                objectives=[{"metric": "eo_gap", "direction": "minimize"}])
    with pytest.raises(ValueError) as info:
        parse_spec(raw)
    assert len(info.value.errors) == 1


def test_json_schema_knows_the_fairness_section():
    import jsonschema

    validator = jsonschema.Draft202012Validator(spec_json_schema())
    good = _spec(fairness={"criterion": "separation"},
                 objectives=[{"metric": "eo_gap", "direction": "minimize"}])
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors(_spec(fairness={"criterion": "parity"})))


# ----------------------------------------------------------------------------- gaps vs fairlearn
@pytest.mark.parametrize("groups", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gaps_equal_fairlearn_on_random_decisions(groups, seed):
    from fairlearn.metrics import (
        demographic_parity_difference,
        equal_opportunity_difference,
        equalized_odds_difference,
    )

    rng = np.random.default_rng(seed)
    n = 600
    q = rng.integers(0, groups, size=n)
    y = (rng.random(n) < 0.3 + 0.1 * q / groups).astype(int)
    pred = (rng.random(n) < 0.2 + 0.5 * y + 0.05 * q).astype(int)
    label = np.array([f"g{v}" for v in q])  # fairlearn takes any labels; ours codes them
    assert equalized_odds_gap(y, pred, label) == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=label), abs=1e-12)
    assert equal_opportunity_gap(y, pred, label) == pytest.approx(
        equal_opportunity_difference(y, pred, sensitive_features=label), abs=1e-12)
    assert demographic_parity_gap(pred, label) == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=label), abs=1e-12)
    assert equalized_odds_gap(y, pred, label) >= equal_opportunity_gap(y, pred, label) > 0


def test_multiclass_gaps_are_the_worst_class_one_against_rest():
    from fairlearn.metrics import equal_opportunity_difference, equalized_odds_difference

    rng = np.random.default_rng(3)
    n, k = 900, 3
    q = rng.integers(0, 4, size=n)
    y = rng.integers(0, k, size=n)
    pred = np.where(rng.random(n) < 0.6 + 0.05 * q, y, rng.integers(0, k, size=n))
    eo = max(equalized_odds_difference(y == c, pred == c, sensitive_features=q) for c in range(k))
    eopp = max(equal_opportunity_difference(y == c, pred == c, sensitive_features=q)
               for c in range(k))
    assert equalized_odds_gap(y, pred, q, n_classes=k) == pytest.approx(eo, abs=1e-12)
    assert equal_opportunity_gap(y, pred, q, n_classes=k) == pytest.approx(eopp, abs=1e-12)


# ----------------------------------------------------------------------------- the penalty
def _given_y(n: int, seed: int, *, dependent: bool):
    """``q`` depends on ``y`` (base rates 0.2 and 0.8); the prediction ``f`` depends on ``y`` and,
    when ``dependent``, on ``q`` within each class too."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.5).long()
    q = (torch.rand(n, generator=g) < 0.2 + 0.6 * y).long()
    f = 2.0 * y + 0.5 * torch.randn(n, generator=g) + (1.5 * q if dependent else 0.0)
    return f[:, None], q, y


@pytest.mark.parametrize("name", ["cka", "hsic"])
def test_conditional_measure_is_zero_when_q_is_independent_given_y_closed_form(name):
    """Within each class, both groups hold the very same predictions: every group's kernel mean
    is the class's own, so the conditional HSIC (and CKA) is 0 exactly, although q and the
    prediction are dependent through y."""
    fn = dependence_loss(name, sigma_f=1.0, q_kernel="delta")
    base = torch.tensor([0.1, 0.4, 0.7, 1.3])
    f = torch.cat([base, base, base + 3.0, base + 3.0, base + 3.0, base + 3.0])[:, None]
    y = torch.tensor([0] * 8 + [1] * 16)
    q = torch.tensor([0] * 4 + [1] * 4 + [0] * 4 + [1] * 4 + [2] * 8)
    whole = float(fn(f, q))
    given_y = float(conditional_dependence(fn, f, q, y, criterion="separation"))
    assert whole > 0.02  # the effect exists unconditionally ...
    assert abs(given_y) < 1e-6  # ... and is gone given y


def test_conditional_cka_near_zero_when_independent_given_y_and_clearly_above_otherwise():
    fn = dependence_loss("cka", sigma_f="median", q_kernel="delta")
    f, q, y = _given_y(1500, 0, dependent=False)
    whole = float(fn(f, q))
    independent = float(conditional_dependence(fn, f, q, y, criterion="separation"))
    f2, q2, y2 = _given_y(1500, 0, dependent=True)
    dependent = float(conditional_dependence(fn, f2, q2, y2, criterion="separation"))
    assert whole > 0.2
    assert independent < 0.01
    assert dependent > 0.1
    opportunity = float(conditional_dependence(fn, f2, q2, y2, criterion="opportunity"))
    only_positive = float(fn(f2[y2 == 1], q2[y2 == 1]))
    assert opportunity == pytest.approx(only_positive)


def test_separation_weights_each_class_by_its_share():
    fn = dependence_loss("hsic", sigma_f=1.0, q_kernel="delta")
    f, q, y = _given_y(400, 1, dependent=True)
    expect = sum(float((y == c).float().mean()) * float(fn(f[y == c], q[y == c])) for c in (0, 1))
    assert float(conditional_dependence(fn, f, q, y, criterion="separation")) == pytest.approx(expect)
    with pytest.raises(ValueError, match=r"criterion must be one of independence, separation, "
                                         r"opportunity, but got 'parity'"):
        conditional_dependence(fn, f, q, y, criterion="parity")


def test_population_conditional_is_each_member_alone():
    fns = [dependence_loss("cka", sigma_f=s, q_kernel="delta") for s in (0.5, 2.0)]
    rows = [_given_y(200, s, dependent=True) for s in (0, 1)]
    f, q, y = (torch.stack([r[i] for r in rows]) for i in range(3))
    together = population_conditional(fns, criterion="separation")(f, q, y)
    alone = [float(conditional_dependence(fns[s], *rows[s], criterion="separation")) for s in (0, 1)]
    assert together.tolist() == pytest.approx(alone)


# ----------------------------------------------------------------------------- the wrapper
def test_wrapper_reports_equalized_odds_gaps_only_when_the_criterion_asks():
    fam = get_family("wrapper")
    data = synthetic_embeddings(n=300, d=6, seed=0, n_protected=3)
    config = {"mu": 1.0, "hidden": "8"}
    plain = train_one(fam, config, data, TrialSettings(epochs=1, batch_size=64))
    assert "eo_gap" not in plain["metrics"] and "eo_gap" not in plain["test_metrics"]
    assert set(plain["metrics"]) == set(fam.metrics("classification"))
    out = train_one(fam, config, data, TrialSettings(epochs=1, batch_size=64,
                                                     criterion="separation"))
    for part in ("metrics", "test_metrics"):
        assert {"eo_gap", "eopp_gap"} <= set(out[part])
        assert 0.0 <= out[part]["eopp_gap"] <= out[part]["eo_gap"] <= 1.0
    assert set(out["metrics"]) == set(fam.metrics("classification", "separation"))
    assert set(out["metrics"]) <= set(fam.metric_info)
    restored = fam.restore(out["state"], out["meta"], {"config": config, "criterion": "separation"})
    assert restored.criterion == "separation"


def test_population_of_separation_trains_like_each_member_alone():
    from fairsearch.families import Member

    fam = get_family("wrapper")
    data = synthetic_embeddings(n=240, d=6, seed=1)
    train, val = data.subset("train"), data.subset("val")
    settings = TrialSettings(epochs=2, batch_size=32, criterion="separation")
    members = [Member({"mu": mu, "hidden": "8"}, seed) for mu, seed in ((2.0, 0), (5.0, 1))]
    together = fam.fit_population(members, train, val, settings, [lambda _r: None] * 2)
    for member, fitted in zip(members, together, strict=True):
        alone = fam.fit(member.config, train, val, TrialSettings(
            epochs=2, batch_size=32, criterion="separation", seed=member.seed), lambda _r: None)
        assert fitted.criterion == "separation"
        np.testing.assert_allclose(fitted.predict_proba(val.X), alone.predict_proba(val.X),
                                   atol=1e-4)
        assert [r.dependence for r in fitted.history_] == pytest.approx(
            [r.dependence for r in alone.history_], rel=1e-3, abs=1e-6)


def test_wrapper_refuses_a_criterion_its_data_cannot_take():
    from fairsearch.data import synthetic_regression

    fam = get_family("wrapper")
    data = synthetic_regression(n=200, seed=0, n_train=150)
    with pytest.raises(ValueError, match=r"`fairness.criterion: separation` conditions on the "
                                         r"true label.*'regression'"):
        train_one(fam, {}, data, TrialSettings(epochs=1, batch_size=64, criterion="separation"))


# ----------------------------------------------------------------------------- the verdict
def test_the_verdict_and_the_report_name_a_criterion_other_than_independence():
    from types import SimpleNamespace

    from fairsearch.analysis.decide.compute import run_criterion
    from fairsearch.analysis.decide.text import render_text
    from fairsearch.analysis.decide.verdict import Verdict, verdict_from_json, verdict_to_json
    from fairsearch.report.sections import _verdict_section

    plain = Verdict("deployable", "every check passes", **run_criterion(SimpleNamespace(spec={})))
    assert "criterion" not in verdict_to_json(plain)  # verdict.json reads as before
    assert "fairness" not in render_text(plain)
    f = SimpleNamespace(spec={"fairness": {"criterion": "separation"}})
    v = Verdict("deployable", "every check passes", **run_criterion(f))
    assert verdict_from_json(verdict_to_json(v)) == v
    text = render_text(v).splitlines()
    assert text[1] == ("  fairness: separation: q is not recoverable from the prediction given "
                       "the true label (equalized odds)")
    _, html, md = _verdict_section(v)
    assert "Fairness criterion: separation" in html and "Fairness criterion: separation" in md


# ----------------------------------------------------------------------------- through the stages
@pytest.mark.slow
def test_the_criterion_reaches_the_search_and_the_retrained_seeds(tmp_path):
    import json

    from fairsearch.analysis.pareto.stage import run_pareto
    from fairsearch.analysis.retrain.runners import InProcess
    from fairsearch.analysis.retrain.stage import run_retrain
    from fairsearch.analysis.retrain.weights import load_model
    from fairsearch.search.engine import search_work
    from fairsearch.search.recorder import Recorder, write_spec
    from fairsearch.search.study import open_study

    assert "criterion" not in search_work(parse_spec(BASE)).keywords["settings"]
    spec = parse_spec(_spec(
        data={"name": "synthetic_embeddings", "n": 300, "d": 6},
        fairness={"criterion": "separation"},
        objectives=[{"metric": "accuracy", "direction": "maximize"},
                    {"metric": "eo_gap", "direction": "minimize"}],
        space={"mu": {"type": "float", "low": 0.0, "high": 4.0},
               "hidden": {"type": "categorical", "choices": ["8"]}},
        search={"algorithm": "random", "trials": 2, "max_concurrent": 2},
        trial={"epochs": 1, "batch_size": 64}, post={"top_k": 1, "seeds": [0]}))
    assert search_work(spec).keywords["settings"]["criterion"] == "separation"
    run = tmp_path / "run"
    run.mkdir()
    write_spec(spec, run / "spec.yaml")
    rec = Recorder(open_study(spec, run), spec, run)
    for i, item in enumerate([rec.ask() for _ in range(2)]):
        rec.tell(0, {"key": item["key"], "status": "completed",
                     "metrics": {"accuracy": 0.7 + 0.1 * i, "eo_gap": 0.1 + 0.1 * i}})
    rec.close()
    run_pareto(run)
    table = run_retrain(run, quiet=True, runner=InProcess(device="cpu"))
    assert (table["status"] == "completed").all()
    assert {"metric.eo_gap", "test.eo_gap", "metric.eopp_gap", "test.eopp_gap"} <= set(table)
    folder = next((run / "retrain").glob("*/seed-*"))
    assert json.loads((folder / "config.json").read_text())["criterion"] == "separation"
    model, _ = load_model(folder)
    assert model.criterion == "separation"


# ----------------------------------------------------------------------------- shipped specs
def test_the_shipped_equalized_odds_and_intersection_specs_validate():
    from fairsearch.spec import SPACES_DIR, load_spec

    eo = load_spec(SPACES_DIR / "adult_eo.yaml")
    assert eo.criterion == "separation" and {o.metric for o in eo.objectives} >= {"eo_gap"}
    cells = load_spec(SPACES_DIR / "adult_race_sex.yaml")
    assert cells.data["protected"] == ["race", "sex"]
    for spec in (eo, cells):
        assert parse_spec(spec.to_dict()) == spec


# ----------------------------------------------------------------------------- the translator
def test_translator_under_separation_trains_a_loss_within_control_classes():
    raw = {"name": "t", "data": {"name": "synthetic_embeddings", "n": 300}, "model": "translator",
           "fairness": {"criterion": "separation"},
           "objectives": [{"metric": "control_f1", "direction": "maximize"}],
           "space": {"fairness": {"type": "categorical",
                                  "choices": ["conditional_sw", "adversarial"]}}}
    with pytest.raises(ValueError, match=r"`space.fairness.choices` must be among "
                                         r"conditional_mmd, conditional_sw under "
                                         r"`fairness.criterion: separation`, but got 'adversarial'"):
        parse_spec(raw)
    with pytest.raises(ValueError, match=r"`fairness.criterion` must be one of independence, "
                                         r"separation: the translator family"):
        parse_spec({**raw, "fairness": {"criterion": "opportunity"}})
    fam = get_family("translator")
    data = synthetic_embeddings(n=300, d=6, seed=0)
    train, val = data.subset("train"), data.subset("val")
    settings = TrialSettings(epochs=1, batch_size=64, criterion="separation")
    fitted = fam.fit({"bottleneck": "4"}, train, val, settings, lambda _r: None)
    assert fitted.params["fairness"] == "conditional_mmd"  # the criterion's default loss
    scores = fam.evaluate(fitted, val, train=train, seed=0)
    assert "adversary_bacc_given_y" in scores
    assert set(scores) <= set(fam.metrics("classification", "separation")) <= set(fam.metric_info)
    assert 0.0 <= scores["adversary_bacc_given_y"] <= 1.0
    assert "adversary_bacc_given_y" not in fam.metrics("classification")
    restored = fam.restore(*fam.state(fitted), {"config": {"bottleneck": "4"},
                                                "criterion": "separation"})
    assert restored.criterion == "separation"
    with pytest.raises(ValueError, match=r"`fairness` must be one of conditional_mmd, "
                                         r"conditional_sw under `fairness.criterion: separation`"):
        fam.fit({"fairness": "adversarial"}, train, val, settings, lambda _r: None)


def test_opportunity_trains_on_a_binary_target_and_is_refused_for_more_classes():
    from fairsearch.measures.fairness import criterion_problem

    fam = get_family("wrapper")
    data = synthetic_embeddings(n=240, d=6, seed=2)
    out = train_one(fam, {"mu": 1.0, "hidden": "8"}, data,
                    TrialSettings(epochs=1, batch_size=64, criterion="opportunity"))
    assert {"eo_gap", "eopp_gap"} <= set(out["test_metrics"])
    assert out["history"][0]["dependence"] > 0  # the penalty is measured within class 1
    assert criterion_problem("opportunity", "classification", 2) is None
    assert criterion_problem("opportunity", "classification", 3) == (
        "`fairness.criterion: opportunity` looks within the positive class of a binary target, "
        "but the target has 3 classes; use `separation`")
    assert criterion_problem("separation", "classification", 3) is None


def test_group_rates_of_the_decisions_name_the_worst_off_group():
    from fairlearn.metrics import MetricFrame, true_positive_rate

    from fairsearch.analysis.decide.groups import group_rates, groups_sentence
    from fairsearch.analysis.decide.verdict import Verdict, verdict_from_json, verdict_to_json

    rng = np.random.default_rng(5)
    n = 1500
    q = rng.integers(0, 3, size=n)
    y = rng.integers(0, 2, size=n)
    pred = np.where(y == 1, rng.random(n) < np.array([0.9, 0.6, 0.8])[q], rng.random(n) < 0.2)
    names = ("a × x", "b × x", "c × y")
    out = group_rates(y, pred.astype(int), q, names, criterion="separation", n_boot=200)
    tpr = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=pred.astype(int),
                      sensitive_features=q).by_group
    for g, name in enumerate(names):
        value, lo, hi = out["rates"]["true_positive_rate"][name]
        assert value == pytest.approx(float(tpr[g])) and lo <= value <= hi
    assert out["worst"] == "b × x"  # the group the decisions miss most often
    assert set(out["rates"]) == {"true_positive_rate", "false_positive_rate"}
    only = group_rates(y, pred.astype(int), q, names, criterion="opportunity", n_boot=50)
    assert set(only["rates"]) == {"true_positive_rate"}
    assert groups_sentence(out).startswith("worst-off group (lowest true-positive rate on test): "
                                           "b × x; true-positive rate: a × x 0.")
    close = {"rates": {"true_positive_rate": {"F": [0.55, 0.50, 0.60], "M": [0.54, 0.51, 0.56]}},
             "worst": "M"}
    assert "the order is not resolved" in groups_sentence(close)
    # independence equalises the rate of positive decisions: its worst-off group is the one
    # that gets the fewest positive decisions, whatever its label
    from fairlearn.metrics import selection_rate

    dp = group_rates(y, pred.astype(int), q, names, criterion="independence", n_boot=50)
    sel = MetricFrame(metrics=selection_rate, y_true=y, y_pred=pred.astype(int),
                      sensitive_features=q).by_group
    assert set(dp["rates"]) == {"selection_rate"}
    assert dp["worst"] == names[int(np.argmin(sel.to_numpy()))]
    assert groups_sentence(dp).startswith("worst-off group (lowest rate of positive decisions")
    v = Verdict("deployable", "x", criterion="separation", groups=out)
    assert verdict_from_json(verdict_to_json(v)) == v
    assert "groups" not in verdict_to_json(Verdict("deployable", "x"))
