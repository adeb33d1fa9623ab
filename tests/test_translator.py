"""Translator: fairness losses, gradient reversal, divergence, probes, trial entry point, I/O."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from fairsearch.data import synthetic_embeddings
from fairsearch.families import TrialSettings, train_and_evaluate
from fairsearch.families.translator import (
    METRICS,
    LeaceTranslator,
    Translator,
    TranslatorNet,
    conditional_mmd,
    fairness_term,
    grad_reverse,
    linear_guard,
    load_translator,
    mmd_rbf,
    save_translator,
)
from fairsearch.families.translator._model import mlp
from fairsearch.families.translator.family import LEAK_PROBE_CHOICES, LEAK_PROBES
from fairsearch.nets import DivergenceError
from fairsearch.probes.ladder.fresh import probe_scores


@pytest.fixture(scope="module")
def data():
    return synthetic_embeddings(n=400, d=16, leak=2.0, seed=0)


def _net_and_batch(seed: int = 0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 2, (64,), generator=g)
    e = torch.randn(64, 8, generator=g) + 1.5 * q[:, None].float()
    net = TranslatorNet(8, 2, bottleneck=(6,))
    head = mlp(8, 2, depth=1, width=16)
    return net, head, e, q


def _sgd_step(net, term, lr=0.05):
    """One SGD step of ``term()`` on the translator's parameters only; the term before and after."""
    before = term()
    net.zero_grad()
    before.backward()
    with torch.no_grad():
        for p in net.parameters():
            if p.grad is not None:
                p -= lr * p.grad
    return float(before.detach()), float(term().detach())


def _translator_step(net, kind, head, e, q, lr=0.05):
    def term():
        _, z_fair, _ = net(e)
        return fairness_term(kind, z_fair, q, head=head, grl_lambda=1.0)

    return _sgd_step(net, term, lr)


@pytest.mark.parametrize(
    "kind", ["adversarial", "negative_ce", "cka", "hsic", "linear_guard", "mmd"]
)
def test_one_step_lowers_the_fairness_term(kind):
    net, head, e, q = _net_and_batch()
    before, after = _translator_step(net, kind, head, e, q)
    assert after < before


def test_confusion_step_moves_the_adversary_towards_uniform():
    net, head, e, q = _net_and_batch()

    def term():
        _, z_fair, _ = net(e)
        return fairness_term("adversarial", z_fair, q, head=head, adversary_loss="confusion")

    before, after = _sgd_step(net, term)
    assert after < before


def test_gradient_reversal_step_raises_the_heads_cross_entropy():
    net, head, e, q = _net_and_batch()
    before, after = _translator_step(net, "gradient_reversal", head, e, q)
    assert after > before  # the head's CE is what the translator is pushed to *increase*


def test_gradient_reversal_flips_and_scales_translator_gradients():
    net, head, e, q = _net_and_batch()
    lam = 2.5

    def grads(reverse: bool):
        net.zero_grad()
        head.zero_grad()
        _, z_fair, _ = net(e)
        z = grad_reverse(z_fair, lam) if reverse else z_fair
        F.cross_entropy(head(z), q).backward()
        return ([p.grad.clone() for p in net.encoder.parameters()],
                [p.grad.clone() for p in head.parameters()])  # fmt: skip

    plain_net, plain_head = grads(False)
    rev_net, rev_head = grads(True)
    for a, b in zip(plain_net, rev_net, strict=True):
        torch.testing.assert_close(b, -lam * a)
    for a, b in zip(plain_head, rev_head, strict=True):
        torch.testing.assert_close(b, a)  # the head itself still minimises the CE


def test_negative_ce_diverges_and_raises_with_location(data):
    tr = Translator(fairness="negative_ce", w_fair=10.0, lr=0.05, epochs=50, batch_size=64,
                    loss_bound=100.0, probe_every=0)  # fmt: skip
    with pytest.raises(DivergenceError, match="translator loss diverged") as info:
        tr.fit(data.X, data.y, q=data.q)
    err = info.value
    assert err.step > 0 and err.epoch >= 0
    assert not math.isfinite(err.value) or abs(err.value) > 100.0


