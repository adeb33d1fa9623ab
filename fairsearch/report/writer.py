"""The run report: ``report/report.html`` (one self-contained file), ``report.md``, ``report.json``.

It reads only files of the run folder (trials, history, pareto, retrain, audit, spec) and plots
what the earlier stages computed. A missing optional stage is stated in the report, not an error.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import math
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fairsearch.analysis.pareto import write_atomic
from fairsearch.report import plots as _plots

PACKAGES = ("fairsearch", "torch", "numpy", "pandas", "pyarrow", "scikit-learn", "fairlearn",
            "optuna", "ray", "matplotlib")
__all__ = ["RunFiles", "build_report", "load_run", "manifest", "write_report"]


@dataclass
class RunFiles:
    """Everything the report reads; ``None`` where a stage has not run yet."""

    run_dir: Path
    spec: dict[str, Any]
    spec_bytes: bytes
    trials: pd.DataFrame
    history: pd.DataFrame | None = None
    pareto: pd.DataFrame | None = None
    pareto_meta: dict[str, Any] | None = None
    retrain: pd.DataFrame | None = None
    audit: pd.DataFrame | None = None
    missing: list[str] = field(default_factory=list)


def load_run(run_dir: str | Path) -> RunFiles:
    run = Path(run_dir)
    for name in ("spec.yaml", "trials.parquet"):
        if not (run / name).is_file():
            raise ValueError(f"RUN_DIR {str(run)!r} has no {name}; the report needs a search first")
    raw = (run / "spec.yaml").read_bytes()
    files = RunFiles(run, yaml.safe_load(raw) or {}, raw, pd.read_parquet(run / "trials.parquet"))
    optional = {"history": ("history.parquet", "no loss curves: history.parquet is missing"),
                "pareto": ("pareto.parquet", "no Pareto analysis yet: run `fairsearch pareto`"),
                "retrain": ("retrain.parquet", "no retraining yet: run `fairsearch retrain`"),
                "audit": ("audit.parquet", "no audit yet: run `fairsearch audit`")}
    for attr, (name, why) in optional.items():
        if (run / name).is_file():
            setattr(files, attr, pd.read_parquet(run / name))
        else:
            files.missing.append(why)
    if (run / "pareto.json").is_file():
        files.pareto_meta = json.loads((run / "pareto.json").read_text())
    return files


# ---------------------------------------------------------------------------- content
def _objectives(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["metric"], o.get("direction", "minimize")) for o in spec.get("objectives") or []]


def _chosen(f: RunFiles) -> pd.Series | None:
    tid = (f.pareto_meta or {}).get("chosen_trial_id")
    rows = f.trials[f.trials["trial_id"] == tid] if tid is not None else f.trials.iloc[:0]
    return rows.iloc[0] if len(rows) else None


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return None if v is pd.NA or v is pd.NaT else v


def reproduce_yaml(spec: dict[str, Any], row: pd.Series) -> str:
    """The run spec pinned to one trial's parameters: every parameter a one-choice categorical."""
    params = {c.removeprefix("param."): _plain(row[c]) for c in row.index
              if c.startswith("param.") and _plain(row[c]) is not None}
    pinned = dict(spec)
    pinned["name"] = f"{spec.get('name', 'run')}-{row['trial_id']}"
    pinned["space"] = {k: {"type": "categorical", "choices": [v]} for k, v in params.items()}
    pinned["search"] = {**(spec.get("search") or {}), "algorithm": "random", "trials": 1,
                        "max_concurrent": 1, "seed": int(_plain(row.get("seed", 0)) or 0)}
    return yaml.safe_dump(pinned, sort_keys=False)


