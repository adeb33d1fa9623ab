from __future__ import annotations

import numpy as np
import pytest
import torch

from fairsearch.measures.dependence import (
    cka,
    cka_score,
    dependence_loss,
    hsic,
    hsic_score,
    linear_cka,
    median_bandwidth,
    mmd,
)


def _rbf(x: np.ndarray, s: float) -> np.ndarray:
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * s * s))


def _naive_hsic(k: np.ndarray, l: np.ndarray) -> float:
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l @ h) / (n - 1) ** 2)


def _naive_unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    # Song et al. (2012), eq. 5, written out literally.
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    t1 = np.trace(kt @ lt)
    t2 = one @ kt @ one * (one @ lt @ one) / ((n - 1) * (n - 2))
    t3 = 2 / (n - 2) * one @ kt @ lt @ one
    return float((t1 + t2 - t3) / (n * (n - 3)))


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = np.tanh(x[:, :1]) + 0.3 * rng.normal(size=(60, 1))
    return x, y


def test_hsic_and_cka_match_naive_formulas(pair):
    x, y = pair
    k, l = _rbf(x, 1.3), _rbf(y, 0.7)
    assert float(hsic(x, y, sigma_x=1.3, sigma_y=0.7)) == pytest.approx(_naive_hsic(k, l), abs=1e-6)
    ref = _naive_hsic(k, l) / np.sqrt(_naive_hsic(k, k) * _naive_hsic(l, l))
    assert float(cka(x, y, sigma_x=1.3, sigma_y=0.7)) == pytest.approx(ref, abs=1e-6)
    unb = hsic(x, y, sigma_x=1.3, sigma_y=0.7, estimator="unbiased")
    assert float(unb) == pytest.approx(_naive_unbiased_hsic(k, l), abs=1e-6)
    ref_d = _naive_unbiased_hsic(k, l) / np.sqrt(
        _naive_unbiased_hsic(k, k) * _naive_unbiased_hsic(l, l)
    )
    assert float(cka(x, y, sigma_x=1.3, sigma_y=0.7, debiased=True)) == pytest.approx(ref_d, abs=1e-6)


def test_blockwise_metrics_equal_dense(pair):
    x, y = pair
    dense = float(cka(x, y, sigma_x=1.3, sigma_y=0.7))
    for block in (1, 7, 60):
        assert cka_score(x, y, sigma_x=1.3, sigma_y=0.7, block_size=block) == pytest.approx(
            dense, abs=1e-9
        )
    assert hsic_score(x, y, sigma_x=1.3, sigma_y=0.7, block_size=11) == pytest.approx(
        float(hsic(x, y, sigma_x=1.3, sigma_y=0.7)), abs=1e-9
    )
    # Median bandwidth resolves to the same number on both paths.
    assert cka_score(x, y, block_size=13) == pytest.approx(float(cka(x, y)), abs=1e-9)


def test_blockwise_delta_kernel_matches_dense():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 3, size=80)
    x = rng.normal(size=(80, 2)) + g[:, None]
    dense = float(cka(x, g, kernel_y="delta"))
    assert cka_score(x, g, kernel_y="delta", block_size=9) == pytest.approx(dense, abs=1e-9)
    assert dense > 0.3


def test_cka_identity_symmetry_and_bounds(pair):
    x, y = pair
    assert float(cka(x, x)) == pytest.approx(1.0, abs=1e-6)
    assert float(cka(x, y)) == pytest.approx(float(cka(y, x)), abs=1e-9)
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.normal(size=(30, 2)), rng.normal(size=(30, 1)) * rng.uniform(0.1, 10)
        value = float(cka(a, b))
        assert 0.0 <= value <= 1.0


def test_independent_samples_score_near_zero_and_dependent_high():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3000, 1))
    independent = cka_score(x, rng.normal(size=(3000, 1)))
    dependent = cka_score(x, x**2 + 0.1 * rng.normal(size=(3000, 1)))
    assert independent < 0.01
    assert dependent > 0.3


