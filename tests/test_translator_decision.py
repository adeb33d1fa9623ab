"""``control_decision``: a binary control head's cut of highest F1 on the training rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from fairsearch.data import synthetic_embeddings
from fairsearch.families.translator import Translator
from fairsearch.families.translator._decision import f1_cut
from fairsearch.families.translator._population import fit_translator_population


def _f1_above(margin, y, cut):
    return f1_score(y, (margin > cut).astype(int), zero_division=0)


@pytest.mark.parametrize("seed", range(5))
def test_the_cut_has_the_highest_f1_of_every_cut(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.25).astype(int)
    # few distinct values (as a quantized translator's cells give) and many ties
    margin = np.round(rng.normal(size=300) + 1.2 * y, 1) - 0.8
    cut = f1_cut(margin, y)
    values = np.unique(margin)
    every = np.r_[values[0] - 1.0, (values[:-1] + values[1:]) / 2, values[-1] + 1.0]
    best = max(_f1_above(margin, y, c) for c in every)
    assert _f1_above(margin, y, cut) == pytest.approx(best, abs=1e-12)
    assert _f1_above(margin, y, cut) >= _f1_above(margin, y, 0.0)
    assert not np.any(margin == cut)  # the cut falls between rows, never on one


def test_one_class_keeps_the_argmax():
    margin = np.linspace(-1, 1, 20)
    assert f1_cut(margin, np.zeros(20, int)) == 0.0
    assert f1_cut(margin, np.ones(20, int)) == 0.0


@pytest.fixture(scope="module")
def imbalanced():
    d = synthetic_embeddings(n=1200, d=16, leak=2.0, seed=3)
    y = np.asarray(d.y)
    keep = (y == 0) | (np.arange(len(y)) % 4 == 0)  # about 1 in 5 rows positive
    return SimpleNamespace(X=np.asarray(d.X, np.float32)[keep], y=y[keep], q=np.asarray(d.q)[keep])


_PARAMS = dict(fairness="none", quantize=8, bottleneck="4", epochs=3, batch_size=64, seed=1)


def test_the_decision_moves_only_the_class_1_bias_and_raises_the_training_f1(imbalanced):
    d = imbalanced
    assert 0.1 < d.y.mean() < 0.3
    tuned = Translator(**_PARAMS).fit(d.X, d.y, q=d.q)
    plain = Translator(**_PARAMS, control_decision="argmax").fit(d.X, d.y, q=d.q)
    a, b = tuned.net_.state_dict(), plain.net_.state_dict()
    for key in a:
        if key != "control_head.bias":
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert a["control_head.bias"][0] == b["control_head.bias"][0]
    with torch.no_grad():  # the plain head's margins on the training rows give the cut
        logits = plain.net_.control_head(torch.from_numpy(plain._translate_std(d.X)))
    cut = f1_cut((logits[:, 1] - logits[:, 0]).numpy(), d.y)
    assert cut != 0.0
    torch.testing.assert_close(a["control_head.bias"][1], b["control_head.bias"][1] - cut)
    f1_tuned = f1_score(d.y, tuned.predict(d.X, q=d.q))
    f1_plain = f1_score(d.y, plain.predict(d.X, q=d.q))
    assert f1_tuned >= f1_plain
    # the last history row reads the head as predict does
    val = Translator(**_PARAMS).fit(d.X, d.y, q=d.q, E_val=d.X, y_val=d.y, q_val=d.q)
    assert val.history_[-1]["control_f1"] == pytest.approx(f1_tuned)


def test_a_batched_member_draws_the_cut_its_lone_fit_draws(imbalanced):
    d = imbalanced
    members = [{**_PARAMS, "seed": s, "w_cells": 10.0} for s in (1, 2)]
    together = fit_translator_population([Translator(**p) for p in members], d.X, d.y, q=d.q)
    for p, got in zip(members, together, strict=True):
        alone = Translator(**p).fit(d.X, d.y, q=d.q)
        torch.testing.assert_close(got.net_.control_head.bias, alone.net_.control_head.bias,
                                   rtol=1e-4, atol=1e-5)  # fmt: skip
        # a row on a cell's boundary may fall either side by float rounding (so it may with the
        # argmax too): the predictions agree on all but a few rows
        assert np.mean(got.predict(d.X, q=d.q) != alone.predict(d.X, q=d.q)) <= 0.01
