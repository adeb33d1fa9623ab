"""Figures of the report, drawn from finished tables; each function returns PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 100


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def colour_column(trials: pd.DataFrame) -> str | None:
    """``param.mu`` if present, else the fairness loss kind, else nothing."""
    for c in ("param.mu", "param.fairness", "param.dependence", "param.loss"):
        if c in trials and trials[c].notna().any():
            return c
    return None


def trade_off(trials: pd.DataFrame, pareto: pd.DataFrame | None,
              objectives: Sequence[tuple[str, str]]) -> bytes:
    """Completed trials on the first two objectives, the front, and the chosen point."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    (mx, dx), (my, dy) = objectives[0], objectives[1] if len(objectives) > 1 else objectives[0]
    cx, cy = f"objective.{mx}", f"objective.{my}"
    done = trials[(trials.get("status", "completed") == "completed")
                  & trials[cx].notna() & trials[cy].notna()]
    colour = colour_column(done)
    if colour is None:
        ax.scatter(done[cx], done[cy], s=28, c="tab:blue", alpha=0.7, label="trial")
    elif pd.api.types.is_numeric_dtype(done[colour]):
        sc = ax.scatter(done[cx], done[cy], s=28, c=done[colour].astype(float), cmap="viridis",
                        alpha=0.8)
        fig.colorbar(sc, ax=ax, label=colour.removeprefix("param."))
    else:
        for i, (kind, part) in enumerate(done.groupby(colour, dropna=False)):
            ax.scatter(part[cx], part[cy], s=28, color=f"C{i}", alpha=0.8, label=str(kind))
    if pareto is not None and len(done):
        merged = done.merge(pareto[["trial_id", "on_front", "chosen"]], on="trial_id", how="left")
        front = merged[merged["on_front"].fillna(False).astype(bool)].sort_values(cx)
        ax.plot(front[cx], front[cy], "-", color="black", lw=1.2, drawstyle="steps-post"
                if len(objectives) == 2 else "default", label="Pareto front")
        ax.scatter(front[cx], front[cy], s=60, facecolors="none", edgecolors="black")
        pick = merged[merged["chosen"].fillna(False).astype(bool)]
        ax.scatter(pick[cx], pick[cy], s=260, marker="*", color="red", edgecolors="black",
                   zorder=5, label="chosen")
    ax.set_xlabel(f"{mx} ({dx})")
    ax.set_ylabel(f"{my} ({dy})")
    ax.set_title("Trials and the trade-off frontier")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    return _png(fig)


def hypervolume_curve(curve: Sequence[dict[str, float]]) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    n = [c["number"] for c in curve]
    hv = [c["hypervolume"] for c in curve]
    ax.step(n, hv, where="post", color="tab:green")
    ax.set_xlabel("trial number")
    ax.set_ylabel("hypervolume")
    ax.set_title("Hypervolume of the front found so far")
    ax.grid(alpha=0.3)
    return _png(fig)


def loss_curves(history: pd.DataFrame, trial_ids: Sequence[str],
                labels: Sequence[str] | None = None) -> bytes:
    """One panel per trial: every reported term against the epoch."""
    ids = [t for t in trial_ids if (history["trial_id"] == t).any()]
    fig, axes = plt.subplots(1, max(len(ids), 1), figsize=(4.2 * max(len(ids), 1), 3.4),
                             squeeze=False)
    terms = [c for c in history.columns
             if c not in ("trial_id", "epoch", "number", "run_id") and pd.api.types.is_numeric_dtype(history[c])]
    for ax, tid, label in zip(axes[0], ids, labels or ids, strict=False):
        part = history[history["trial_id"] == tid].sort_values("epoch")
        for term in terms:
            if part[term].notna().any():
                ax.plot(part["epoch"], part[term], label=term)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if np.nanmin(part[terms].to_numpy(float, na_value=np.nan), initial=np.inf) > 0:
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Loss decomposition during training")
    return _png(fig)
