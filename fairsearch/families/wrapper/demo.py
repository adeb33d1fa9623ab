"""``fairsearch demo``: the mu sweep of the FairModelWrapper source on its synthetic problem.

y = tanh(x1) + 0.5 x2 + 3 q + noise with q visible in X; a 2x32 ReLU MLP (Adam 3e-3, 40 epochs,
batch 128, 600/200 split) is trained at each mu from the same initial weights. The penalty and the
reported CKA use unit bandwidths, as the source does, so the numbers compare with its table; the
median-bandwidth CKA is printed next to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fairsearch.families.wrapper.model import EpochRecord, FairModelWrapper
from fairsearch.measures.dependence import cka_score
from fairsearch.nets import build_mlp

DEFAULT_MUS = (0.0, 0.5, 2.0, 8.0)


@dataclass(frozen=True)
class SweepPoint:
    mu: float
    test_mse: float
    cka: float  # CKA(yhat, q) with sigma_f = sigma_q = 1 (the source's metric)
    cka_median: float  # the same with median-heuristic bandwidths
    seconds: float


def sweep(
    mus: tuple[float, ...] = DEFAULT_MUS,
    *,
    epochs: int = 40,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[SweepPoint], dict[float, list[EpochRecord]], dict[float, np.ndarray], np.ndarray]:
    """Train one wrapped MLP per mu; returns the points, histories, test predictions and test q."""
    from fairsearch.data import synthetic_regression

    data = synthetic_regression(seed=seed)
    train, test = data.subset("train"), data.subset("test")
    points, histories, preds = [], {}, {}
    for i, mu in enumerate(mus):
        torch.manual_seed(seed)  # the same initial weights at every mu
        start = time.perf_counter()
        model = FairModelWrapper(
            build_mlp(train.X.shape[1], 1, "32-32"), mu=mu, sigma_f=1.0, sigma_q=1.0, device="cpu"
        )
        model.fit(train.X, train.y, q=train.q, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        yhat = model.predict(test.X)
        point = SweepPoint(
            mu=float(mu),
            test_mse=float(np.mean((yhat - test.y.reshape(-1)) ** 2)),
            cka=cka_score(yhat, test.q, sigma_x=1.0, sigma_y=1.0),
            cka_median=cka_score(yhat, test.q),
            seconds=time.perf_counter() - start,
        )
        points.append(point)
        histories[float(mu)] = model.history_
        preds[float(mu)] = yhat
        if progress:
            print(f"  [{i + 1}/{len(mus)}] mu={mu:g} trained in {point.seconds:.1f}s", file=sys.stderr)
    return points, histories, preds, np.asarray(test.q).reshape(-1)


def format_table(points: list[SweepPoint]) -> str:
    lines = [f"{'mu':>6} {'test MSE':>9} {'CKA(yhat,q)':>12} {'CKA median-bw':>14}", "-" * 44]
    lines += [f"{p.mu:>6.2f} {p.test_mse:>9.3f} {p.cka:>12.3f} {p.cka_median:>14.3f}" for p in points]
    return "\n".join(lines)


def save_plots(
    out: Path,
    points: list[SweepPoint],
    histories: dict[float, list[EpochRecord]],
    preds: dict[float, np.ndarray],
    q: np.ndarray,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([p.cka for p in points], [p.test_mse for p in points], "o-", color="tab:blue")
    for i, p in enumerate(points):  # alternate sides so that close points keep readable labels
        ax.annotate(f"μ={p.mu:g}", (p.cka, p.test_mse), textcoords="offset points",
                    xytext=(0, 8) if i % 2 else (0, -16), ha="center")
    ax.set_xlabel("CKA(ŷ, q) on test — lower is fairer")
    ax.set_ylabel("test MSE — lower is more accurate")
    ax.set_title("Fairness / accuracy trade-off")
    ax.margins(0.12)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(out / "tradeoff.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(points), figsize=(3.4 * len(points), 3.2), sharex=True)
    for ax, p in zip(np.atleast_1d(axes), points, strict=True):
        hist = histories[p.mu]
        epochs = [r.epoch + 1 for r in hist]
        ax.plot(epochs, [r.total for r in hist], lw=2, label="total")
        ax.plot(epochs, [r.task for r in hist], ls="--", label="task (MSE)")
        ax.plot(epochs, [max(r.fairness, 1e-6) for r in hist], ls=":", label="μ·CKA")
        ax.set_yscale("log")
        ax.set_title(f"μ = {p.mu:g}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("training loss (log)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "loss_decomposition.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(points), figsize=(3.4 * len(points), 3.2), sharey=True)
    for ax, p in zip(np.atleast_1d(axes), points, strict=True):
        ax.scatter(q, preds[p.mu], s=10, alpha=0.6)
        ax.set_title(f"μ = {p.mu:g}")
        ax.set_xlabel("q (protected)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("ŷ")
    fig.tight_layout()
    paths.append(out / "predictions_vs_q.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder for the plots")
    parser.add_argument("--mus", type=float, nargs="+", default=list(DEFAULT_MUS))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def main(args: argparse.Namespace) -> int:
    if any(m < 0 for m in args.mus):
        raise ValueError(f"every mu must be >= 0, but got {args.mus}")
    points, histories, preds, q = sweep(
        tuple(args.mus), epochs=args.epochs, seed=args.seed, progress=not args.quiet
    )
    print(format_table(points))
    paths = save_plots(args.out, points, histories, preds, q)
    (args.out / "results.json").write_text(json.dumps([asdict(p) for p in points], indent=2))
    for path in paths:
        print(f"wrote {path}")
    return 0