def test_fit_records_history_with_fresh_probe(data):
    tr, va = data.subset("train"), data.subset("val")
    rows = []
    t = Translator(fairness="cka", epochs=3, probe_every=2, w_fair=1.0)
    t.fit(tr.X, tr.y, q=tr.q, E_val=va.X, y_val=va.y, q_val=va.q, on_epoch_end=rows.append)
    assert len(rows) == len(t.history_) == 3
    for key in ("loss", "control_f1", "control_acc", "reconstruction", "adversary_f1", "adversary_bacc"):
        assert key in rows[0]
    assert math.isnan(rows[0]["adversary_bacc"])  # probes at epochs 2 and 3 (the last) only
    assert 0.0 <= rows[1]["adversary_bacc"] <= 1.0 and 0.0 <= rows[2]["adversary_bacc"] <= 1.0
    Z = t.transform(va.X)
    assert Z.shape == va.X.shape and Z.dtype == np.float32
    assert set(np.unique(t.predict(va.X))) <= {0, 1}


def test_the_fresh_probe_runs_at_the_rungs_and_the_last_epoch_and_never_moves_training(data):
    """By default the per-epoch fresh probe scores only the halving rungs the search passes
    (``TrialSettings.rungs``) and the last epoch; where it runs changes no weight."""
    from fairsearch.families import get_family

    tr, va = data.subset("train"), data.subset("val")
    family = get_family("translator")
    config = {"fairness": "cka", "w_fair": 1.0, "bottleneck": "8"}
    settings = TrialSettings(epochs=4, batch_size=64, seed=3, rungs=(1, 2))
    fitted, rows = [], []
    for every in (None, 1):
        t = family._unfitted({**config, **({"probe_every": every} if every else {})}, tr, settings)
        assert t.probe_at == (1, 2)
        rows.append([])
        fitted.append(t.fit(tr.X, tr.y, q=tr.q, E_val=va.X, y_val=va.y, q_val=va.q,
                            on_epoch_end=rows[-1].append))  # fmt: skip
    probed = [[math.isfinite(r["adversary_bacc"]) for r in run] for run in rows]
    assert probed == [[True, True, False, True], [True] * 4]
    for a, b in zip(fitted[0].net_.state_dict().values(), fitted[1].net_.state_dict().values(),
                    strict=True):  # fmt: skip
        assert torch.equal(a, b)
    assert rows[0][3]["adversary_bacc"] == rows[1][3]["adversary_bacc"]
    alone = Translator(**config, epochs=4, batch_size=64, seed=3).fit(
        tr.X, tr.y, q=tr.q, E_val=va.X, y_val=va.y, q_val=va.q)
    assert [math.isfinite(r["adversary_bacc"]) for r in alone.history_] == [False] * 3 + [True]


def test_cka_translator_removes_the_leak_a_fresh_probe_sees(data):
    tr, va = data.subset("train"), data.subset("val")
    before = probe_scores(tr.X, tr.q, va.X, va.q)["bacc"]
    t = Translator(fairness="cka", epochs=20, w_fair=10.0, w_rec=0.1, lr=3e-3, probe_every=0,
                   batch_size=64)  # fmt: skip
    t.fit(tr.X, tr.y, q=tr.q)
    after = probe_scores(t.transform(tr.X), tr.q, t.transform(va.X), va.q)["bacc"]
    control = probe_scores(t.transform(tr.X), tr.y, t.transform(va.X), va.y)["f1"]
    assert before > 0.75  # the leak is there to begin with
    assert after < 0.6
    assert control > 0.6


def test_linear_guard_is_the_linear_probes_r2_and_zero_for_equal_class_means():
    g = torch.Generator().manual_seed(0)
    q = torch.randint(0, 2, (500,), generator=g)
    z = torch.randn(500, 5, generator=g, dtype=torch.float64) + 0.8 * q[:, None]
    # binary q: the R^2 of least-squares regression of q on z (with intercept)
    X = torch.cat([z, torch.ones(500, 1, dtype=z.dtype)], 1)
    qf = q.to(z.dtype)
    resid = qf - X @ torch.linalg.lstsq(X, qf[:, None]).solution[:, 0]
    r2 = 1 - resid.pow(2).sum() / (qf - qf.mean()).pow(2).sum()
    torch.testing.assert_close(linear_guard(z, q, ridge=0.0), r2, rtol=1e-4, atol=1e-6)
    # invariant to an invertible linear map, even one that shrinks the leaking direction
    A = torch.diag(torch.tensor([1e-3, 1.0, 5.0, 1.0, 1.0], dtype=z.dtype))
    torch.testing.assert_close(linear_guard(z @ A, q, ridge=0.0), r2, rtol=1e-4, atol=1e-6)
    # equal class means -> 0 (centre each group)
    zc = z.clone()
    for k in (0, 1):
        zc[q == k] -= zc[q == k].mean(0)
    assert float(linear_guard(zc, q)) < 1e-12


