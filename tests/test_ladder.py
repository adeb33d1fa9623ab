"""Property tests of the probe ladder on small seeded data with known leaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from fairsearch.probes import ladder
from fairsearch.probes.ladder import (
    CrossFit,
    bootstrap_ci,
    cross_fit,
    floor_from_labels,
    make_probe,
    online_code_length,
    refined_kinds,
    run_ladder,
    select_worst,
    worst_case,
)
from fairsearch.probes.ladder._factory import _Subsampled
from fairsearch.probes.registry import PROBE_KINDS

NONTRIVIAL = tuple(f for f in PROBE_KINDS if f != "majority")
NONLINEAR = ("mlp", "gbt", "knn", "svm")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):
        yield


def linear_leak(n: int = 300, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 2, n)
    Z = rng.normal(size=(n, d))
    Z[:, 0] += 2.5 * q - 1.25
    return Z, q


def xor_leak(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = np.hstack([rng.uniform(-1, 1, size=(n, 2)), 0.5 * rng.normal(size=(n, 2))])
    q = ((Z[:, 0] > 0) ^ (Z[:, 1] > 0)).astype(int)
    return Z, q


def noise(n: int = 200, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, 2, n)


# ---------------------------------------------------------------------------- probes
def test_make_probe_kinds_and_unknown_name() -> None:
    for name in PROBE_KINDS:
        assert hasattr(make_probe(name, 0), "fit")
        assert hasattr(make_probe(name, 0, tune=False), "fit")
    with pytest.raises(ValueError, match=r"probe kind must be one of .* got 'lda'"):
        make_probe("lda", 0)


@pytest.mark.parametrize("kind", NONTRIVIAL)
def test_every_kind_recovers_a_linear_leak(kind: str) -> None:
    Z, q = linear_leak()
    assert cross_fit(Z, q, kind, seed=0).score > 0.8


def test_majority_is_exactly_chance_even_when_imbalanced() -> None:
    Z, _ = linear_leak(n=200)
    q = np.r_[np.zeros(150, int), np.ones(30, int), np.full(20, 2)]
    assert cross_fit(Z, q, "majority").score == pytest.approx(1 / 3)


def test_nonlinear_leak_needs_a_nonlinear_probe() -> None:
    Z, q = xor_leak()
    scores = {f: cross_fit(Z, q, f, seed=0).score for f in ("logistic", *NONLINEAR)}
    assert scores["logistic"] < 0.6, scores
    for f in NONLINEAR:
        assert scores[f] > 0.8, (f, scores)


def test_imbalanced_leak_is_recovered_in_balanced_accuracy() -> None:
    rng = np.random.default_rng(3)
    q = (rng.random(400) < 0.15).astype(int)
    Z = rng.normal(size=(400, 4))
    Z[:, 0] += 2.5 * q
    for f in ("mlp", "knn", "gbt"):  # prior-corrected argmax, not the majority class
        assert cross_fit(Z, q, f, seed=1).score > 0.75, f


def test_three_class_leak_and_svm_subsampling() -> None:
    rng = np.random.default_rng(4)
    q = rng.integers(0, 3, 300)
    Z = rng.normal(size=(300, 4))
    Z[np.arange(300), q] += 3.0
    assert cross_fit(Z, q, "mlp", seed=0).score > 0.8
    svm = _Subsampled(make_probe("svm", 0, tune=False).estimator, max_rows=60).fit(Z, q)
    assert svm.estimator_[-1].support_.size <= 60  # fitted on the subsample only
    assert (svm.predict(Z) == q).mean() > 0.8


# ---------------------------------------------------------------------------- cross-fitting
def test_every_row_scored_exactly_once_on_k_minus_1_folds() -> None:
    Z, q = linear_leak(n=203)
    fit = cross_fit(Z, q, "logistic", folds=4, seed=5)
    assert fit.predictions.shape == (203,) and fit.fold.shape == (203,)
    counts = np.bincount(fit.fold, minlength=4)
    assert counts.sum() == 203 and set(np.unique(fit.fold)) == {0, 1, 2, 3}
    assert counts.min() >= 50 and counts.max() <= 51  # each probe trains on ~3/4 of the rows
    for j in range(4):  # stratified: both classes in every held-out fold
        assert set(q[fit.fold == j]) == {0, 1}
    assert fit.proba is not None and np.allclose(fit.proba.sum(axis=1), 1.0)
    assert fit.inner_scores.shape == (4,)
    assert cross_fit(Z, q, "svm", folds=4).proba is None  # SVC has no probabilities


def test_cross_fit_is_deterministic_given_seed() -> None:
    Z, q = linear_leak(n=150)
    a, b = cross_fit(Z, q, "mlp", seed=2), cross_fit(Z, q, "mlp", seed=2)
    np.testing.assert_array_equal(a.predictions, b.predictions)


def test_noncontiguous_labels_are_encoded() -> None:
    Z, q = linear_leak(n=150)
    fit = cross_fit(Z, np.where(q == 1, 7, -3), "logistic")
    assert set(np.unique(fit.predictions)) <= {0, 1} and fit.score > 0.8


# ---------------------------------------------------------------------------- worst case
def test_worst_case_picks_a_strong_kind_on_xor() -> None:
    Z, q = xor_leak(n=300)
    wc = worst_case(Z, q, kinds=("majority", "logistic", "gbt", "knn"), seed=0)
    assert set(wc.selected) <= {"gbt", "knn"}
    assert wc.value > 0.8 and wc.value <= wc.naive_max + 1e-12


def test_worst_case_is_not_inflated_on_noise() -> None:
    fams = ("majority", "logistic", "gbt", "knn", "svm")
    heads, naive = [], []
    for seed in range(6):
        wc = worst_case(*noise(seed=seed), kinds=fams, seed=seed)
        heads.append(wc.value)
        naive.append(wc.naive_max)
    assert abs(np.mean(heads) - 0.5) < 0.03, heads
    assert np.mean(naive) > np.mean(heads) + 0.01, (naive, heads)
    assert np.mean(naive) > 0.52, naive  # the winner's curse the nested selection avoids


def test_select_worst_on_separate_cross_fits_is_worst_case() -> None:
    Z, q = xor_leak(n=300)
    fams = ("majority", "logistic", "gbt")
    wc = worst_case(Z, q, kinds=fams, seed=3)
    sel = select_worst([cross_fit(Z, q, f, seed=3) for f in fams], q)
    assert sel.selected == wc.selected and sel.value == wc.value
    np.testing.assert_array_equal(sel.predictions, wc.predictions)
    assert sel.kind_scores == wc.kind_scores
    mixed = [cross_fit(Z, q, "logistic", seed=3, engine="sklearn"), cross_fit(Z, q, "gbt", seed=3)]
    assert select_worst(mixed, q).selected == ("gbt",) * 5  # a kind per engine
    with pytest.raises(ValueError, match="share their outer folds"):
        select_worst([mixed[0], cross_fit(Z, q, "gbt", seed=4)], q)
    with pytest.raises(ValueError, match="kinds must be distinct"):
        select_worst([mixed[1], mixed[1]], q)


# ---------------------------------------------------------------------------- intervals
def _predictions(n: int, acc: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 3, n)
    wrong = rng.random(n) > acc
    return q, np.where(wrong, (q + 1) % 3, q)


def test_ci_contains_point_and_shrinks_with_rows() -> None:
    widths = []
    for n in (200, 2000):
        q, pred = _predictions(n, 0.7, seed=n)
        iv = bootstrap_ci(q, pred, n_boot=1000, seed=0)
        assert iv.ci_low <= iv.value <= iv.ci_high
        assert iv.value == pytest.approx(0.7, abs=0.06)
        widths.append(iv.ci_high - iv.ci_low)
    assert widths[1] < 0.5 * widths[0], widths


def test_ci_pools_between_repeat_variance() -> None:
    q, p1 = _predictions(500, 0.6, seed=1)
    p2 = np.where(np.random.default_rng(9).random(500) < 0.9, q, (q + 2) % 3)
    one = bootstrap_ci(q, p1, seed=0)
    both = bootstrap_ci(q, np.stack([p1, p2]), seed=0)
    assert both.ci_low <= both.value <= both.ci_high
    assert both.value == pytest.approx((one.value + bootstrap_ci(q, p2).value) / 2)
    assert both.ci_high - both.ci_low > 2 * (one.ci_high - one.ci_low)


def test_ladder_intervals_contain_point_estimates() -> None:
    Z, q = linear_leak(n=150, d=4)
    res = run_ladder(Z, q, kinds=("majority", "logistic", "knn"), repeats=2, n_boot=300)
    frame = res.to_frame()
    ba = frame[frame.metric == "balanced_accuracy"]
    assert (ba.ci_low <= ba.value + 1e-12).all() and (ba.value <= ba.ci_high + 1e-12).all()


# ---------------------------------------------------------------------------- floor
def test_floor_above_chance_when_q_depends_on_y() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 1000)
    q = np.where(rng.random(1000) < 0.9, y % 2, 1 - y % 2)
    iv = floor_from_labels(q, y)
    assert iv.value > 0.85 and iv.ci_low > 0.8


def test_floor_is_chance_when_independent() -> None:
    rng = np.random.default_rng(1)
    q, y = rng.integers(0, 3, 1500), rng.integers(0, 5, 1500)
    iv = floor_from_labels(q, y)
    assert abs(iv.value - 1 / 3) < 0.04
    assert iv.ci_low < 1 / 3 + 0.01


def test_floor_in_ladder_from_label_and_prediction() -> None:
    rng = np.random.default_rng(2)
    Z, q = linear_leak(n=150, d=3, seed=2)
    y_pred = np.where(rng.random(150) < 0.8, q, 1 - q)
    res = run_ladder(Z, q, y=rng.integers(0, 2, 150), y_pred=y_pred,
                     kinds=("majority", "logistic"), repeats=1, n_boot=200, mdl=False)
    assert res.floors["control_prediction"].value > 0.7 > res.floors["control_label"].value
    assert res.floor == res.floors["control_prediction"].value


# ---------------------------------------------------------------------------- MDL
def test_mdl_more_bits_for_noise_than_for_a_leak() -> None:
    Zl, ql = linear_leak(n=400)
    Zn, qn = noise(n=400, d=6)
    leak, flat = online_code_length(Zl, ql, seed=0), online_code_length(Zn, qn, seed=0)
    assert flat.online_bits > leak.online_bits
    assert leak.compression > 1.3 and flat.compression < 1.05
    assert leak.uniform_bits == pytest.approx(400.0)
    assert leak.block_ends[-1] == 400 and leak.block_ends[0] == 1


# ---------------------------------------------------------------------------- entry point
def test_run_ladder_frame() -> None:
    Z, q = xor_leak(n=200)
    y = np.random.default_rng(0).integers(0, 2, 200)
    res = run_ladder(Z, q, y=y, kinds=("majority", "logistic", "gbt"), repeats=2,
                     n_boot=200, seed=1)
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ladder.COLUMNS
    assert list(frame.probe) == ["majority", "logistic", "gbt", "worst_case", "control_label", "mdl",
                                 "mdl"]
    wc = frame.set_index("probe").loc["worst_case"]
    assert wc.selected == "gbt" and wc.value > 0.75 and wc.chance == 0.5
    assert len(res.selections) == 2 * 5
    assert "mdl_bits" in set(frame.metric)


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("Z", "q", "kwargs", "message"),
    [
        (np.zeros((10, 2)), np.zeros(9, int), {}, r"q must have one label per row of Z \(10"),
        (np.zeros(10), np.zeros(10, int), {}, r"Z must be a non-empty 2-D array .* shape \(10,\)"),
        (np.full((10, 2), np.nan), np.arange(10) % 2, {}, r"Z must be finite, got 20 NaN/inf"),
        (np.ones((10, 2)) * np.inf, np.arange(10) % 2, {}, "Z must be finite"),
        (np.zeros((10, 2)), np.ones(10, int), {}, r"q must hold at least 2 classes, got 1"),
        (np.zeros((12, 2)), np.arange(12) % 3, {}, r"fewer than folds x classes = 5 x 3 = 15"),
        (np.zeros((20, 2)), np.r_[np.zeros(17), np.ones(3)].astype(int), {},
         r"every class of q needs at least folds=5 rows; the smallest has 3"),
        (np.zeros((10, 2)), np.arange(10) % 2, {"folds": 1}, r"folds must be an integer >= 2"),
        (np.zeros((10, 2)), np.arange(10) % 2 + 0.5, {}, r"q must hold integer class codes"),
        (np.zeros((10, 2)), np.arange(10) % 2, {"kinds": ("lda",)},
         r"kinds must be distinct names from .* got \['lda'\]"),
        (np.zeros((10, 2)), np.arange(10) % 2, {"repeats": 0}, r"repeats must be an integer"),
        (np.zeros((10, 2)), np.arange(10) % 2, {"y": np.zeros(3)},
         r"y must have one label per row of Z \(10 rows\), got 3"),
    ],
)
def test_run_ladder_rejects_bad_input(Z, q, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        run_ladder(Z, q, **({"kinds": ("majority",), "repeats": 1, "n_boot": 10, "mdl": False}
                            | kwargs))


def test_other_entry_points_validate() -> None:
    with pytest.raises(ValueError, match=r"predictions must be \(n,\) or \(R, n\) with n=4"):
        bootstrap_ci(np.array([0, 1, 0, 1]), np.zeros(5, int))
    with pytest.raises(ValueError, match=r"n_boot must be an integer >= 1, got 0"):
        bootstrap_ci(np.array([0, 1, 0, 1]), np.zeros(4, int), n_boot=0)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.5"):
        bootstrap_ci(np.array([0, 1, 0, 1]), np.zeros(4, int), level=1.5)
    with pytest.raises(ValueError, match=r"blocks must be increasing fractions in \(0, 1\]"):
        online_code_length(*noise(n=20), blocks=(0.5, 0.2))
    with pytest.raises(ValueError, match=r"kinds must be distinct names"):
        cross_fit(*noise(n=20), "tree")
    with pytest.raises(ValueError, match=r"fewer than folds x classes"):
        floor_from_labels(np.arange(6) % 2, np.zeros(6, int))


def test_mdl_grows_after_the_leak_is_removed() -> None:
    """Online code length of q: a linear leak makes q cheap to code; LEACE erasure of it makes
    q as expensive as from noise again."""
    from fairsearch.families.translator import LeaceTranslator

    rng = np.random.default_rng(7)
    n = 600
    q = rng.integers(0, 2, n)
    Z = rng.normal(size=(n, 6))
    Z[:, 0] += 1.5 * q
    with threadpool_limits(1):
        before = online_code_length(Z, q, seed=0).online_bits
        erased = LeaceTranslator().fit(Z, rng.integers(0, 2, n), q=q).transform(Z)
        after = online_code_length(erased, q, seed=0).online_bits
    assert after > before * 1.3, (before, after)


def _fit(name: str, codes: np.ndarray, fold: np.ndarray, accuracy: float,
         inner: list[float], seed: int) -> CrossFit:
    """A cross-fit of planted accuracy (binary), with the given inner-CV scores per fold."""
    rng = np.random.default_rng(seed)
    pred = np.where(rng.random(codes.size) < accuracy, codes, 1 - codes)
    return CrossFit(name, pred, None, fold, np.array(inner), ladder.balanced_accuracy(codes, pred, 2))


def test_halving_keeps_a_weak_kind_the_first_fold_seed_selected() -> None:
    """A kind far below the worst case is cut, unless the selection chose it in an outer
    fold: then every fold seed selects among the same kinds."""
    codes = np.tile([0, 1], 200)
    fold = ladder.outer_folds(codes, 5, 0)
    strong = _fit("logistic", codes, fold, 0.9, [0.9, 0.9, 0.9, 0.9, 0.5], 1)
    weak = _fit("knn", codes, fold, 0.55, [0.55, 0.55, 0.55, 0.55, 0.95], 2)
    never = _fit("mlp", codes, fold, 0.55, [0.55] * 5, 3)
    run = {"logistic": strong, "knn": weak, "mlp": never}
    head = bootstrap_ci(codes, ladder.nested_selection(run, codes, 2).predictions)
    assert bootstrap_ci(codes, weak.predictions).ci_high < head.ci_low  # far below the worst case
    assert bootstrap_ci(codes, never.predictions).ci_high < head.ci_low
    assert refined_kinds(run, codes, 2) == ("logistic", "knn")  # knn chosen in fold 4
