"""Unfair embeddings from a real base network, as in the translator report (Section 4.1).

A small MLP is trained on tabular data (UCI Adult by default) to predict the *joint* label
``control x protected`` (income x sex: 4 classes), which makes its hidden layers encode both.
It is then frozen and its penultimate-layer activations are exported, with the dataset's splits,
labels and extras, as a Parquet dataset (:func:`fairsearch.data.save_parquet`). Linear-probe
baselines (train -> val) say how much of each label the embeddings carry.

    python -m fairsearch.data.base_network --out adult_embeddings.parquet
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fairsearch.data._adult import load_adult
from fairsearch.data._dataset import Dataset
from fairsearch.data._parquet import save_parquet
from fairsearch.nets import activation_module, resolve_device
from fairsearch.probes.ladder.fresh import probe_scores

__all__ = [
    "BaseNetwork",
    "adult_embeddings",
    "build_adult_embeddings",
    "export_embeddings",
    "linear_probe_baselines",
    "train_base_network",
]


class BaseNetwork(nn.Module):
    """``X -> hidden... -> embedding -> joint logits``; ``embed`` returns the penultimate layer."""

    def __init__(self, d_in: int, n_out: int, hidden: Sequence[int], activation: str = "relu") -> None:
        super().__init__()
        if not hidden:
            raise ValueError(f"hidden must name at least one layer, but got {list(hidden)!r}")
        layers: list[nn.Module] = []
        prev = d_in
        for h in hidden:
            layers += [nn.Linear(prev, int(h)), activation_module(activation)]
            prev = int(h)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(prev, n_out)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _joint(data: Dataset) -> tuple[np.ndarray, int]:
    y, q = np.asarray(data.y, np.int64), np.asarray(data.q, np.int64)
    n_q = int(q.max()) + 1
    return y * n_q + q, (int(y.max()) + 1) * n_q


def train_base_network(
    data: Dataset,
    *,
    hidden: Sequence[int] = (128, 64),
    activation: str = "relu",
    epochs: int = 15,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> BaseNetwork:
    """Train on the train split to predict the joint ``y x q`` label; returns the frozen network.
    ``progress(epoch, epochs)`` is called after each epoch."""
    if data.task != "classification" or data.q_kind != "categorical" or np.asarray(data.q).ndim != 1:
        raise ValueError(
            "the base network needs a classification target and one categorical protected "
            f"attribute, but dataset {data.name!r} has task={data.task!r}, q_kind={data.q_kind!r}"
        )
    train = data.subset("train")
    joint, n_out = _joint(data)
    joint = joint[np.asarray(data.split).astype(str) == "train"]
    dev = resolve_device(device)
    torch.manual_seed(seed)
    net = BaseNetwork(train.d, n_out, hidden, activation).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    X = torch.from_numpy(np.asarray(train.X, np.float32)).to(dev)
    t = torch.from_numpy(joint).to(dev)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        perm = torch.randperm(len(t), generator=gen).to(dev)
        for start in range(0, len(t), batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(X[idx]), t[idx]).backward()
            opt.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    net.eval()
    for prm in net.parameters():
        prm.requires_grad_(False)
    return net


@torch.no_grad()
def export_embeddings(data: Dataset, net: BaseNetwork, *, name: str | None = None) -> Dataset:
    """``data`` with ``X`` replaced by the frozen network's penultimate activations (all rows)."""
    dev = next(net.parameters()).device
    X = np.asarray(data.X, np.float32)
    parts = [net.embed(torch.from_numpy(X[s : s + 8192]).to(dev)).cpu().numpy()
             for s in range(0, len(X), 8192)]  # fmt: skip
    return dataclasses.replace(
        data, X=np.concatenate(parts).astype(np.float32), feature_names=(),
        name=name or f"{data.name}_base_embeddings",
    )  # fmt: skip


def linear_probe_baselines(data: Dataset, *, seed: int = 0) -> dict[str, float]:
    """Fresh logistic probes trained on the train split, scored on val: control and protected."""
    train, val = data.subset("train"), data.subset("val")
    out: dict[str, float] = {}
    for label, a, b in (("control", train.y, val.y), ("protected", train.q, val.q)):
        s = probe_scores(train.X, a, val.X, b, seed=seed)
        out.update({f"{label}_f1": s["f1"], f"{label}_bacc": s["bacc"], f"{label}_acc": s["acc"]})
    return out


def adult_embeddings(*, protected: str = "sex", seed: int = 0, max_rows: int | None = None,
                     drop_protected: bool = True, **train_kwargs: Any) -> Dataset:
    """Adult -> base network (``train_kwargs``: those of :func:`train_base_network`) ->
    embeddings, without the probe baselines."""
    data = load_adult(protected=protected, seed=seed, max_rows=max_rows,
                      drop_protected=drop_protected)  # fmt: skip
    net = train_base_network(data, seed=seed, **train_kwargs)
    return export_embeddings(data, net, name=f"adult_{protected}_base_embeddings")


def build_adult_embeddings(
    out: str | Path | None = None,
    *,
    protected: str = "sex",
    seed: int = 0,
    max_rows: int | None = None,
    drop_protected: bool = True,
    **train_kwargs: Any,
) -> tuple[Dataset, dict[str, float]]:
    """Adult -> base network -> embeddings (saved to ``out`` when given) and probe baselines.

    ``drop_protected`` (default) leaves the protected attribute's own columns out of the base
    network's input: the embeddings then learn it from proxies (relationship, occupation...), as
    an image encoder learns race from pixels, instead of copying one input column.
    """
    emb = adult_embeddings(protected=protected, seed=seed, max_rows=max_rows,
                           drop_protected=drop_protected, **train_kwargs)  # fmt: skip
    if out is not None:
        save_parquet(emb, out)
    return emb, linear_probe_baselines(emb, seed=seed)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m fairsearch.data.base_network",
                                 description=__doc__.splitlines()[0])  # fmt: skip
    ap.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    ap.add_argument("--protected", default="sex", choices=["sex", "race", "race_white"])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--hidden", default="128-64", help="layer sizes, the last is the embedding")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-rows", type=int, default=None)
    args = ap.parse_args(argv)
    hidden = tuple(int(h) for h in args.hidden.split("-"))
    emb, base = build_adult_embeddings(args.out, protected=args.protected, seed=args.seed,
                                       max_rows=args.max_rows, epochs=args.epochs, hidden=hidden)  # fmt: skip
    print(f"wrote {args.out}: {emb!r}")
    print("linear-probe baselines (train -> val): "
          + ", ".join(f"{k}={v:.3f}" for k, v in base.items()))  # fmt: skip


if __name__ == "__main__":
    main()
