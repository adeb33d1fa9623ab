"""Figures of the report, drawn from finished tables; each function returns PNG bytes.

Configurations are labelled by their trial number (``#3``) as in every table.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fairsearch.runfolder.names import metric_info, metric_label, model_label, probe_label  # noqa: E402

DPI = 100
_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P")
#: Panels of the loss curves: history columns by the role their family declares for them.
_PANELS: dict[str, str] = {"loss": "losses", "utility": "utility", "leakage": "leakage"}


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


def _is_bacc(metric: str) -> bool:
    """A balanced accuracy of q (its family says so), on which chance and the floor are drawn."""
    info = metric_info(metric)
    return metric == "balanced_accuracy" or (info is not None and info.balanced_accuracy)


def trade_off(trials: pd.DataFrame, pareto: pd.DataFrame | None,
              objectives: Sequence[tuple[str, str]], summary: pd.DataFrame | None = None,
              chosen: int | None = None, chance: float | None = None,
              floor: float | None = None, subject_to: Sequence[str] = ()) -> bytes:
    """Search trials on the first two objectives with their front; retrained seed means ± std
    (validation) with the robust front; the recommended configuration; the rule's boundary
    (each constraint on a plotted objective, shaded on its failing side); chance/floor lines
    on an axis that is a balanced accuracy."""
    fig, ax = plt.subplots(figsize=(9.0, 5.2))
    (mx, dx), (my, dy) = objectives[0], objectives[1] if len(objectives) > 1 else objectives[0]
    cx, cy = f"objective.{mx}", f"objective.{my}"
    done = trials[(trials.get("status", "completed") == "completed")
                  & trials[cx].notna() & trials[cy].notna()]
    colour = colour_column(done)
    _search_trials(fig, ax, done, (mx, my), colour)
    if pareto is not None and len(done):
        _search_front(ax, done, pareto, (cx, cy), len(objectives))
    if summary is not None and f"metric.{mx}.mean" in summary and f"metric.{my}.mean" in summary:
        _retrained(ax, summary, (f"metric.{mx}", f"metric.{my}"))
    if chosen is not None:
        _recommended(ax, done, summary, chosen, (mx, my))
    _rule_boundary(ax, subject_to, mx, my)
    for metric, line in ((mx, ax.axvline), (my, ax.axhline)):
        if _is_bacc(metric):
            if chance is not None:
                line(chance, color="0.2", ls=":", lw=1.2, label=f"chance {chance:.2f}")
            if floor is not None:
                line(floor, color="C3", ls="-.", lw=1.2, label=f"floor {floor:.2f}")
    ax.set_xlabel(f"{metric_label(mx)} (validation; {dx})")
    ax.set_ylabel(f"{metric_label(my)} (validation; {dy})")
    ax.grid(alpha=0.3)
    ax.margins(0.12)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.18 if colour and
              pd.api.types.is_numeric_dtype(done[colour]) else 1.01, 1.0), frameon=False)
    return _png(fig)


def _search_trials(fig: plt.Figure, ax: Any, done: pd.DataFrame, metrics: tuple[str, str],
                   colour: str | None) -> None:
    """The completed search trials (seed means) with their standard errors, coloured by
    ``colour`` (a colour bar for a number, one colour per kind otherwise)."""
    (mx, my), (cx, cy) = metrics, (f"objective.{metrics[0]}", f"objective.{metrics[1]}")
    ex, ey = (done[c].to_numpy(float, na_value=np.nan) if c in done else None
              for c in (f"se.{mx}", f"se.{my}"))  # fmt: skip
    if ex is not None or ey is not None:  # seed noise: the standard error of each seed mean
        ax.errorbar(done[cx], done[cy], xerr=ex, yerr=ey, fmt="none", ecolor="0.75", lw=0.8,
                    capsize=0, zorder=1, label="search: seed mean ± standard error")
    if colour is None:
        ax.scatter(done[cx], done[cy], s=24, c="0.6", label="search trial")
    elif pd.api.types.is_numeric_dtype(done[colour]):
        sc = ax.scatter(done[cx], done[cy], s=24, c=done[colour].astype(float), cmap="viridis",
                        alpha=0.8, label="search trial")
        fig.colorbar(sc, ax=ax, label=colour.removeprefix("param."), pad=0.01)
    else:
        for i, (kind, part) in enumerate(done.groupby(colour, dropna=False)):
            ax.scatter(part[cx], part[cy], s=24, color=f"C{i + 2}", alpha=0.8,
                       label=f"search: {kind}")


def _search_front(ax: Any, done: pd.DataFrame, pareto: pd.DataFrame, cols: tuple[str, str],
                  n_objectives: int) -> None:
    """The search's front through its members, each labelled ``#N``."""
    cx, cy = cols
    merged = done.merge(pareto[["trial_id", "on_front"]], on="trial_id", how="left")
    front = merged[merged["on_front"].fillna(False).astype(bool)].sort_values(cx)
    ax.plot(front[cx], front[cy], "-", color="0.3", lw=1.0, label="search front",
            drawstyle="steps-post" if n_objectives == 2 else "default")
    for _, r in front.iterrows():
        ax.annotate(f"#{int(r['number'])}", (r[cx], r[cy]), textcoords="offset points",
                    xytext=(4, -10), fontsize=8, color="0.3")


