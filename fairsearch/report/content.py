"""The report's content: the JSON the report is written from (``report.json``) and its figures.

It reads only the run folder (:class:`~fairsearch.runfolder.reader.RunFiles`) and the verdict,
and plots what the earlier stages computed (:mod:`fairsearch.report.plots`).
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fairsearch.analysis.audit.leakage import floor_of, headline, leak_metric, leak_sentence
from fairsearch.analysis.decide.compute import stored_verdict
from fairsearch.analysis.decide.verdict import Verdict, verdict_to_json
from fairsearch.report import plots as _plots
from fairsearch.report import tables as _tables
from fairsearch.report.glossary import data_card
from fairsearch.runfolder.names import fmt, model_label, plain
from fairsearch.runfolder.reader import RunFiles

PACKAGES = ("fairsearch", "torch", "numpy", "pandas", "pyarrow", "scikit-learn", "fairlearn",
            "optuna", "ray", "matplotlib")
__all__ = ["PACKAGES", "build_report", "data_card_rows", "manifest", "reproduce_yaml"]


def reproduce_yaml(spec: dict[str, Any], row: pd.Series) -> str:
    """The run spec pinned to one trial's parameters: every parameter a one-choice categorical."""
    params = {c.removeprefix("param."): plain(row[c]) for c in row.index
              if c.startswith("param.") and plain(row[c]) is not None}
    pinned = dict(spec)
    pinned["name"] = f"{spec.get('name', 'run')}-trial-{int(row['number'])}"
    pinned["space"] = {k: {"type": "categorical", "choices": [v]} for k, v in params.items()}
    pinned["search"] = {**(spec.get("search") or {}), "algorithm": "random", "trials": 1,
                        "max_concurrent": 1, "seed": int(plain(row.get("seed", 0)) or 0)}
    return yaml.safe_dump(pinned, sort_keys=False)


def _notice(f: RunFiles, v: Verdict) -> list[str]:
    """A few sentences written from the numbers."""
    out: list[str] = []
    objs = f.objectives
    meta = f.pareto_meta or {}
    chosen = _row(f, v.number)
    if chosen is not None and len(objs) >= 2 and f.pareto is not None:
        (m0, d0), (m1, _) = objs[0], objs[1]
        front = f.trials.merge(f.pareto[["trial_id", "on_front"]], on="trial_id")
        front = front[front["on_front"]]
        best = front.sort_values(f"objective.{m0}", ascending=d0 == "minimize").iloc[0]
        c0, c1 = chosen[f"objective.{m0}"], chosen[f"objective.{m1}"]
        b0, b1 = best[f"objective.{m0}"], best[f"objective.{m1}"]
        n, nb = int(chosen["number"]), int(best["number"])
        if n == nb:
            out.append(f"In the search, #{n} is also the best {m0} on the front ({fmt(c0)}), "
                       f"with {m1} = {fmt(c1)}.")
        else:
            out.append(f"In the search, #{n} costs {abs(c0 - b0):.3g} {m0} ({fmt(b0)} → "
                       f"{fmt(c0)}) for {abs(c1 - b1):.3g} {'less' if c1 < b1 else 'more'} {m1} "
                       f"({fmt(b1)} → {fmt(c1)}) against #{nb}, the best {m0} on the front.")
    curve = meta.get("hv_curve") or []
    if len(curve) >= 2 and curve[-1]["hypervolume"] > 0:
        hv = [c["hypervolume"] for c in curve]
        at = next(c["number"] for c, h in zip(curve, hv, strict=True) if h >= 0.9 * hv[-1])
        last = curve[-1]["number"]
        out.append(f"The hypervolume reached 90% of its final value {hv[-1]:.4g} by #{at} of "
                   f"#{last}" + ("; more trials would likely help." if at > 0.8 * last
                                 else "; it had levelled off."))
    if f.audit is not None and "audit" not in f.stale:
        for model in f.audit["model"].unique():
            if model == "floor":
                continue
            leak = headline(f.audit, model)
            if leak is not None:
                out.append(f"{model_label(model)}: {leak_sentence(leak)}.")
    return out


def _row(f: RunFiles, number: int | None) -> pd.Series | None:
    """The trials row of configuration ``number``."""
    rows = f.trials[f.trials["number"] == number] if number is not None else f.trials.iloc[:0]
    return rows.iloc[0] if len(rows) else None