@pytest.mark.parametrize("k", [2, 3])
def test_linear_guard_of_a_linear_layers_output_is_computed_from_its_input(k):
    """``linear_guard(h, q, weight=W)`` is the guard of ``h @ W + b`` (wider than ``h``, so its
    covariance is singular and the ridge matters) in value and in gradient."""
    g = torch.Generator().manual_seed(k)
    q = torch.randint(0, k, (400,), generator=g)
    h = (torch.randn(400, 6, generator=g, dtype=torch.float64) + 0.5 * q[:, None]).requires_grad_()
    W = (torch.randn(6, 20, generator=g, dtype=torch.float64)).requires_grad_()
    b = torch.randn(20, generator=g, dtype=torch.float64)
    full = linear_guard(h @ W + b, q, n_classes=k)
    narrow = linear_guard(h, q, n_classes=k, weight=W)
    assert float(full) > 0.05  # a real leak, ridge included
    torch.testing.assert_close(narrow, full, rtol=1e-6, atol=1e-9)
    for a, b_ in zip(torch.autograd.grad(full, (h, W)), torch.autograd.grad(narrow, (h, W)),
                     strict=True):  # fmt: skip
        torch.testing.assert_close(b_, a, rtol=1e-5, atol=1e-9)


def test_the_guard_reads_the_last_layers_input_only_where_the_output_is_linear_in_it():
    from torch import nn

    from fairsearch.families.translator._model import TranslatorNet
    from fairsearch.families.translator._stacked import StackedTranslatorNet

    plain = TranslatorNet(8, 2, bottleneck=(6, 3))
    assert plain.linear_output and StackedTranslatorNet([plain, plain]).linear_output
    quantized = TranslatorNet(8, 2, bottleneck=(3,), quantize=4)
    assert not quantized.linear_output
    assert not StackedTranslatorNet([quantized, quantized]).linear_output
    squashed = TranslatorNet(8, 2, bottleneck=(3,), autoencoder=(
        nn.Sequential(nn.Linear(8, 3)), nn.Sequential(nn.Linear(3, 8), nn.Tanh())))
    assert not squashed.linear_output
    z, q1h = torch.randn(5, 8), None
    assert squashed.fair_parts(z, q1h, "linear_guard")[2] is None  # the whole output instead
    h, _, weight = plain.fair_parts(z, q1h, "linear_guard")
    assert h.shape == (5, 6) and weight.shape == (6, 8)


def test_linear_guard_translator_blinds_a_fresh_linear_probe_and_keeps_control(data):
    tr, va = data.subset("train"), data.subset("val")
    assert probe_scores(tr.X, tr.q, va.X, va.q)["bacc"] > 0.75  # the leak is there to begin with
    control_before = probe_scores(tr.X, tr.y, va.X, va.y)["f1"]
    t = Translator(fairness="linear_guard", w_fair=100.0, w_rec=1.0, fair_rows=10_000,
                   lr=3e-3, lr_schedule="cosine", epochs=40, batch_size=64, bottleneck="16",
                   probe_every=0)  # fmt: skip
    t.fit(tr.X, tr.y, q=tr.q)
    Zt, Zv = t.transform(tr.X), t.transform(va.X)
    qt = torch.from_numpy(np.unique(tr.q, return_inverse=True)[1])
    # the training rows' class means coincide (train R^2 of the linear probe ~ 0) ...
    assert float(linear_guard(torch.from_numpy(t._translate_std(tr.X)).double(), qt)) < 1e-4
    # ... so a fresh logistic probe trained on them is at chance on held-out rows (80 of them)
    assert abs(probe_scores(Zt, tr.q, Zv, va.q)["bacc"] - 0.5) < 0.08
    assert probe_scores(Zt, tr.y, Zv, va.y)["f1"] > min(0.7, control_before - 0.1)