def _retrained(ax: Any, summary: pd.DataFrame, cols: tuple[str, str]) -> None:
    """Retrained configurations: seed mean ± std, the robust front, unstable ones flagged."""
    sx, sy = cols
    s = summary.dropna(subset=[f"{sx}.mean", f"{sy}.mean"])
    ax.errorbar(s[f"{sx}.mean"], s[f"{sy}.mean"], xerr=s[f"{sx}.std"], yerr=s[f"{sy}.std"],
                fmt="s", color="C0", ms=6, capsize=3, label="retrained: seed mean ± std")
    robust = s[s["robust_front"].astype(bool)].sort_values(f"{sx}.mean")
    if len(robust) > 1:
        ax.plot(robust[f"{sx}.mean"], robust[f"{sy}.mean"], "--", color="C0", lw=1.2,
                label="robust front (seed means)")
    for _, r in s.iterrows():
        flag = " unstable" if bool(r.get("unstable", False)) else ""
        ax.annotate(f"#{int(r['number'])}{flag}", (r[f"{sx}.mean"], r[f"{sy}.mean"]),
                    textcoords="offset points", xytext=(6, 6), fontsize=8, color="C0")


def _recommended(ax: Any, done: pd.DataFrame, summary: pd.DataFrame | None, chosen: int,
                 metrics: tuple[str, str]) -> None:
    """A star on the recommended configuration: its retrained seed mean, else its search trial."""
    (mx, my), point = metrics, None
    sx, sy = f"metric.{mx}", f"metric.{my}"
    if summary is not None and f"{sx}.mean" in summary and (summary["number"] == chosen).any():
        r = summary[summary["number"] == chosen].iloc[0]
        point = (r[f"{sx}.mean"], r[f"{sy}.mean"])
    elif (done["number"] == chosen).any():
        r = done[done["number"] == chosen].iloc[0]
        point = (r[f"objective.{mx}"], r[f"objective.{my}"])
    if point is not None and np.isfinite(point).all():
        ax.scatter(*point, s=220, marker="*", color="red", edgecolors="black", zorder=5,
                   label=f"recommended #{chosen}")


def _rule_boundary(ax: Any, subject_to: Sequence[str], mx: str, my: str) -> None:
    """Each constraint on a plotted objective as a line, its failing side shaded."""
    from fairsearch.spec.constraints import parse_constraint

    for text in subject_to:
        c = parse_constraint(text)
        for metric, line, span in ((mx, ax.axvline, ax.axvspan), (my, ax.axhline, ax.axhspan)):
            if c.metric != metric or c.op == "==":
                continue
            line(c.value, color="C1", ls="--", lw=1.4, label=f"rule: {text}")
            lo, hi = (ax.get_xlim() if span is ax.axvspan else ax.get_ylim())
            fail = (c.value, max(hi, c.value)) if c.op in ("<=", "<") else (min(lo, c.value),
                                                                            c.value)
            span(*fail, color="C1", alpha=0.07, lw=0)
            (ax.set_xlim if span is ax.axvspan else ax.set_ylim)(lo, hi)


def hypervolume_curve(curve: Sequence[dict[str, float]]) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    n = [c["number"] for c in curve]
    hv = [c["hypervolume"] for c in curve]
    ax.step(n, hv, where="post", color="tab:green")
    ax.set_xlabel("trial number (#)")
    ax.set_ylabel("hypervolume of the front so far")
    ax.grid(alpha=0.3)
    return _png(fig)


def _panel(column: str) -> str:
    info = metric_info(column)
    return _PANELS.get(info.role, "other") if info is not None else "other"


