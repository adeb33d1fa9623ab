from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from fairsearch.analysis.audit.dependence import knn_mix
from fairsearch.analysis.audit.groups import group_metrics
from fairsearch.analysis.audit.metrics import bootstrap_ci, classification_chance
from fairsearch.analysis.audit.representations import COLUMNS, audit_representations
from fairsearch.analysis.audit.split_probes import TransferSource, fit_probe

N = 300


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    q = rng.integers(0, 2, N)
    y = rng.integers(0, 2, N)
    planted = rng.normal(size=(N, 4))
    planted[:, 0] += 2.0 * q  # q is linearly visible
    planted[:, 1] += 2.0 * y
    xor = rng.normal(size=(N, 4))
    xor[:, 2] = np.where(q == 1, 1.0, -1.0) * np.abs(rng.normal(size=N)) * np.sign(xor[:, 3])
    return {"q": q, "y": y, "planted": planted, "xor": xor, "indep": rng.normal(size=(N, 4))}


@pytest.fixture(scope="module")
def table(data: dict[str, np.ndarray]) -> pd.DataFrame:
    return audit_representations(
        {"original": data["planted"], "indep": data["indep"]}, data["q"], y=data["y"],
        probes=("logistic", "knn"), n_boot=50, seed=0)


def _row(t: pd.DataFrame, model: str, probe: str, metric: str, target: str = "q") -> pd.Series:
    m = t[(t.model == model) & (t.probe == probe) & (t.metric == metric) & (t.target == target)]
    assert len(m) == 1, (model, probe, metric, target)
    return m.iloc[0]


def test_tidy_columns_and_ordered_cis(table: pd.DataFrame) -> None:
    assert list(table.columns) == COLUMNS
    scored = table[~table.metric.isin(["mdl_bits", "compression", "ci_half_width",
                                       "rows_to_resolve", "held_out_rows", "fold_seeds"])]
    both = scored.dropna(subset=["ci_low", "ci_high"])
    assert len(both) == len(scored)
    assert (both.ci_low <= both.ci_high + 1e-12).all()
    assert set(table.model) == {"original", "indep", "floor", "resolution"}


def test_ladder_headline_floor_and_mdl(table: pd.DataFrame) -> None:
    for model in ("original", "indep"):
        wc = _row(table, model, "worst_case", "balanced_accuracy")
        assert wc.selected in ("majority", "logistic", "knn")
        assert wc.ci_low <= wc.value <= wc.ci_high
    assert _row(table, "original", "worst_case", "balanced_accuracy").ci_low > 0.7
    # y is independent of q here, so keeping the control task forces no leak: floor ~ chance
    floor = _row(table, "floor", "control_label", "balanced_accuracy")
    assert floor.ci_low <= 0.5 <= floor.ci_high
    assert (table.loc[table.target == "q", "floor"].dropna() == floor.value).all()
    bits = {m: _row(table, m, "mdl", "mdl_bits").value for m in ("original", "indep")}
    assert bits["indep"] > bits["original"], "more bits to code q when the representation holds none"


@pytest.mark.parametrize("probe", ["logistic", "knn"])
def test_probe_detects_planted_q(table: pd.DataFrame, probe: str) -> None:
    r = _row(table, "original", probe, "balanced_accuracy")
    assert r.value > r.chance + 0.2 and r.ci_low > r.chance


@pytest.mark.parametrize("probe", ["logistic", "knn"])
def test_probe_finds_nothing_when_independent(table: pd.DataFrame, probe: str) -> None:
    r = _row(table, "indep", probe, "balanced_accuracy")
    assert r.ci_low <= r.chance <= r.ci_high


def test_nonlinear_probe_sees_what_linear_misses(data: dict[str, np.ndarray]) -> None:
    t = audit_representations({"xor": data["xor"]}, data["q"], probes=("logistic", "mlp", "gbt"),
                              n_boot=100, seed=0)
    lin = _row(t, "xor", "logistic", "balanced_accuracy")
    assert lin.ci_low <= 0.5 <= lin.ci_high
    for probe in ("mlp", "gbt"):
        r = _row(t, "xor", probe, "balanced_accuracy")
        assert r.ci_low > 0.6, probe


