"""The certified bound on any classifier's balanced accuracy, against a closed-form discrete case."""

from __future__ import annotations

import numpy as np
import pytest

from fairsearch.probes.bound import bayes_balanced_accuracy, cell_codes, certified_bound

#: Group-conditional cell distributions p[k, c] of a discrete Z (2 groups, 6 cells).
P = np.array([[0.30, 0.25, 0.20, 0.10, 0.10, 0.05],
              [0.10, 0.15, 0.20, 0.20, 0.15, 0.20]])  # fmt: skip
#: Closed form: (1/2) sum_c max(p0, p1) = (0.30+0.25+0.20+0.20+0.15+0.20) / 2
BAYES = 0.65


def _sample(n: int, seed: int, p: np.ndarray = P, prior: float = 0.3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    q = (rng.random(n) < prior).astype(np.int64) if p.shape[0] == 2 else rng.integers(0, len(p), n)
    cum = np.cumsum(p, axis=1)  # inverse-CDF draw of each row's cell from its group's p
    cells = (rng.random(n)[:, None] > cum[q]).sum(1)
    return cells, q


def test_closed_form_matches_the_formula():
    assert bayes_balanced_accuracy(P) == pytest.approx(BAYES)
    assert bayes_balanced_accuracy(np.full((2, 4), 0.25)) == pytest.approx(0.5)  # independent


@pytest.mark.parametrize("method", ["rule", "cells"])
def test_bound_contains_the_optimum_and_shrinks_with_n(method):
    kw = {"n_cells": P.shape[1]} if method == "cells" else {}
    gaps = {}
    for n in (1000, 16000):
        bounds = [certified_bound(*_sample(n, seed), delta=0.05, method=method, **kw)
                  for seed in range(20)]  # fmt: skip
        assert all(b.value >= BAYES for b in bounds)  # holds (w.p. >= 0.95 each; here always)
        assert all(b.certified for b in bounds)
        gaps[n] = float(np.mean([b.value - BAYES for b in bounds]))
    assert gaps[16000] < gaps[1000] / 2  # ~ 1/sqrt(n): 4x the rows, about half the gap
    assert gaps[16000] < 0.06


def test_rule_bound_is_tight_for_an_independent_representation():
    cells, q = _sample(20000, 0, p=np.full((2, 4), 0.25))
    b = certified_bound(cells, q, delta=0.05)
    assert 0.5 <= b.value < 0.53
    assert b.plug_in <= b.value and b.slack > 0


def test_continuous_representation_has_no_bound():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(500, 3))
    q = rng.integers(0, 2, 500)
    assert cell_codes(Z) is None
    b = certified_bound(np.arange(500), q)  # every row its own cell
    assert not b.certified and b.value == 1.0
    assert b.describe().startswith("no bound")


def test_cell_codes_finds_the_cells_of_repeated_vectors():
    codebook = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]], dtype=np.float32)
    ids = np.array([2, 0, 0, 1, 2, 2, 1, 0])
    codes = cell_codes(codebook[ids])
    assert codes is not None and len(np.unique(codes)) == 3
    assert all(len(np.unique(codes[ids == i])) == 1 for i in range(3))


def test_multiclass_bound_holds():
    p = np.array([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]])
    cells, q = _sample(6000, 1, p=p)
    b = certified_bound(cells, q)
    assert b.n_classes == 3 and b.value >= bayes_balanced_accuracy(p) == pytest.approx(0.6)
    assert b.value < 0.65


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"delta": 0.0}, r"delta must be a number in \(0, 1\), but got 0.0"),
    ({"method": "tree"}, r"method must be one of \['rule', 'cells'\], but got 'tree'"),
    ({"method": "cells"}, r"n_cells must be an integer >= the 6 cells seen .* but got None"),
    ({"method": "cells", "n_cells": 3}, r"n_cells must be an integer >= the 6 cells .* got 3"),
    ({"n_cells": 6}, r"n_cells is only used by method='cells'"),
])  # fmt: skip
def test_bad_arguments_are_named(kwargs, match):
    cells, q = _sample(300, 0)
    with pytest.raises(ValueError, match=match):
        certified_bound(cells, q, **kwargs)


def test_bad_data_is_named():
    with pytest.raises(ValueError, match="q must hold at least 2 groups"):
        certified_bound([0, 1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="same non-zero length"):
        certified_bound([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="each row of p must sum to 1"):
        bayes_balanced_accuracy([[0.5, 0.4], [0.5, 0.5]])


def test_audit_shows_the_bound_for_a_discrete_representation_only():
    from fairsearch.analysis.audit.representations import audit_representations

    cells, q = _sample(1200, 3)
    codebook = np.random.default_rng(0).normal(size=(P.shape[1], 4))
    y = np.random.default_rng(1).integers(0, 2, len(q))
    table = audit_representations(
        {"quantized": codebook[cells], "continuous": np.random.default_rng(2).normal(size=(1200, 4))},
        q, y=y, probes=("logistic",), n_boot=20, seed=0)  # fmt: skip
    rows = table[table.probe == "certified_bound"]
    assert list(rows.model) == ["quantized"]  # none for the continuous one: no bound exists
    row = rows.iloc[0]
    assert BAYES <= row.value < 0.75 and row.ci_low == row.ci_high == row.value
    worst = table[(table.model == "quantized") & (table.probe == "worst_case")].iloc[0]
    assert worst.value <= row.value  # the bracket: probes from below, the bound from above
