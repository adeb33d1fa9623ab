"""The batched probes against their scikit-learn twins, on small seeded data.

Tolerances on cross-fitted balanced accuracy (same folds, grids and selection; 300 rows):
knn is exact (same neighbours, same votes); logistic reaches the same convex optimum, so its
probabilities agree to 1e-3 and its score to 0.01; the mlp replays scikit-learn's random stream
(initialisation, early-stopping split, shuffles) in float64, so it follows the same trajectory up
to rounding: probabilities agree to 1e-6 and the score to 1e-12 (the same predictions).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from fairsearch.probes import ladder
from fairsearch.probes.batched import (
    BATCHED_KINDS,
    BatchMember,
    batched_cross_fits,
    fit_members,
)
from fairsearch.probes.batched._tensors import balanced_weights
from fairsearch.probes.ladder import cross_fit, make_probe, run_ladder, worst_case

TOLERANCE = {"knn": 1e-12, "logistic": 0.01, "mlp": 1e-12}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):
        yield


def planted(n: int = 300, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 2, n)
    Z = rng.normal(size=(n, d))
    Z[:, 0] += 1.2 * q  # a leak that no probe recovers perfectly
    Z[:, 1] *= 3.0  # unequal scales: standardisation matters
    return Z, q


def noise(n: int = 300, d: int = 6, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, 2, n)


@pytest.mark.parametrize("kind", [
    "knn", "logistic", pytest.param("mlp", marks=pytest.mark.slow),  # sklearn's 130 MLP fits
])
def test_batched_agrees_with_sklearn_on_a_leak_and_on_noise(kind: str) -> None:
    for Z, q, expect_leak in ((*planted(), True), (*noise(), False)):
        ref = cross_fit(Z, q, kind, seed=0, engine="sklearn")
        new = cross_fit(Z, q, kind, seed=0, engine="batched")
        assert abs(new.score - ref.score) <= TOLERANCE[kind], (kind, new.score, ref.score)
        assert new.predictions.shape == ref.predictions.shape
        np.testing.assert_array_equal(new.fold, ref.fold)  # the same outer folds
        assert np.allclose(new.proba.sum(1), 1.0)
        if expect_leak:
            assert new.score > 0.65, new.score
        else:
            assert abs(new.score - 0.5) < 0.08, new.score
        if kind in ("knn", "mlp"):  # the same inner scores, the same predictions
            np.testing.assert_allclose(new.inner_scores, ref.inner_scores)
            np.testing.assert_array_equal(new.predictions, ref.predictions)


def test_logistic_reaches_sklearns_optimum() -> None:
    """Imbalanced three classes, rows of their own per member: the probabilities of each member
    equal those of a scikit-learn fit on its rows."""
    rng = np.random.default_rng(3)
    n = 240
    q = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    Z = rng.normal(size=(n, 4))
    Z[np.arange(n), q] += 1.5
    train = np.stack([rng.random(n) < f for f in (0.5, 0.8)])
    members = [BatchMember(0, {"C": 0.05}, 0), BatchMember(1, {"C": 1.0}, 1)]
    proba, pred = fit_members("logistic", Z, q, 3, train, members, device="cpu")
    for m, C in enumerate((0.05, 1.0)):
        est = make_probe("logistic", 0, tune=False).set_params(logisticregression__C=C)
        est.fit(Z[train[m]], q[train[m]])
        np.testing.assert_allclose(proba[m], est.predict_proba(Z), atol=1e-3)
        assert (pred[m] == est.predict(Z)).mean() > 0.99


@pytest.mark.parametrize("k", [2, 3])
def test_mlp_member_follows_its_sklearn_twin(k: int) -> None:
    """Each member ends where ``MLPClassifier(random_state=seed)`` fitted on its rows ends (its
    random stream replayed, float64): the same probabilities up to rounding."""
    rng = np.random.default_rng(k)
    n = 240
    q = rng.integers(0, k, n)
    Z = rng.normal(size=(n, 5))
    Z[np.arange(n), q] += 1.0
    Z[:, 4] *= 3.0
    train = np.stack([rng.random(n) < 0.7, rng.random(n) < 0.8])
    key = "estimator__mlpclassifier__"
    grid = [{f"{key}alpha": 1e-4, f"{key}hidden_layer_sizes": (16,)},
            {f"{key}alpha": 0.1, f"{key}hidden_layer_sizes": (16, 16)}]
    members = [BatchMember(0, grid[0], 3), BatchMember(1, grid[1], 5)]
    proba, pred = fit_members("mlp", Z, q, k, train, members, device="cpu")
    for m, mem in enumerate(members):
        est = make_probe("mlp", mem.seed, tune=False).set_params(**mem.params)
        est.fit(Z[train[m]], q[train[m]])
        np.testing.assert_allclose(proba[m], est.predict_proba(Z), atol=1e-6)
        np.testing.assert_array_equal(pred[m], est.predict(Z))


def test_balanced_weights_are_each_members_own() -> None:
    import torch

    rng = np.random.default_rng(0)
    q = rng.choice(2, 50, p=[0.8, 0.2])
    train = np.stack([rng.random(50) < 0.6, rng.random(50) < 0.9])
    w = balanced_weights(torch.as_tensor(q), torch.as_tensor(train), 2).numpy()
    for m in range(2):
        np.testing.assert_allclose(w[m, train[m]], compute_sample_weight("balanced", q[train[m]]))
        assert (w[m, ~train[m]] == 0).all()


@pytest.mark.parametrize("kind", ["mlp", "logistic"])
def test_members_are_independent_of_their_batch(kind: str) -> None:
    """A member trained beside others ends where it ends alone."""
    Z, q = planted(n=200)
    rng = np.random.default_rng(5)
    train = np.stack([rng.random(200) < 0.7 for _ in range(3)])
    params = ({"alpha": 1e-4, "hidden": (16,)} if kind == "mlp" else {"C": 1.0})
    others = ({"alpha": 0.1, "hidden": (16,)} if kind == "mlp" else {"C": 0.05})
    crowd = [BatchMember(0, params, 7), BatchMember(1, others, 8), BatchMember(2, params, 9)]
    alone, _ = fit_members(kind, Z, q, 2, train, crowd[:1], device="cpu")
    together, _ = fit_members(kind, Z, q, 2, train, crowd, device="cpu")
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    assert np.abs(together[2] - together[0]).max() > 1e-3  # other rows, other seed: not a copy


def test_imbalanced_leak_is_recovered_in_balanced_accuracy() -> None:
    rng = np.random.default_rng(3)
    q = (rng.random(400) < 0.15).astype(int)
    Z = rng.normal(size=(400, 4))
    Z[:, 0] += 2.5 * q
    for f in BATCHED_KINDS:  # balanced weights / prior correction, not the majority class
        assert cross_fit(Z, q, f, seed=1, engine="batched").score > 0.75, f


def test_all_fold_seeds_in_one_batch_equal_one_at_a_time() -> None:
    Z, q = planted(n=200)
    codes = q.astype(np.int64)
    folds = [ladder.outer_folds(codes, 5, s) for s in (0, 1)]
    grid = ladder.kind_grid("knn")
    both = batched_cross_fits(Z, codes, 2, "knn", folds, [0, 1], grid, tune_folds=2,
                              device="cpu")
    one = batched_cross_fits(Z, codes, 2, "knn", folds[1:], [1], grid, tune_folds=2,
                             device="cpu")
    np.testing.assert_array_equal(both[1].predictions, one[0].predictions)
    np.testing.assert_allclose(both[1].inner_scores, one[0].inner_scores)


def test_knn_in_blocks_of_query_rows_equals_knn_in_one_block(monkeypatch) -> None:
    """The row blocks that bound kNN's memory (held-out sets of thousands of rows) change no
    neighbour and no vote."""
    from fairsearch.probes.batched import _knn

    Z, q = planted(n=240)
    codes = q.astype(np.int64)
    folds = [ladder.outer_folds(codes, 5, 0)]
    grid = ladder.kind_grid("knn")
    whole = batched_cross_fits(Z, codes, 2, "knn", folds, [0], grid, tune_folds=2, device="cpu")
    monkeypatch.setattr(_knn, "KNN_BLOCK_BYTES", 3 * 8 * 8 * 240 * 7)  # 7 rows a block
    blocks = batched_cross_fits(Z, codes, 2, "knn", folds, [0], grid, tune_folds=2, device="cpu")
    np.testing.assert_array_equal(blocks[0].predictions, whole[0].predictions)
    np.testing.assert_array_equal(blocks[0].inner_scores, whole[0].inner_scores)


def test_worst_case_headline_selection_and_interval_with_the_batched_engine() -> None:
    rng = np.random.default_rng(0)
    Z = np.hstack([rng.uniform(-1, 1, size=(300, 2)), 0.5 * rng.normal(size=(300, 2))])
    q = ((Z[:, 0] > 0) ^ (Z[:, 1] > 0)).astype(int)
    wc = worst_case(Z, q, kinds=("majority", "logistic", "knn"), seed=0, engine="batched")
    assert set(wc.selected) == {"knn"} and wc.value > 0.8
    res = run_ladder(*noise(), kinds=("majority", "logistic", "knn"), repeats=2, n_boot=300,
                     mdl=False, engine="batched")
    assert res.worst_case.ci_low <= 0.5 <= res.worst_case.ci_high
    assert res.worst_case.ci_low <= res.worst_case.value <= res.worst_case.ci_high


def test_unknown_engine_and_kind_are_named() -> None:
    Z, q = noise(n=40)
    with pytest.raises(ValueError, match=r"engine must be one of \['auto', 'batched', 'sklearn'\], "
                                         r"got 'jax'"):
        cross_fit(Z, q, "logistic", engine="jax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"kind must be one of \['logistic', 'mlp', 'knn'\], "
                                         r"got 'gbt'"):
        batched_cross_fits(Z, q, 2, "gbt", [np.zeros(40, int)], [0], [{}], tune_folds=2)
