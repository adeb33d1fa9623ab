"""``restarts``: a quantized translator keeps the copy its own training objective prefers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from fairsearch.data import synthetic_embeddings
from fairsearch.families.translator import Translator
from fairsearch.families.translator._population import fit_translator_population
from fairsearch.families.translator._restarts import (
    objective_rows,
    restart_seed,
    training_objective,
)


@pytest.fixture(scope="module")
def data():
    d = synthetic_embeddings(n=900, d=12, leak=2.0, seed=5)
    return SimpleNamespace(X=np.asarray(d.X, np.float32), y=np.asarray(d.y), q=np.asarray(d.q))


_PARAMS = dict(fairness="none", quantize=8, bottleneck="4", epochs=3, batch_size=64,
               w_cells=5.0, fair_rows=256)


def _objective(t: Translator, d: SimpleNamespace) -> float:
    """The training objective of a fitted translator on all of ``d``'s rows."""
    p = t.validated_params()
    net = t.net_
    Z = net.standardise(torch.from_numpy(d.X))
    y = torch.from_numpy(np.searchsorted(t.control_classes_, d.y))
    q = torch.from_numpy(np.searchsorted(t.protected_classes_, d.q))
    return training_objective(net, p, Z, y, q, n_q=len(t.protected_classes_),
                              fair_rows=objective_rows(p, len(d.X), Z.device))


@pytest.mark.parametrize("fairness", ["none", "mmd"])
def test_restarts_keep_the_copy_with_the_lowest_training_objective(data, fairness):
    d = data
    params = {**_PARAMS, "fairness": fairness, "w_fair": 2.0, "seed": 2}
    kept = Translator(**params, restarts=3).fit(d.X, d.y, q=d.q, E_val=d.X, y_val=d.y, q_val=d.q)
    # each copy trained alone from its derived seed; the objective reads the first copy's
    # seed for its fair rows, as the restarts do
    copies = [Translator(**{**params, "seed": restart_seed(2, r)}).fit(d.X, d.y, q=d.q)
              for r in range(3)]  # fmt: skip
    values = []
    for c in copies:
        c.params["seed"] = 2  # the objective's fair rows come from the translator's own seed
        values.append(_objective(c, d))
    assert len({round(v, 6) for v in values}) == 3, values  # the copies really differ
    best = int(np.argmin(values))
    assert best != 0  # this seed's own copy is not the one kept
    np.testing.assert_allclose(kept.transform(d.X), copies[best].transform(d.X), rtol=1e-5,
                               atol=1e-5)  # fmt: skip
    assert _objective(kept, d) == pytest.approx(min(values), rel=1e-5)
    assert len(kept.history_) == params["epochs"]
    # the last history row is the kept copy's
    assert kept.history_[-1]["control_f1"] == pytest.approx(f1_score(d.y, kept.predict(d.X, q=d.q)))


def test_one_restart_is_the_plain_fit(data):
    d = data
    one = Translator(**_PARAMS, seed=4, restarts=1).fit(d.X, d.y, q=d.q)
    plain = Translator(**_PARAMS, seed=4).fit(d.X, d.y, q=d.q)
    for key, value in one.net_.state_dict().items():
        torch.testing.assert_close(value, plain.net_.state_dict()[key], rtol=0, atol=0)


@pytest.mark.parametrize(("extra", "words"), [
    ({"restarts": 0}, "restarts must be an integer >= 1"),
    ({"restarts": 2.0}, "restarts must be an integer >= 1"),
    ({"restarts": True}, "restarts must be an integer >= 1"),
    ({"restarts": 2, "quantize": 0}, "needs a quantized translator"),
    ({"restarts": 2, "fairness": "adversarial"}, "use a head-free term or restarts=1"),
])  # fmt: skip
def test_bad_restarts_are_named(data, extra, words):
    with pytest.raises(ValueError, match=words):
        Translator(**{**_PARAMS, **extra}).fit(data.X, data.y, q=data.q)


def test_a_batched_translator_with_restarts_keeps_the_copy_its_lone_fit_keeps(data):
    d = data
    members = [{**_PARAMS, "fairness": f, "w_fair": 2.0, "seed": 2, "restarts": 3}
               for f in ("none",)] + [{**_PARAMS, "w_fair": 2.0, "seed": 0, "restarts": 3}]
    together = fit_translator_population([Translator(**p) for p in members], d.X, d.y, q=d.q,
                                         E_val=d.X, y_val=d.y, q_val=d.q)  # fmt: skip
    for p, got in zip(members, together, strict=True):
        alone = Translator(**p).fit(d.X, d.y, q=d.q, E_val=d.X, y_val=d.y, q_val=d.q)
        assert isinstance(got, Translator)
        np.testing.assert_allclose(got.transform(d.X), alone.transform(d.X), rtol=1e-4, atol=1e-4)
        assert len(got.history_) == len(alone.history_) == p["epochs"]
        for a, b in zip(got.history_, alone.history_, strict=True):
            assert a.keys() == b.keys()
            np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], rtol=1e-4, atol=1e-4)