def test_leace_erases_linear_information(data):
    tr, va = data.subset("train"), data.subset("val")
    assert probe_scores(tr.X, tr.q, va.X, va.q)["bacc"] > 0.75
    er = LeaceTranslator().fit(tr.X, tr.y, q=tr.q)
    assert probe_scores(er.transform(tr.X), tr.q, er.transform(va.X), va.q)["bacc"] < 0.6


def test_save_load_round_trip(tmp_path, data):
    tr = data.subset("train")
    t = Translator(fairness="adversarial", epochs=1, probe_every=0).fit(tr.X, tr.y, q=tr.q)
    folder = save_translator(t, tmp_path / "tr")
    assert (folder / "config.json").exists() and (folder / "weights.pt").exists()
    loaded = load_translator(folder)
    np.testing.assert_allclose(loaded.transform(tr.X), t.transform(tr.X), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(tr.X), t.predict(tr.X))


@pytest.mark.parametrize("fairness", ["gradient_reversal", "hsic", "leace"])
def test_train_and_evaluate_returns_metrics_and_reports(data, fairness):
    rows = []
    settings = TrialSettings(epochs=2, batch_size=64, seed=0)
    config = {"fairness": fairness, "w_fair": 1.0, "bottleneck": "16-8", "grl_lambda": 1.0,
              "batch_size": 128.0}  # fmt: skip
    out = train_and_evaluate("translator", config, data, settings, rows.append)
    probed = {f"adversary_bacc_{f}" for f in LEAK_PROBES}
    assert set(out) == set(METRICS) - {f"adversary_bacc_{f}" for f in LEAK_PROBE_CHOICES} | probed
    assert all(math.isfinite(v) for v in out.values())
    assert 0.0 <= out["cka"] <= 1.0
    assert len(rows) == (1 if fairness == "leace" else 2)


# ----------------------------------------------------------------------------- input validation
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"fairness": "nope"}, "fairness must be one of"),
        ({"bottleneck": "60-x"}, "bottleneck must be positive layer sizes"),
        ({"w_fair": -1.0}, "w_fair must be a finite number >= 0"),
        ({"lr": 0.0}, "lr must be a number > 0"),
        ({"adversary_every": 0}, "adversary_every must be an integer >= 1"),
        ({"activation": "softsign"}, "activation must be one of"),
        ({"adversary_loss": "kl"}, "adversary_loss must be 'negative_ce' or 'confusion'"),
        ({"lr_schedule": "step"}, "lr_schedule must be 'constant' or 'cosine'"),
        ({"fair_rows": -1}, "fair_rows must be an integer >= 0"),
        ({"adversary_count": 0}, "adversary_count must be an integer >= 1"),
        ({"adversary_reset_every": -2}, "adversary_reset_every must be an integer >= 0"),
        ({"adversary_control": "yes"}, "adversary_control must be true or false"),
        ({"control_decision": "auc"}, "control_decision must be one of"),
    ],
)
def test_bad_parameters_are_named(data, params, match):
    with pytest.raises(ValueError, match=match):
        Translator(epochs=1, **params).fit(data.X, data.y, q=data.q)


def test_bad_inputs_are_named(data):
    X, y, q = data.X, data.y, data.q
    with pytest.raises(ValueError, match="unknown Translator parameter"):
        Translator(mu=1.0)
    with pytest.raises(ValueError, match="E must be a 2-D"):
        Translator(epochs=1).fit(X[:, 0], y, q=q)
    with pytest.raises(ValueError, match="q must be 1-D with one label per row"):
        Translator(epochs=1).fit(X, y, q=q[:-1])
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="E must be finite, but 1 rows"):
        Translator(epochs=1).fit(bad, y, q=q)
    with pytest.raises(ValueError, match="q needs at least 2 classes"):
        Translator(epochs=1).fit(X, y, q=np.zeros_like(q))
    with pytest.raises(ValueError, match="E_val needs y_val and q_val"):
        Translator(epochs=1).fit(X, y, q=q, E_val=X)
    with pytest.raises(ValueError, match="E_val must have 16 columns"):
        Translator(epochs=1).fit(X, y, q=q, E_val=X[:, :3], y_val=y, q_val=q)
    with pytest.raises(RuntimeError, match="not fitted yet"):
        Translator().transform(X)


