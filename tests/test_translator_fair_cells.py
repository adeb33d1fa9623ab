"""Quantized (``quantize``) and group-aware (``q_input``) translators and their terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairsearch.data import synthetic_embeddings
from fairsearch.families import train_and_evaluate
from fairsearch.families.translator import (
    Translator,
    cell_balance,
    conditional_sw,
    load_translator,
    save_translator,
)
from fairsearch.families.translator.family import TranslatorFamily
from fairsearch.probes.bound import cell_codes, certified_bound
from fairsearch.probes.ladder.fresh import probe_scores


@pytest.fixture(scope="module")
def data():
    return synthetic_embeddings(n=1500, d=16, leak=2.0, seed=0)


def _fit(data, **kw):
    tr = data.subset("train")
    params = {"epochs": 10, "bottleneck": "16", "lr": 3e-3, "probe_every": 0, **kw}
    return Translator(**params).fit(tr.X, tr.y, q=tr.q)


def test_cell_balance_is_half_the_tv_within_each_class():
    # class 0: group 0 all in cell 0, group 1 all in cell 1 -> per-group TV to the mean = 0.5
    assign = torch.eye(2)[[0, 0, 1, 1, 0, 1, 0, 1]]
    q = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    # class 1: both groups half in each cell -> 0; weights 1/2 each
    assert float(cell_balance(assign, q, y, n_groups=2)) == pytest.approx(0.25)
    assert float(cell_balance(assign[[0, 2, 4, 6]], q[[0, 2, 4, 6]], y[[0, 2, 4, 6]],
                              n_groups=2)) == pytest.approx(0.25)  # fmt: skip


def test_conditional_sw_sees_a_spread_difference_and_not_equal_groups():
    torch.manual_seed(0)
    n = 2000
    q, y = torch.randint(0, 2, (n,)), torch.randint(0, 2, (n,))
    z = torch.randn(n, 4)
    same = float(conditional_sw(z, q, y))
    z2 = z * torch.where(q == 1, 2.0, 0.5)[:, None]  # equal means, different spread
    assert float(conditional_sw(z2, q, y)) > 20 * same
    assert same < 0.03  # estimation noise of 500-row quantiles


def test_quantized_output_takes_at_most_k_values_and_round_trips(tmp_path, data):
    t = _fit(data, fairness="none", quantize=8, w_cells=1.0, fair_rows=512)
    te = data.subset("test")
    Z = t.transform(te.X)
    assert len(np.unique(Z, axis=0)) <= 8
    codes = cell_codes(Z)
    cells = t.cells(te.X)
    assert codes is not None and cells.max() < 8
    # the same cell gives the same vector, and different vectors come from different cells
    assert len(np.unique(np.stack([codes, cells], 1), axis=0)) == len(np.unique(codes))
    back = load_translator(save_translator(t, tmp_path / "m"))
    np.testing.assert_array_equal(back.transform(te.X), Z)
    np.testing.assert_array_equal(back.predict(te.X), t.predict(te.X))


def test_cell_balance_lowers_the_certified_bound(data):
    te = data.subset("test")
    bounds = {}
    for w in (0.0, 20.0):
        t = _fit(data, fairness="none", quantize=16, w_cells=w, fair_rows=1024, seed=1)
        bounds[w] = certified_bound(t.cells(te.X), te.q).value
    assert bounds[0.0] > 0.75  # q leaks into the cells without the term
    assert bounds[20.0] < bounds[0.0] - 0.1


def test_group_aware_translator_needs_q_and_hides_the_leak(data):
    tr, te = data.subset("train"), data.subset("test")
    t = _fit(data, fairness="conditional_sw", w_fair=10.0, q_input=True, fair_rows=1024)
    with pytest.raises(ValueError, match=r"reads q \(q_input=true\): pass q=.*got None"):
        t.transform(te.X)
    Zt, Zs = t.transform(tr.X, q=tr.q), t.transform(te.X, q=te.q)
    plain = _fit(data, fairness="none", q_input=True)
    Pt, Ps = plain.transform(tr.X, q=tr.q), plain.transform(te.X, q=te.q)
    leak = probe_scores(Pt, tr.q, Ps, te.q, kind="gbt")["bacc"]
    assert leak > 0.7
    assert probe_scores(Zt, tr.q, Zs, te.q, kind="gbt")["bacc"] < leak - 0.15
    assert probe_scores(Zt, tr.y, Zs, te.y)["f1"] > 0.8


@pytest.mark.parametrize("config", [
    {"fairness": "none", "quantize": 8, "w_cells": 5.0, "fair_rows": 512},
    {"fairness": "conditional_sw", "q_input": True, "w_fair": 5.0, "fair_rows": 512},
])  # fmt: skip
def test_family_trains_and_evaluates_the_new_options(data, config):
    from fairsearch.families import TrialSettings

    seen: list[dict] = []
    m = train_and_evaluate(TranslatorFamily(), config, data, TrialSettings(epochs=2),
                           seen.append)  # fmt: skip
    assert 0.0 <= m["adversary_bacc"] <= 1.0 and len(seen) == 2


@pytest.mark.parametrize(("params", "match"), [
    ({"quantize": 1}, r"quantize must be 0 \(off\) or a number of cells >= 2, but got 1"),
    ({"quantize": -2}, r"quantize must be an integer >= 0, but got -2"),
    ({"q_input": "yes"}, r"q_input must be true or false, but got 'yes'"),
    ({"w_cells": -1.0}, r"w_cells must be a finite number >= 0, but got -1.0"),
])  # fmt: skip
def test_bad_new_parameters_are_named(data, params, match):
    tr = data.subset("train")
    with pytest.raises(ValueError, match=match):
        Translator(**params).fit(tr.X, tr.y, q=tr.q)


def test_cells_of_an_unquantized_translator_is_refused(data):
    t = _fit(data, fairness="none", epochs=1)
    with pytest.raises(ValueError, match=r"cells needs a quantized translator .* quantize=0"):
        t.cells(data.subset("test").X)


def test_adult_space_searches_the_new_options_with_their_conditions():
    from pathlib import Path

    import optuna
    import yaml

    from fairsearch.spec.space import parse_space, sample

    raw = yaml.safe_load((Path(__file__).parents[1] / "search_spaces/adult_translator.yaml")
                         .read_text())["space"]  # fmt: skip
    space = parse_space(raw)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        cfg = sample(study.ask(), space)
        Translator(**cfg).validated_params()  # every sampled configuration is a valid one
        assert cfg["quantize"] > 0 and cfg["restarts"] > 1 and "w_cells" in cfg
        assert ("w_fair" in cfg) == (cfg["fairness"] != "none")
        seen.add((cfg["quantize"], cfg["q_input"]))
    assert seen == {(64, False), (64, True), (128, False), (128, True)}


def test_family_outputs_of_a_quantized_translator_get_a_certified_bound(data):
    from fairsearch.families import TrialSettings
    from fairsearch.probes.bound import bound_row

    family = TranslatorFamily()
    train, test = data.subset("train"), data.subset("test")
    cfg = {"fairness": "none", "quantize": 8, "w_cells": 20.0, "fair_rows": 512}
    fitted = family.fit(cfg, train, test, TrialSettings(epochs=5), lambda row: None)
    state, meta = family.state(fitted)
    restored = family.restore(state, meta, {"config": cfg})
    rep = family.outputs(restored, test).representation  # what retrain saves for the audit
    row = bound_row("m", rep.astype(np.float64), np.asarray(test.q))
    assert row is not None and 0.5 <= row["value"] < 1.0
    plain = family.fit({"fairness": "none"}, train, test, TrialSettings(epochs=1), lambda r: None)
    assert bound_row("m", family.outputs(plain, test).representation, np.asarray(test.q)) is None