def test_linear_cka_invariances(pair):
    x, y = pair
    rng = np.random.default_rng(5)
    qmat, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    base = float(linear_cka(x, y))
    assert float(linear_cka(x @ qmat, y)) == pytest.approx(base, abs=1e-9)
    assert float(linear_cka(7.5 * x, y)) == pytest.approx(base, abs=1e-9)
    # The feature-space formula equals the kernel form with linear kernels.
    assert float(cka(x, y, kernel_x="linear", kernel_y="linear")) == pytest.approx(base, abs=1e-9)
    # ... but not to a non-isotropic scaling (the invariance is specific).
    assert float(linear_cka(x * np.array([1.0, 50.0, 0.01]), y)) != pytest.approx(base, abs=1e-3)


def test_median_bandwidth_makes_cka_unit_free(pair):
    x, y = pair
    assert float(cka(1000 * y, x)) == pytest.approx(float(cka(y, x)), abs=1e-6)
    # A fixed bandwidth is not unit-free: the reason "median" exists.
    assert float(cka(1000 * y, x, sigma_x=1.0)) != pytest.approx(float(cka(y, x, sigma_x=1.0)), abs=1e-2)
    assert median_bandwidth(np.zeros((5, 2))) == 1.0


@pytest.mark.parametrize("name", ["cka", "debiased_cka", "linear_cka", "hsic", "mmd"])
def test_constant_input_is_defined_with_finite_gradient(name):
    q = torch.tensor([[0.0], [1.0], [0.0], [1.0], [1.0], [0.0]])
    f = torch.zeros(6, 1, requires_grad=True)
    loss = dependence_loss(name, q_kernel="delta")(f, q)
    loss.backward()
    assert torch.isfinite(loss)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-9)
    assert torch.isfinite(f.grad).all()


@pytest.mark.parametrize("name", ["cka", "debiased_cka", "linear_cka", "hsic", "mmd"])
def test_gradients_finite_and_penalty_reducible(name):
    torch.manual_seed(0)
    q = torch.randint(0, 2, (64, 1)).float()
    f = (q + 0.3 * torch.randn(64, 1)).requires_grad_(True)
    fn = dependence_loss(name, q_kernel="delta")
    opt = torch.optim.SGD([f], lr=0.05)
    start = float(fn(f, q))
    for _ in range(30):
        opt.zero_grad()
        loss = fn(f, q)
        loss.backward()
        assert torch.isfinite(f.grad).all()
        opt.step()
    assert float(fn(f, q)) < start


def test_categorical_q_one_hot_equals_codes():
    rng = np.random.default_rng(6)
    codes = rng.integers(0, 3, size=50)
    x = rng.normal(size=(50, 2)) + codes[:, None]
    one_hot = np.eye(3)[codes]
    a = float(cka(x, codes, kernel_y="delta"))
    b = float(cka(x, one_hot, kernel_y="delta"))
    assert a == pytest.approx(b, abs=1e-9)


def test_mmd_detects_group_shift():
    rng = np.random.default_rng(7)
    g = rng.integers(0, 2, size=200)
    same = float(mmd(rng.normal(size=(200, 1)), g))
    shifted = float(mmd(rng.normal(size=(200, 1)) + 2.0 * g[:, None], g))
    assert shifted > 10 * same
    assert float(mmd(rng.normal(size=(10, 1)), np.zeros(10))) == 0.0  # one group: nothing to compare


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="same number of rows"):
        cka(np.zeros((5, 1)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="bandwidth must be a positive number or 'median'"):
        cka(np.ones((5, 1)), np.ones((5, 1)), sigma_x=-1.0)
    with pytest.raises(ValueError, match="dependence must be one of"):
        dependence_loss("kl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n >= 4"):
        hsic(np.ones((3, 1)), np.ones((3, 1)), estimator="unbiased")
    with pytest.raises(ValueError, match="1-D or 2-D"):
        cka(np.zeros((2, 2, 2)), np.zeros((2, 1)))
