from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from fairsearch.families.wrapper.model import FairModelWrapper
from fairsearch.measures.dependence import cka_score
from fairsearch.nets import DivergenceError


def _mlp(d: int = 4, out: int = 1, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, out))


def _problem(n: int = 256, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype("float32")
    q = rng.standard_normal((n, 1)).astype("float32")
    X = np.hstack([x, q])
    y = (np.tanh(x[:, 0]) + 0.5 * x[:, 1] + 3.0 * q[:, 0]).astype("float32")
    return X, y, q


def _bare_loop(module: nn.Module, X, y, *, epochs, batch_size, lr, seed) -> None:
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=gen)
        for start in range(0, len(Xt), batch_size):
            idx = perm[start : start + batch_size]
            out = module(Xt[idx])
            loss = nn.functional.mse_loss(out, yt[idx].reshape(out.shape))
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_mu_zero_trains_exactly_like_the_bare_model():
    X, y, q = _problem()
    wrapped, bare = _mlp(), _mlp()
    FairModelWrapper(wrapped, mu=0.0, device="cpu").fit(X, y, q=q, epochs=3, batch_size=32, lr=1e-2)
    _bare_loop(bare, X, y, epochs=3, batch_size=32, lr=1e-2, seed=0)
    for a, b in zip(wrapped.state_dict().values(), bare.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_wrapper_does_not_change_the_module_type_or_structure():
    module = _mlp()
    before = copy.deepcopy(module)
    FairModelWrapper(module, mu=1.0, device="cpu").fit(*_problem()[:2], q=_problem()[2], epochs=1)
    assert type(module) is type(before)
    assert [n for n, _ in module.named_parameters()] == [n for n, _ in before.named_parameters()]


def test_penalty_lowers_dependence_and_history_decomposes():
    X, y, q = _problem(n=400)
    preds = {}
    for mu in (0.0, 8.0):
        w = FairModelWrapper(_mlp(), mu=mu, sigma_f=1.0, sigma_q=1.0, device="cpu")
        w.fit(X, y, q=q, epochs=15, batch_size=64, lr=3e-3)
        preds[mu] = w.predict(X)
        last = w.history_[-1]
        assert last.total == pytest.approx(last.task + last.fairness, rel=1e-5, abs=1e-6)
        assert last.fairness == pytest.approx(mu * last.dependence)
    assert cka_score(preds[8.0], q) < cka_score(preds[0.0], q) - 0.1


@pytest.mark.parametrize("dependence", ["hsic", "linear_cka", "debiased_cka"])
def test_other_measures_and_callables_train(dependence):
    X, y, q = _problem()
    w = FairModelWrapper(_mlp(), mu=1.0, dependence=dependence, device="cpu")
    w.fit(X, y, q=q, epochs=2, batch_size=64)
    assert len(w.history_) == 2 and np.isfinite(w.predict(X)).all()
    calls = []

    def custom(f, qq):
        calls.append(f.shape)
        return (f.squeeze() * qq.squeeze()).mean().abs()

    FairModelWrapper(_mlp(), mu=0.5, dependence=custom, device="cpu").fit(X, y, q=q, epochs=1)
    assert calls and calls[0][1] == 1


def test_classification_with_categorical_q():
    rng = np.random.default_rng(1)
    q = rng.integers(0, 2, size=300)
    X = np.hstack([rng.normal(size=(300, 3)), q[:, None]]).astype("float32")
    y = ((X[:, 0] + 2 * q) > 1).astype("int64")
    w = FairModelWrapper(
        _mlp(out=2), mu=2.0, task="classification", q_kernel="delta", device="cpu"
    ).fit(X, y, q=q, epochs=5, batch_size=64)
    proba = w.predict_proba(X)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    assert set(np.unique(w.predict(X))) <= {0, 1}


def test_divergence_raises_with_location():
    X, y, q = _problem()
    w = FairModelWrapper(_mlp(), mu=0.0, loss_bound=1e-3, device="cpu")
    with pytest.raises(DivergenceError, match="diverged") as info:
        w.fit(X, y, q=q, epochs=1)
    assert info.value.epoch == 0 and info.value.step == 0 and info.value.value > 1e-3


def test_bad_arguments():
    X, y, q = _problem()
    with pytest.raises(ValueError, match="mu must be a finite number >= 0"):
        FairModelWrapper(_mlp(), mu=-1.0)
    with pytest.raises(ValueError, match="same number of rows"):
        FairModelWrapper(_mlp(), device="cpu").fit(X, y[:10], q=q)
    with pytest.raises(ValueError, match="task must be"):
        FairModelWrapper(_mlp(), task="ranking")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="predict_proba needs"):
        FairModelWrapper(_mlp(), device="cpu").predict_proba(X)


def test_predict_and_fit_take_a_read_only_array_without_a_warning() -> None:
    """A memory map or a pandas column's values are often read-only: no "not writable" warning,
    and the same predictions as from a writable copy."""
    X, y, q = _problem(64)
    X, y, q = (np.asarray(a) for a in (X, y, q))
    fair = FairModelWrapper(_mlp(X.shape[1]), mu=1.0)
    frozen = [a.copy() for a in (X, y, q)]
    for a in frozen:
        a.setflags(write=False)
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*not writable")
        fair.fit(*frozen[:2], q=frozen[2], epochs=1, batch_size=32)
        out = fair.predict(frozen[0])
    np.testing.assert_array_equal(out, fair.predict(X))