def test_trial_rejects_bad_config_and_data(data):
    settings = TrialSettings(epochs=1, batch_size=64, seed=0)
    with pytest.raises(ValueError, match="unknown translator config key"):
        train_and_evaluate("translator", {"mu": 1.0}, data, settings, lambda r: None)
    regression = dataclasses.replace(data, task="regression", y=data.y.astype(np.float32))
    with pytest.raises(ValueError, match="needs a classification task"):
        train_and_evaluate("translator", {}, regression, settings, lambda r: None)


# ----------------------------------------------------------------------------- MMD, floor, K > 2
def _groups(n: int, k: int, shift: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, k, (n,), generator=g)
    z = torch.randn(n, 6, generator=g, dtype=torch.float64)
    return z + shift * (q == 1)[:, None].to(z.dtype), q


@pytest.mark.parametrize("k", [2, 3])
def test_mmd_is_about_zero_for_identical_groups_and_positive_for_shifted_ones(k):
    same = float(mmd_rbf(*_groups(600, k, 0.0)))
    shifted = float(mmd_rbf(*_groups(600, k, 1.0)))
    assert abs(same) < 5e-3
    assert shifted > 10 * max(abs(same), 1e-3)


def test_conditional_mmd_is_about_zero_when_q_depends_only_on_y():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (800,), generator=g)
    flip = torch.rand(800, generator=g) < 0.2
    q = torch.where(flip, 1 - y, y)  # q follows y, nothing else
    z = torch.randn(800, 6, generator=g, dtype=torch.float64) + 2.0 * y[:, None]
    assert float(mmd_rbf(z, q)) > 0.05  # marginally the groups differ (through y) ...
    assert abs(float(conditional_mmd(z, q, y))) < 5e-3  # ... but not within a control class
    z_leak = z + 1.0 * q[:, None]
    assert float(conditional_mmd(z_leak, q, y)) > 0.02


@pytest.mark.parametrize("fairness", ["mmd", "conditional_mmd", "linear_guard", "adversarial"])
def test_multiclass_q_trains_and_evaluates(fairness):
    data3 = synthetic_embeddings(n=300, d=8, leak=2.0, seed=0, n_protected=3)
    settings = TrialSettings(epochs=1, batch_size=64, seed=0)
    config = {"fairness": fairness, "fair_rows": 128, "adversary_count": 2,
              "adversary_reset_every": 2, "adversary_control": True,
              "adversary_loss": "confusion"}  # fmt: skip
    out = train_and_evaluate("translator", config, data3, settings, lambda r: None)
    assert all(math.isfinite(v) for v in out.values())


def test_strengthened_adversary_round_trips(tmp_path, data):
    tr = data.subset("train")
    t = Translator(fairness="adversarial", adversary_control=True, adversary_count=2,
                   adversary_reset_every=3, epochs=1, probe_every=0).fit(tr.X, tr.y, q=tr.q)
    loaded = load_translator(save_translator(t, tmp_path / "adv"))
    np.testing.assert_allclose(loaded.transform(tr.X), t.transform(tr.X), rtol=1e-6, atol=1e-6)


def test_mmd_translator_hides_a_nonlinear_leak_from_a_fresh_mlp_probe():
    rng = np.random.default_rng(0)
    n = 800
    y, q = rng.integers(0, 2, n), rng.integers(0, 2, n)
    X = rng.standard_normal((n, 6)).astype(np.float32)
    X[:, :2] *= np.where(q == 1, 2.5, 0.6)[:, None]  # same means, different spread: not linear
    X[:, 2] += 2.0 * y
    tr, te = slice(0, 600), slice(600, None)

    def probe_bacc(fairness: str) -> float:
        t = Translator(fairness=fairness, w_fair=30.0, w_rec=0.1, fair_rows=600, epochs=25,
                       batch_size=100, bottleneck="8", lr=3e-3, probe_every=0)  # fmt: skip
        t.fit(X[tr], y[tr], q=q[tr])
        Zt, Zs = t.transform(X[tr]), t.transform(X[te])
        return probe_scores(Zt, q[tr], Zs, q[te], kind="gbt")["bacc"]

    assert probe_scores(X[tr], q[tr], X[te], q[te])["bacc"] < 0.62  # linear probe: ~chance
    plain = probe_bacc("none")
    assert plain > 0.7  # the non-linear leak survives a plain auto-encoder
    assert probe_bacc("mmd") < plain - 0.15