def _fmt(v: Any) -> str:
    v = _plain(v)
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _notice(f: RunFiles, chosen: pd.Series | None) -> list[str]:
    """A few sentences written from the numbers."""
    out: list[str] = []
    objs = _objectives(f.spec)
    meta = f.pareto_meta or {}
    if chosen is not None and len(objs) >= 2 and f.pareto is not None:
        (m0, d0), (m1, _) = objs[0], objs[1]
        front = f.trials.merge(f.pareto[["trial_id", "on_front"]], on="trial_id")
        front = front[front["on_front"]]
        best = front.sort_values(f"objective.{m0}", ascending=d0 == "minimize").iloc[0]
        c0, c1 = chosen[f"objective.{m0}"], chosen[f"objective.{m1}"]
        b0, b1 = best[f"objective.{m0}"], best[f"objective.{m1}"]
        if best["trial_id"] == chosen["trial_id"]:
            out.append(f"The chosen config (trial {chosen['trial_id']}) is also the best {m0} on "
                       f"the front ({_fmt(c0)}), with {m1} = {_fmt(c1)}.")
        else:
            out.append(f"The chosen config (trial {chosen['trial_id']}, rule: {meta.get('rule')}) "
                       f"costs {abs(c0 - b0):.3g} {m0} ({_fmt(b0)} → {_fmt(c0)}) for "
                       f"{abs(c1 - b1):.3g} {'less' if c1 < b1 else 'more'} {m1} "
                       f"({_fmt(b1)} → {_fmt(c1)}) against trial "
                       f"{best['trial_id']}, the best {m0} on the front.")
    elif meta and meta.get("chosen_trial_id") is None:
        out.append(f"No trial satisfies the selection rule ({meta.get('rule')}); nothing chosen.")
    curve = meta.get("hv_curve") or []
    if len(curve) >= 2 and curve[-1]["hypervolume"] > 0:
        hv = np.array([c["hypervolume"] for c in curve])
        at = curve[int(np.argmax(hv >= 0.9 * hv[-1]))]["number"]
        out.append(f"The hypervolume reached 90% of its final value {hv[-1]:.4g} by trial {at} "
                   f"of {curve[-1]['number']}" + (
                       "; more trials would likely help." if at > 0.8 * curve[-1]["number"]
                       else "; the search had levelled off."))
    if f.audit is not None and len(f.audit):
        out += _audit_notice(f.audit)
    return out


def _audit_notice(a: pd.DataFrame) -> list[str]:
    out = []
    probes = a[(a.target == "q") & (a.metric == "balanced_accuracy")]
    for model, part in probes.groupby("model", sort=False):
        r = part.sort_values("value").iloc[-1]
        above = r.ci_low > r.chance
        out.append(f"On {model}, the strongest fresh probe ({r.probe}) reaches "
                   f"{r.value:.3f} balanced accuracy on q (95% CI {r.ci_low:.3f}–{r.ci_high:.3f}), "
                   + (f"above chance {r.chance:.3f}: the attribute is still recoverable."
                      if above else f"not distinguishable from chance {r.chance:.3f}."))
    dp = a[a.metric == "demographic_parity_difference"]
    for _, r in dp.iterrows():
        out.append(f"{r.model}: demographic-parity gap of the control task {r.value:.3f} "
                   f"(95% CI {r.ci_low:.3f}–{r.ci_high:.3f}).")
    return out


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


def build_report(f: RunFiles) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The report's JSON content and its figures (name -> PNG bytes)."""
    objs = _objectives(f.spec)
    chosen = _chosen(f)
    figs: dict[str, bytes] = {}
    if objs and all(f"objective.{m}" in f.trials for m, _ in objs):
        figs["trade_off.png"] = _plots.trade_off(f.trials, f.pareto, objs)
    if f.pareto_meta and f.pareto_meta.get("hv_curve"):
        figs["hypervolume.png"] = _plots.hypervolume_curve(f.pareto_meta["hv_curve"])
    if f.history is not None and f.pareto is not None:
        ids = list(f.pareto.sort_values(["chosen", "rank"], ascending=[False, True])
                   .query("on_front")["trial_id"][:3])
        if ids and f.history["trial_id"].isin(ids).any():
            labels = [f"{t} (chosen)" if chosen is not None and t == chosen["trial_id"] else t
                      for t in ids]
            figs["loss_curves.png"] = _plots.loss_curves(f.history, ids, labels)
    status = f.trials["status"].value_counts().to_dict() if "status" in f.trials else {}
    content: dict[str, Any] = {
        "run": f.spec.get("name", f.run_dir.name),
        "objectives": [{"metric": m, "direction": d} for m, d in objs],
        "trials": {"total": len(f.trials), **{str(k): int(v) for k, v in status.items()}},
        "pareto": f.pareto_meta,
        "chosen": None if chosen is None else {k: _plain(v) for k, v in chosen.items()
                                                if not isinstance(v, pd.Timestamp)},
        "reproduce_yaml": None if chosen is None else reproduce_yaml(f.spec, chosen),
        "retrain": None if f.retrain is None else _retrain_summary(f.retrain),
        "audit": None if f.audit is None else [
            {k: _plain(v) for k, v in r.items()} for r in f.audit.to_dict("records")],
        "notice": _notice(f, chosen),
        "missing": list(f.missing),
        "manifest": manifest(f),
        "figures": sorted(figs),
    }
    return content, figs


