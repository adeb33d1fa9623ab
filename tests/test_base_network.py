"""Base network: unfair embeddings exported with their splits, round-tripped through Parquet."""

from __future__ import annotations

import numpy as np
import pytest

from fairsearch.data import load_dataset, load_parquet, save_parquet
from fairsearch.data.base_network import (
    export_embeddings,
    linear_probe_baselines,
    train_base_network,
)


@pytest.fixture(scope="module")
def adult():
    return load_dataset("adult", protected="sex", max_rows=1500, seed=0, drop_protected=True)


def test_export_round_trips_through_parquet(tmp_path, adult):
    net = train_base_network(adult, hidden=(32, 16), epochs=3, seed=0)
    emb = export_embeddings(adult, net)
    assert emb.X.shape == (adult.n, 16) and emb.X.dtype == np.float32
    assert not any(p.requires_grad for p in net.parameters())  # frozen
    path = save_parquet(emb, tmp_path / "emb.parquet")
    back = load_parquet(path)
    np.testing.assert_array_equal(back.X, emb.X)
    np.testing.assert_array_equal(back.split, adult.split)
    np.testing.assert_array_equal(back.y, adult.y)
    np.testing.assert_array_equal(back.q, adult.q)
    for key, values in adult.extras.items():
        np.testing.assert_array_equal(back.extras[key], values)


def test_embeddings_carry_both_labels(adult):
    net = train_base_network(adult, hidden=(32, 16), epochs=8, seed=0)
    base = linear_probe_baselines(export_embeddings(adult, net))
    assert base["control_bacc"] > 0.65 and base["protected_bacc"] > 0.65


def test_base_network_rejects_regression():
    from fairsearch.data import synthetic_regression

    with pytest.raises(ValueError, match="needs a classification target"):
        train_base_network(synthetic_regression(), epochs=1)