def manifest(f: RunFiles) -> dict[str, Any]:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, text=True,
                             capture_output=True, timeout=5, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    data = f.spec.get("data") or {}
    seeds = sorted({int(s) for s in f.trials.get("seed", pd.Series(dtype="Int64")).dropna()})
    return {
        "packages": versions,
        "git_revision": rev,
        "spec_sha256": hashlib.sha256(f.spec_bytes).hexdigest(),
        "data_hash": f.spec.get("data_hash") or data.get("sha256") or data.get("hash"),
        "search_seed": (f.spec.get("search") or {}).get("seed"),
        "retrain_seeds": (f.spec.get("post") or {}).get("seeds"),
        "trial_seeds": seeds,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def data_card_rows(f: RunFiles
                   ) -> tuple[list[tuple[str, str]], dict[str, tuple[str, int]] | None, str | None]:
    """Data card rows, test-split q groups (``{code: (name, rows)}``), or why there is no card."""
    try:
        from fairsearch.data import load_from_spec

        data = load_from_spec(f.spec.get("data") or {})
    except Exception as exc:  # noqa: BLE001 - the report states it and goes on
        return [], None, f"data card unavailable: {type(exc).__name__}: {exc}"
    sizes = None
    if data.q_kind == "categorical":
        test = data.subset("test")
        names = data.classes.get("q")
        levels, counts = pd.unique(test.q), pd.Series(test.q).value_counts()
        sizes = {str(g): (names[int(g)] if names else str(g), int(counts[g]))
                 for g in sorted(levels)}
    return data_card(data), sizes, None


def build_report(f: RunFiles) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The report's JSON content and its figures (name -> PNG bytes)."""
    v, note = stored_verdict(f)
    objs = f.objectives
    figs = _figures(f, v)
    status = f.trials["status"].value_counts().to_dict() if "status" in f.trials else {}
    chosen = _row(f, v.number)
    content: dict[str, Any] = {
        "run": f.spec.get("name", f.run_dir.name),
        "verdict": verdict_to_json(v),
        "verdict_note": note,
        "objectives": [{"metric": m, "direction": d} for m, d in objs],
        "trials": {"total": len(f.trials), **{str(k): int(n) for k, n in status.items()}},
        "pareto": f.pareto_meta,
        "chosen": None if chosen is None else {k: plain(x) for k, x in chosen.items()
                                                if not isinstance(x, pd.Timestamp)},
        "reproduce_yaml": None if chosen is None else reproduce_yaml(f.spec, chosen),
        "retrain_summary": None if f.summary is None else [
            {k: plain(x) for k, x in r.items()} for r in f.summary.to_dict("records")],
        "audit": None if f.audit is None else [
            {k: plain(x) for k, x in r.items()} for r in f.audit.to_dict("records")],
        "notice": _notice(f, v),
        "missing": list(f.missing),
        "stale": dict(f.stale),
        "manifest": manifest(f),
        "figures": sorted(figs),
    }
    return content, figs


def _figures(f: RunFiles, v: Verdict) -> dict[str, bytes]:
    """trade_off.png, audit_forest.png, hypervolume.png and loss_curves.png, where the run
    folder has what each needs."""
    objs = f.objectives
    figs: dict[str, bytes] = {}
    floor = floor_of(f.audit) if f.audit is not None else None
    chance = None
    if f.audit is not None:
        q = f.audit[(f.audit["target"] == "q") & (f.audit["metric"] == "balanced_accuracy")]
        chance = float(q["chance"].dropna().iloc[0]) if q["chance"].notna().any() else None
        floor = floor if len(q) else None
    current = "retrain" not in f.stale
    if objs and all(f"objective.{m}" in f.trials for m, _ in objs):
        figs["trade_off.png"] = _plots.trade_off(
            f.trials, f.pareto, objs, f.summary if current else None, v.number,
            chance, floor, subject_to=f.subject_to)
    if f.audit is not None and "audit" not in f.stale:
        models = _tables._model_order([m for m in f.audit["model"].unique()])
        fig = _plots.forest(f.audit, leak_metric(f.audit), floor=floor, models=models)
        if fig is not None:
            figs["audit_forest.png"] = fig
    if f.pareto_meta and f.pareto_meta.get("hv_curve"):
        figs["hypervolume.png"] = _plots.hypervolume_curve(f.pareto_meta["hv_curve"])
    if f.history is not None and f.pareto is not None and "number" in f.history:
        front = f.pareto.sort_values(["chosen", "rank"], ascending=[False, True]).query("on_front")
        numbers = [int(n) for n in front["number"][:3]]
        if numbers and f.history["number"].isin(numbers).any():
            labels = [f"#{n} (chosen)" if n == v.number else f"#{n}" for n in numbers
                      if (f.history["number"] == n).any()]
            figs["loss_curves.png"] = _plots.loss_curves(f.history, numbers, labels)
    return figs