def test_knn_mix_equals_base_rate_when_independent(data: dict[str, np.ndarray]) -> None:
    r = knn_mix(data["indep"], data["q"], k=10, n_boot=200)
    counts = np.bincount(data["q"])
    assert r["chance"] == pytest.approx((counts * (counts - 1)).sum() / (N * (N - 1)))
    assert r["ci_low"] <= r["chance"] <= r["ci_high"]
    planted = knn_mix(data["planted"], data["q"], k=10)
    assert planted["ci_low"] > planted["chance"] + 0.1


def test_group_metrics_match_fairlearn(data: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(3)
    y, q = data["y"], data["q"]
    pred = np.where(rng.random(N) < 0.8, y, 1 - y) | (q & (rng.random(N) < 0.3))
    rows = pd.DataFrame(group_metrics(y, pred, q, model="m", n_boot=50, seed=0))
    dp = rows.set_index("metric").loc["demographic_parity_difference"]
    eo = rows.set_index("metric").loc["equalized_odds_difference"]
    assert dp.value == pytest.approx(demographic_parity_difference(y, pred, sensitive_features=q))
    assert eo.value == pytest.approx(equalized_odds_difference(y, pred, sensitive_features=q))
    for g in (0, 1):
        acc = rows.set_index("metric").loc[f"accuracy[q={g}]"]
        assert acc.value == pytest.approx((pred[q == g] == y[q == g]).mean())
        assert acc.ci_low <= acc.value <= acc.ci_high


def test_control_rows_and_group_rows(table: pd.DataFrame) -> None:
    ctrl = _row(table, "original", "logistic", "balanced_accuracy", target="control")
    assert ctrl.ci_low > 0.7
    assert not table[(table.target == "control")
                     & (table.metric == "demographic_parity_difference")].empty


def test_transfer_to_unseen_label(data: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(5)
    age = rng.integers(0, 2, 2 * N)
    train = rng.normal(size=(2 * N, 4))
    train[:, 3] += 2.0 * age
    age_test = rng.integers(0, 2, N)
    test = rng.normal(size=(N, 4))
    test[:, 3] += 2.0 * age_test
    reps = {"original": test, "rotated": test[:, ::-1].copy()}  # info kept, coordinates moved
    t = audit_representations(reps, data["q"], probes=("logistic",), extras={"age": age_test},
                              transfer_source=TransferSource(train, {"age": age}), n_boot=50)
    assert _row(t, "original", "transfer_logistic", "balanced_accuracy", "age").ci_low > 0.7
    moved = _row(t, "rotated", "transfer_logistic", "balanced_accuracy", "age")
    assert moved.ci_low <= 0.5 <= moved.ci_high  # the old probe no longer transfers ...
    fresh = _row(t, "rotated", "logistic", "balanced_accuracy", "age")
    assert fresh.ci_low > 0.7  # ... but a fresh probe still finds the label


def test_continuous_q_rows() -> None:
    rng = np.random.default_rng(2)
    q = rng.normal(size=200)
    X = np.c_[q + 0.1 * rng.normal(size=200), rng.normal(size=(200, 2))]
    t = audit_representations({"m": X, "indep": rng.normal(size=(200, 3))}, q, n_boot=50)
    assert set(t.metric) == {"cka", "hsic", "r2"}
    assert _row(t, "m", "ridge", "r2").ci_low > 0.8
    r2 = _row(t, "indep", "ridge", "r2")
    assert r2.value < 0.1
    cka, null = _row(t, "m", "kernel", "cka"), _row(t, "indep", "kernel", "cka")
    assert cka.value > 0.3 > 0.05 > null.value
    assert cka.value > 10 * cka.chance


def test_chance_levels() -> None:
    y = np.array([0, 0, 0, 1])
    assert classification_chance(y, 2) == {"f1": pytest.approx(0.4), "balanced_accuracy": 0.5,
                                           "roc_auc": 0.5}
    assert classification_chance(np.arange(4), 4)["f1"] == pytest.approx(0.25)
    lo, hi = bootstrap_ci(lambda i: float(np.mean(i)), 100, n_boot=100, seed=0)
    assert lo < 49.5 < hi


def test_bad_inputs_name_the_value(data: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="representation 'x' has 3 rows but q has 300"):
        audit_representations({"x": np.zeros((3, 2))}, data["q"])
    with pytest.raises(ValueError, match=r"probe kind must be one of .* got 'rbf'"):
        fit_probe("rbf", data["planted"], data["q"])
    with pytest.raises(ValueError, match=r"class counts \[299, 1\]"):
        fit_probe("logistic", data["planted"], np.r_[np.zeros(N - 1, int), 1])
    with pytest.raises(ValueError, match="q_kind must be .* but got 'binary'"):
        audit_representations({"x": data["planted"]}, data["q"], q_kind="binary")  # type: ignore[arg-type]


def test_fast_auc_matches_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    from fairsearch.analysis.audit.metrics import _auc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    p = np.round(rng.random(100), 1)  # ties
    assert _auc(y, np.c_[1 - p, p]) == pytest.approx(roc_auc_score(y, p))
    y3 = rng.integers(0, 3, 100)
    p3 = rng.dirichlet(np.ones(3), 100)
    assert _auc(y3, p3) == pytest.approx(roc_auc_score(y3, p3, multi_class="ovr"))


def test_group_metrics_for_regression_predictions() -> None:
    rng = np.random.default_rng(4)
    q = rng.integers(0, 2, 200)
    y = rng.normal(size=200)
    pred = y + rng.normal(size=200) * np.where(q == 1, 1.0, 0.1)
    rows = pd.DataFrame(group_metrics(y, pred, q, model="wrapper", n_boot=20)).set_index("metric")
    assert set(rows.index) == {"mse[q=0]", "mse[q=1]"}
    assert rows.loc["mse[q=1]", "value"] > 10 * rows.loc["mse[q=0]", "value"]


def test_progress_counts_every_unit_and_quiet_prints_nothing(data: dict[str, np.ndarray]) -> None:
    import io

    from fairsearch.analysis.audit.progress import AuditProgress
    from fairsearch.analysis.audit.representations import audit_units

    reps = {"original": data["planted"], "indep": data["indep"]}
    probes = ("logistic", "knn")
    total = audit_units(len(reps), probes)
    # (2 models + the shuffled-q control) x (majority, logistic, knn) x 2 fold seeds; the rest
    assert total == 3 * 3 * 2 + 2
    out = io.StringIO()
    with AuditProgress(total, stream=out, interval=0.01) as progress:
        audit_representations(reps, data["q"], probes=probes, n_boot=20, progress=progress)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"audit 0/{total} units") and "ETA ?" in lines[0]
    assert lines[-1].startswith(f"audit {total}/{total} units, ")
    assert lines[-1].endswith("elapsed, ETA 00:00")
    assert progress.current == "indep: intervals, MDL, control and other labels"
    silent = io.StringIO()
    with AuditProgress(total, stream=silent, quiet=True) as progress:
        progress.start("original", "knn")
        progress.finish(total)
    assert silent.getvalue() == ""
    with pytest.raises(ValueError, match=r"interval must be > 0 seconds, got 0"):
        AuditProgress(1, interval=0)


def test_resolution_of_the_held_out_rows(table: pd.DataFrame, data: dict[str, np.ndarray]) -> None:
    from fairsearch.analysis.audit import leakage
    from fairsearch.analysis.audit.control import RESOLVE_MARGIN, resolution_rows

    assert RESOLVE_MARGIN == leakage.MARGIN
    half = _row(table, "resolution", "leak_free", "ci_half_width")
    need = _row(table, "resolution", "leak_free", "rows_to_resolve")
    # N = 300 rows resolve a leak only to about +-0.06; ~ 300 * (half / 0.05)^2 rows reach 0.05
    assert 0.03 < half.value < 0.12
    assert need.value == pytest.approx(np.ceil(N * (half.value / 0.05) ** 2))
    assert need.chance == RESOLVE_MARGIN
    # four times the rows: about half the half-width (1/sqrt(n)), never a copy of it
    rng = np.random.default_rng(1)
    big = resolution_rows(rng.normal(size=(4 * N, 4)), rng.integers(0, 2, 4 * N), n_boot=200,
                          kinds=("majority", "logistic", "knn"))
    assert big[0]["value"] == 4 * N
    ratio = big[1]["value"] / half.value
    assert 0.3 < ratio < 0.75, ratio


def test_group_intervals_agree_with_fairlearns_bootstrap(data: dict[str, np.ndarray]) -> None:
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(7)
    y, q = data["y"], data["q"]
    pred = np.where(rng.random(N) < np.where(q == 1, 0.9, 0.6), y, 1 - y)
    rows = pd.DataFrame(group_metrics(y, pred, q, model="m", n_boot=400, seed=0))
    rows = rows.set_index("metric")
    mf = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=pred, sensitive_features=q,
                     n_boot=400, ci_quantiles=[0.025, 0.975], random_state=0)
    lo, hi = mf.by_group_ci
    for g in (0, 1):
        r = rows.loc[f"accuracy[q={g}]"]
        assert r.ci_low == pytest.approx(lo[g], abs=0.02) and r.ci_high == pytest.approx(hi[g],
                                                                                       abs=0.02)
    assert rows.loc["accuracy[q=1]", "ci_low"] > rows.loc["accuracy[q=0]", "ci_high"]


