"""Multi-worker trials are data parallel: each rank trains on its own rows, gradients are
averaged, so two ranks end with the same weights (gloo, two CPU processes, no Ray)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fairsearch.data import load_dataset


def _worker(rank: int, world: int, port: int, family: str, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        if family == "translator":
            from fairsearch.families.translator import Translator

            rng = np.random.default_rng(0)
            E = rng.normal(size=(203, 12)).astype(np.float32)
            y, q = (E[:, 0] > 0).astype(int), (E[:, 1] > 0).astype(int)
            tr = Translator(bottleneck=4, fairness="adversarial", epochs=3, batch_size=16, seed=0)
            tr.fit(E, y, q=q)
            rows = tr.train_rows_.tolist()
            state = {**tr.net_.state_dict(), **{f"head.{k}": v for k, v in tr.head_.state_dict().items()}}
        else:
            from fairsearch.families import TrialSettings
            from fairsearch.families.wrapper import family as wrapper_family
            from fairsearch.families.wrapper.model import FairModelWrapper

            seen: list[np.ndarray] = []
            original = FairModelWrapper.fit

            def spy(self, X, *args, **kwargs):
                seen.append(np.asarray(X).copy())
                return original(self, X, *args, **kwargs)

            FairModelWrapper.fit = spy
            data = load_dataset("synthetic_regression", n=301, n_train=301, seed=0)
            ddp = None if family == "wrapper-unsynced" else torch.nn.parallel.DistributedDataParallel
            settings = TrialSettings(epochs=3, batch_size=32, rank=rank, world_size=world,
                                     prepare_module=ddp)  # fmt: skip
            fitted = wrapper_family.WrapperFamily().fit({"mu": 1.0, "lr": 1e-2}, data, data,
                                                        settings, lambda r: None)
            X = np.asarray(data.X)
            rows = [int(np.flatnonzero((X == r).all(1))[0]) for r in seen[0]]
            state = wrapper_family.WrapperFamily().state(fitted)[0]
        out[rank] = (rows, {k: v.detach().clone() for k, v in state.items()})
    finally:
        dist.destroy_process_group()


def _two_ranks(family: str) -> tuple:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, port, family, out), nprocs=2, join=True)
        return out[0], out[1]


@pytest.mark.parametrize("family", ["translator", "wrapper"])
def test_two_ranks_see_disjoint_rows_and_end_with_identical_weights(family):
    (rows0, w0), (rows1, w1) = _two_ranks(family)
    assert rows0 and rows1 and not set(rows0) & set(rows1)  # disjoint shards
    assert len(rows0) == len(rows1)  # equal shards: every rank takes as many steps
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.allclose(w0[k], w1[k], atol=1e-6), k  # gradients were synchronised
    # and training happened: the shards differ, so unsynchronised ranks would have diverged
    assert any(not torch.equal(w0[k], torch.zeros_like(w0[k])) for k in w0)


def test_without_gradient_averaging_the_two_ranks_end_apart():
    """The negative control of the test above: the same shards trained without DDP's gradient
    averaging end with different weights, so equal weights there are the averaging's doing."""
    (rows0, w0), (rows1, w1) = _two_ranks("wrapper-unsynced")
    assert rows0 and rows1 and not set(rows0) & set(rows1)
    assert any(not torch.allclose(w0[k], w1[k], atol=1e-6) for k in w0)