def _retrain_summary(r: pd.DataFrame) -> list[dict[str, Any]]:
    key = next((c for c in ("config_id", "trial_id", "source_trial_id") if c in r), None)
    cols = [c for c in r.columns if c.startswith(("objective.", "metric."))]
    if key is None or not cols:
        return [{k: _plain(v) for k, v in row.items()} for row in r.to_dict("records")]
    g = r.groupby(key)[cols].agg(["mean", "std", "count"])
    g.columns = [f"{c}:{s}" for c, s in g.columns]
    return [{key: k, **{c: _plain(v) for c, v in row.items()}} for k, row in g.iterrows()]


# ---------------------------------------------------------------------------- rendering
def _audit_rows(audit: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["model"], r["target"], r["probe"], r["metric"], _fmt(r["value"]),
             f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]", _fmt(r["chance"])] for r in audit]


_AUDIT_HEAD = ["model", "target", "probe", "metric", "value", "95% CI", "chance"]


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _sections(c: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(title, html, markdown) per section; figures are added by the caller."""
    out = []
    notice = c["notice"] or ["Nothing to summarise yet."]
    out.append(("What to notice", "".join(f"<p>{html.escape(s)}</p>" for s in notice),
                "\n\n".join(notice)))
    if c["missing"]:
        items = "".join(f"<li>{html.escape(m)}</li>" for m in c["missing"])
        out.append(("Not available yet", f"<ul>{items}</ul>",
                    "\n".join(f"- {m}" for m in c["missing"])))
    p = c["pareto"]
    if p:
        ref = ", ".join(f"{k} = {v:.4g}" for k, v in p["reference_point"].items())
        txt = (f"Front: {p['front_size']} of {p['n_ranked']} ranked trials. Hypervolume "
               f"{p['hypervolume']:.4g} with reference point ({ref}) — {p['reference_rule']}. "
               f"Selection rule: {p['rule']}; chosen trial: {p['chosen_trial_id']}.")
        out.append(("Pareto front", f"<p>{html.escape(txt)}</p>", txt))
    if c["reproduce_yaml"]:
        y = c["reproduce_yaml"]
        out.append(("Recommended configuration", f"<pre>{html.escape(y)}</pre>",
                    f"```yaml\n{y}```"))
    if c["audit"]:
        rows = _audit_rows(c["audit"])
        out.append(("Audit (fresh probes on held-out data)", _html_table(_AUDIT_HEAD, rows),
                    _md_table(_AUDIT_HEAD, rows)))
    if c["retrain"]:
        head = list(c["retrain"][0])
        rows = [[_fmt(r[h]) for h in head] for r in c["retrain"]]
        out.append(("Retraining over seeds", _html_table(head, rows), _md_table(head, rows)))
    man = json.dumps(c["manifest"], indent=2)
    out.append(("Manifest", f"<pre>{html.escape(man)}</pre>", f"```json\n{man}\n```"))
    return out


_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}th{background:#eee}pre{background:#f6f6f6;padding:8px;"
        "overflow-x:auto}img{max-width:100%}")


def write_report(run_dir: str | Path) -> Path:
    """Build the report of ``run_dir`` into ``run_dir/report/``; returns the HTML path."""
    f = load_run(run_dir)
    content, figs = build_report(f)
    out = f.run_dir / "report"
    sections = _sections(content)
    imgs = "".join(f'<img alt="{n}" src="data:image/png;base64,{base64.b64encode(b).decode()}">'
                   for n, b in figs.items())
    title = html.escape(f"fairsearch report: {content['run']}")
    body = "".join(f"<h2>{html.escape(t)}</h2>{h}" for t, h, _ in sections[:1])
    body += f"<h2>Figures</h2>{imgs or '<p>No figures.</p>'}"
    body += "".join(f"<h2>{html.escape(t)}</h2>{h}" for t, h, _ in sections[1:])
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{_CSS}</style></head><body><h1>{title}</h1>{body}</body></html>")
    md = [f"# fairsearch report: {content['run']}"]
    md += [f"## {t}\n\n{m}" for t, _, m in sections[:1]]
    md += ["## Figures\n\n" + "\n".join(f"![{n}]({n})" for n in figs)]
    md += [f"## {t}\n\n{m}" for t, _, m in sections[1:]]
    for name, png in figs.items():
        write_atomic(out / name, lambda p, png=png: p.write_bytes(png))
    write_atomic(out / "report.md", lambda p: p.write_text("\n\n".join(md) + "\n"))
    text = json.dumps(content, indent=2, default=str)
    write_atomic(out / "report.json", lambda p: p.write_text(text + "\n"))
    write_atomic(out / "report.html", lambda p: p.write_text(page))
    return out / "report.html"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder to report on")


def main(args: argparse.Namespace) -> int:
    print(f"wrote {write_report(args.run_dir)}")
    return 0