@pytest.mark.parametrize("k", [2, 3])
def test_auc_bootstrap_is_the_per_resample_bootstrap(k: int) -> None:
    """The vectorised ROC-AUC bootstrap draws the resamples of :func:`bootstrap_ci` and gives
    its interval, ties and all."""
    from fairsearch.analysis.audit.metrics import _auc, _auc_bootstrap

    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 150)
    proba = np.round(rng.random((150, k)), 1) + 0.01  # many tied scores
    proba /= proba.sum(1, keepdims=True)
    slow = bootstrap_ci(lambda i: _auc(y[i], proba[i]), 150, n_boot=300, seed=4)
    np.testing.assert_allclose(_auc_bootstrap(y, proba, n_boot=300, seed=4), slow, atol=1e-12)


def test_seeds_is_the_deprecated_name_of_fold_seeds() -> None:
    import fairsearch

    rng = np.random.default_rng(0)
    q = rng.integers(0, 2, 200)
    Z = rng.normal(size=(200, 3)) + q[:, None]
    with pytest.warns(DeprecationWarning, match=r"pass `fold_seeds=` instead"):
        old = fairsearch.audit(Z, q, probes=["logistic"], n_boot=50, seeds=1)
    new = fairsearch.audit(Z, q, probes=["logistic"], n_boot=50, fold_seeds=1)
    pd.testing.assert_frame_equal(old.table, new.table)
    with pytest.raises(ValueError, match=r"`fold_seeds` must be an integer >= 1, but got 0"):
        fairsearch.audit(Z, q, fold_seeds=0)


def test_an_extra_label_that_is_q_under_another_name_is_not_a_caveat():
    from fairsearch.analysis.audit.stage import other_labels

    rng = np.random.default_rng(0)
    q = rng.integers(0, 2, 200)
    extras = {"sex": q.copy(), "sex_recoded": 5 - 2 * q, "race": rng.integers(0, 5, 200),
              "coarser": np.zeros(200, int)}
    kept = other_labels(extras, q)
    assert sorted(kept) == ["coarser", "race"]  # q itself, under any codes, goes; others stay
    assert sorted(other_labels(extras, q[::-1].copy())) == sorted(extras)  # another partition
