"""Batched translator populations: a member equals the same configuration and seed trained alone
(float32, ``allclose`` with ``rtol=1e-4, atol=1e-5`` on every parameter and every per-epoch
history value after 3 epochs on 240 rows), and a member that diverges leaves its neighbours
unchanged.

The configurations are well conditioned on purpose: a linear guard behind a two-layer bottleneck
with a large ``w_fair`` moves by about 1e-4 after one epoch when trained alone on inputs changed
by 1e-7 (relative), and so does its batched member; that is float32 rounding, not the batch."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from fairsearch.data import synthetic_embeddings
from fairsearch.families import Member, TrialSettings, get_family
from fairsearch.families.translator import Translator, _population
from fairsearch.families.translator._population import (
    batchable,
    fit_translator_population,
    population_key,
)
from fairsearch.nets import DivergenceError, MemberStopped

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def data():
    d = synthetic_embeddings(n=400, d=16, leak=2.0, seed=0)
    return d.subset("train"), d.subset("val")


def _fit_alone(params, train, val) -> Translator:
    return Translator(**params).fit(train.X, train.y, q=train.q, E_val=val.X, y_val=val.y,
                                    q_val=val.q)  # fmt: skip


def _together(members, train, val):
    return fit_translator_population([Translator(**p) for p in members], train.X, train.y,
                                     q=train.q, E_val=val.X, y_val=val.y, q_val=val.q)  # fmt: skip


def _assert_same(got: Translator, want: Translator) -> None:
    g, w = got.net_.state_dict(), want.net_.state_dict()
    assert g.keys() == w.keys()
    for k in w:
        torch.testing.assert_close(g[k], w[k], rtol=RTOL, atol=ATOL, msg=k)
    assert len(got.history_) == len(want.history_)
    for rg, rw in zip(got.history_, want.history_, strict=True):
        assert rg.keys() == rw.keys()
        np.testing.assert_allclose([rg[k] for k in rw], list(rw.values()), rtol=RTOL, atol=ATOL)


_SHARED = {
    # the main job's three kinds (search_spaces/names_translator.yaml), at a tiny size
    "linear_guard": dict(fairness="linear_guard", fair_rows=100000, bottleneck="12"),
    "cka": dict(fairness="cka", bottleneck="12-6"),
    "quantized": dict(fairness="none", quantize=4, fair_rows=100000, bottleneck="6"),
    # fair rows drawn each step, and an encoder that reads q
    "sampled_rows_q_input": dict(fairness="linear_guard", fair_rows=64, q_input=True,
                                 bottleneck="6"),
}
_MEMBERS = [
    dict(seed=0, w_control=1.0, w_fair=1.0, w_rec=1.0, lr=1e-3, lr_schedule="cosine"),
    dict(seed=1, w_control=0.3, w_fair=3.0, w_rec=2.0, lr=3e-3, w_cells=100.0),
    dict(seed=2, w_control=3.0, w_fair=0.1, w_rec=0.1, lr=3e-4, weight_decay=1e-3),
]


@pytest.mark.parametrize("shape", list(_SHARED))
def test_member_equals_the_same_configuration_trained_alone(data, shape):
    train, val = data
    members = [{**_SHARED[shape], **m, "epochs": 3, "batch_size": 64, "probe_every": 2}
               for m in _MEMBERS]
    together = _together(members, train, val)
    for params, got in zip(members, together, strict=True):
        assert isinstance(got, Translator)
        want = _fit_alone(params, train, val)
        _assert_same(got, want)
        np.testing.assert_array_equal(got.predict(val.X, q=val.q), want.predict(val.X, q=val.q))
    # the members differ: each trained with its own seed and parameters
    assert not torch.allclose(together[0].net_.control_head.weight,
                              together[1].net_.control_head.weight)  # fmt: skip


def test_a_diverging_member_leaves_its_neighbours_unchanged(data):
    train, val = data
    shared = {**_SHARED["linear_guard"], "epochs": 3, "batch_size": 64, "probe_every": 0}
    members = [{**shared, **_MEMBERS[0]}, {**shared, "seed": 5, "lr": 1e6,
                                           "loss_bound": 50.0}, {**shared, **_MEMBERS[2]}]  # fmt: skip
    together = _together(members, train, val)
    assert isinstance(together[1], DivergenceError)
    with pytest.raises(DivergenceError) as alone:
        _fit_alone(members[1], train, val)
    assert (together[1].epoch, together[1].step) == (alone.value.epoch, alone.value.step)
    for i in (0, 2):
        _assert_same(together[i], _fit_alone(members[i], train, val))


def test_a_stopped_member_leaves_the_batch_and_the_others_train_as_alone(data, monkeypatch):
    train, val = data
    widths: list[int] = []
    step = _population._PopulationLoop._step

    def counted(self, idx, *args, **kwargs):
        widths.append(int(idx.shape[0]))  # members in this step's batched forward pass
        return step(self, idx, *args, **kwargs)

    monkeypatch.setattr(_population._PopulationLoop, "_step", counted)

    def stop_after_first_epoch(row) -> None:  # successive halving stops member 1 at its rung
        raise MemberStopped(int(row["epoch"]))

    members = [{**_SHARED["quantized"], **m, "epochs": 3, "batch_size": 64, "probe_every": 2}
               for m in _MEMBERS]
    together = fit_translator_population(
        [Translator(**p) for p in members], train.X, train.y, q=train.q, E_val=val.X,
        y_val=val.y, q_val=val.q, reports=[None, stop_after_first_epoch, None])  # fmt: skip
    steps = len(widths) // 3
    assert widths == [3] * steps + [2] * (2 * steps)
    assert isinstance(together[1], MemberStopped)
    for i in (0, 2):
        _assert_same(together[i], _fit_alone(members[i], train, val))


def test_population_key_and_what_batches():
    a = Translator(fairness="cka", lr=1e-3, w_fair=2.0, seed=0)
    b = Translator(fairness="cka", lr=3e-3, w_fair=9.0, seed=4, lr_schedule="cosine")
    assert population_key(a.params) == population_key(b.params)
    assert population_key(a.params) != population_key(Translator(fairness="cka", bottleneck="8").params)
    assert batchable(a)
    assert not batchable(Translator(fairness="adversarial"))
    assert not batchable(Translator(fairness="conditional_sw"))
    with pytest.raises(ValueError, match="one population key"):
        fit_translator_population([a, Translator(fairness="hsic")], np.zeros((4, 2)), [0, 1, 0, 1],
                                  q=[0, 0, 1, 1])  # fmt: skip


def test_fit_population_batches_seeds_and_falls_back_for_the_rest(data, monkeypatch):
    """Through the family contract: the search's seeds of one configuration train batched, and
    an adversarial member beside them member by member; every history equals the lone fit's."""
    import fairsearch.families.translator._population as population

    train, val = data
    family = get_family("translator")
    settings = TrialSettings(epochs=2, batch_size=64, seed=0, model={"batched": "always"})
    configs = [dict(fairness="cka", bottleneck="6", w_fair=3.0)] * 2 + [
        dict(fairness="adversarial", bottleneck="6")]
    members = [Member(c, s) for c, s in zip(configs, (0, 1, 0), strict=True)]
    calls: list[int] = []
    real = population.fit_translator_population
    monkeypatch.setattr(population, "fit_translator_population",
                        lambda trs, *a, **k: calls.append(len(trs)) or real(trs, *a, **k))
    histories: list[list[dict[str, float]]] = [[] for _ in members]
    fitted = family.fit_population(members, train, val, settings, [h.append for h in histories])
    assert calls == [2]
    for m, f, h in zip(members, fitted, histories, strict=True):
        alone: list[dict[str, float]] = []
        want = family.fit(m.config, train, val, dataclasses.replace(settings, seed=m.seed),
                          alone.append)  # fmt: skip
        _assert_same(f, want)
        assert len(h) == len(alone) == 2
        assert all(math.isfinite(r["control_f1"]) for r in h)


def test_model_batched_chooses_the_path(data, monkeypatch):
    """``auto`` trains batched on a GPU only (measured slower on one CPU thread); a bad value is
    named."""
    import fairsearch.families.translator._population as population

    train, val = data
    family = get_family("translator")
    calls: list[int] = []
    monkeypatch.setattr(population, "fit_translator_population",
                        lambda trs, *a, **k: calls.append(len(trs)) or [])
    members = [Member(dict(fairness="cka", bottleneck="6"), s) for s in (0, 1)]
    settings = TrialSettings(epochs=1, batch_size=64, model={"batched": "never"})
    assert len(family.fit_population(members, train, val, settings, [lambda r: None] * 2)) == 2
    assert calls == []
    assert family.check_model_options({"batched": "always"}) == {"batched": "always"}
    with pytest.raises(ValueError, match=r"`model.batched` must be one of .* but got 'yes'"):
        family.check_model_options({"batched": "yes"})