def loss_curves(history: pd.DataFrame, numbers: Sequence[int],
                labels: Sequence[str] | None = None) -> bytes:
    """One panel per role of the quantities (losses / utility / leakage); colour =
    configuration, line style = quantity."""
    ids = [n for n in numbers if (history["number"] == n).any()]
    labels = list(labels or [f"#{n}" for n in ids])
    terms = [c for c in history.columns
             if c not in ("trial_id", "epoch", "number", "run_id", "seed")
             and pd.api.types.is_numeric_dtype(history[c])
             and history.loc[history["number"].isin(ids), c].notna().any()]
    groups: dict[str, list[str]] = {}
    for t in terms:
        groups.setdefault(_panel(t), []).append(t)
    order = [n for n in _PANELS.values() if n in groups] + (["other"] if "other" in groups else [])
    fig, axes = plt.subplots(1, max(len(order), 1), figsize=(4.2 * max(len(order), 1), 3.4),
                             squeeze=False)
    shown = history[history["number"].isin(ids)]
    # a term measured only at some epochs (the translator's fresh probe: halving's rungs and the
    # last epoch) joins its points, each marked with its term's marker
    sparse = {t for t in terms if shown[t].isna().any()}
    span = (float(shown["epoch"].min()), float(shown["epoch"].max())) if len(shown) else (0.0, 1.0)
    for ax, panel in zip(axes[0], order, strict=False):
        cols = groups[panel]
        for k, n in enumerate(ids):  # a configuration's seeds: their mean per epoch
            part = (history[history["number"] == n].groupby("epoch", as_index=False)[cols]
                    .mean().sort_values("epoch"))
            for s, term in enumerate(cols):
                points = part[["epoch", term]].dropna()
                ax.plot(points["epoch"], points[term], color=f"C{k}", ls=_STYLES[s % len(_STYLES)],
                        lw=1.5, marker=_MARKERS[s % len(_MARKERS)] if term in sparse else None,
                        ms=5)  # fmt: skip
        ax.set_xlim(span[0] - 0.4, span[1] + 0.4)  # every panel over the same epochs
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(panel)
        ax.grid(alpha=0.3)
        vals = history.loc[history["number"].isin(ids), cols].to_numpy(float, na_value=np.nan)
        if panel == "losses" and np.nanmin(vals) > 0 and np.nanmax(vals) / np.nanmin(vals) > 50:
            ax.set_yscale("log")
        handles = [Line2D([], [], color="black", ls=_STYLES[s % len(_STYLES)],
                          marker=_MARKERS[s % len(_MARKERS)] if t in sparse else None,
                          label=metric_label(t))
                   for s, t in enumerate(cols)]  # fmt: skip
        ax.legend(handles=handles, fontsize=7, loc="best", title="quantity", title_fontsize=7)
    fig.legend(handles=[Line2D([], [], color=f"C{k}", lw=2, label=lab)
                        for k, lab in enumerate(labels)],
               loc="upper center", ncol=len(labels), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1.06))
    fig.tight_layout()
    return _png(fig)


def forest(audit: pd.DataFrame, metric: str = "balanced_accuracy", target: str = "q",
           floor: float | None = None, models: Sequence[str] | None = None) -> bytes | None:
    """Each (model, probe) value with its 95% interval; chance and floor as vertical lines."""
    part = audit[(audit["target"] == target) & (audit["metric"] == metric)]
    if not len(part):
        return None
    order = list(models) if models is not None else list(dict.fromkeys(part["model"]))
    probes = list(dict.fromkeys(part["probe"]))
    if "worst_case" in probes:
        probes = [p for p in probes if p != "worst_case"] + ["worst_case"]
    rows = [(m, p) for m in order for p in probes
            if ((part["model"] == m) & (part["probe"] == p)).any()]
    fig, ax = plt.subplots(figsize=(8.0, 0.8 + 0.24 * len(rows)))
    y = np.arange(len(rows))[::-1]
    for yi, (m, p) in zip(y, rows, strict=True):
        r = part[(part["model"] == m) & (part["probe"] == p)].iloc[0]
        k = probes.index(p)
        worst = p == "worst_case"
        ax.errorbar(r["value"], yi, xerr=[[r["value"] - r["ci_low"]], [r["ci_high"] - r["value"]]],
                    fmt="D" if worst else "o", color="black" if worst else f"C{k}",
                    ms=6 if worst else 4, capsize=2, lw=1.6 if worst else 1)
    ax.set_yticks(y, [f"{model_label(m)} · {probe_label(p)}" for m, p in rows],
                  fontsize=8)
    chance = part["chance"].dropna()
    if len(chance):
        ax.axvline(chance.iloc[0], color="0.2", ls=":", lw=1.2, label=f"chance {chance.iloc[0]:.2f}")
    if floor is not None:
        ax.axvline(floor, color="C3", ls="-.", lw=1.2, label=f"floor {floor:.2f}")
    for i in range(1, len(rows)):
        if rows[i][0] != rows[i - 1][0]:
            ax.axhline(y[i] + 0.5, color="0.85", lw=0.8)
    ax.set_xlabel(f"{metric_label(metric)} predicting {target} (95% CI)")
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    return _png(fig)
