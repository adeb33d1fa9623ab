"""The run report: ``report/report.html`` (one self-contained file), ``report.md``, ``report.json``.

It reads only files of the run folder (trials, history, pareto, retrain, audit, spec, lineage) and
plots what the earlier stages computed. The verdict comes first: what to deploy, where its weights
are, and how sure the numbers let us be. A missing optional stage is stated, not an error; stale
stage outputs get a red banner and no verdict.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fairsearch.analysis.decide.verdict import (
    CANDIDATE_HEAD,
    Verdict,
    candidate_cells,
    floor_of,
    headline,
    leak_metric,
    leak_sentence,
    rule_by_seed,
    stored_verdict,
    verdict_to_json,
)
from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.report import plots as _plots
from fairsearch.report import tables as _tables
from fairsearch.report.glossary import data_card, glossary_entries
from fairsearch.report.noise import seed_noise
from fairsearch.runfolder.names import config_label, fmt, metric_label, model_label, plain
from fairsearch.runfolder.reader import RunFiles, load_run

PACKAGES = ("fairsearch", "torch", "numpy", "pandas", "pyarrow", "scikit-learn", "fairlearn",
            "optuna", "ray", "matplotlib")
__all__ = ["RunFiles", "build_report", "load_run", "manifest", "reproduce_yaml", "write_report"]

Section = tuple[str, str, str]  # (title, html, markdown)


# ---------------------------------------------------------------------------- content
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


def _data_card(f: RunFiles) -> tuple[list[tuple[str, str]], dict[str, int] | None, str | None]:
    """Data card rows, test-split q group sizes, or why there is no card."""
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
        sizes = {(names[int(g)] if names else str(g)): int(counts[g]) for g in sorted(levels)}
    return data_card(data), sizes, None


def build_report(f: RunFiles) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The report's JSON content and its figures (name -> PNG bytes)."""
    v, note = stored_verdict(f)
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


# ---------------------------------------------------------------------------- rendering
def _img(figs: dict[str, bytes], name: str, alt: str) -> tuple[str, str]:
    if name not in figs:
        return "", ""
    data = base64.b64encode(figs[name]).decode()
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">',
            f"![{alt}]({name})")


def _banners(f: RunFiles, v: Verdict) -> tuple[str, str]:
    msgs = [f"STALE: the {stage} results no longer follow from the current files ({why}). "
            f"They are shown for reference only; re-run `fairsearch run {f.run_dir} --from "
            f"{stage}`." for stage, why in f.stale.items()]
    if (f.pareto_meta or {}).get("chosen_trial_id", 0) is None and f.retrain is not None:
        msgs.append("The selection rule picks no configuration: the retrain and audit results "
                    "below are of Pareto members, not of a chosen configuration.")
    h = "".join(f'<div class="banner">{html.escape(m)}</div>' for m in msgs)
    md = "\n\n".join(f"> **{m}**" for m in msgs)
    return h, md


def _verdict_section(v: Verdict) -> Section:
    facts = _tables.verdict_table(v)
    badge = f'<span class="badge {v.status.replace(" ", "-")}">{html.escape(v.status)}</span>'
    head = (f'<p class="headline">{badge} '
            + (f"configuration <b>#{v.number}</b> — " if v.number is not None else "")
            + f"{html.escape(v.reason)}</p>")
    left = ""
    if v.params:
        left = f"<h3>Hyperparameters of #{v.number}</h3>" + _tables.params_table(v.params).html()
    right = "<h3>Evidence</h3>" + facts.html()
    cands = _candidates_table(v)
    if v.snippet:
        right += (f"<h3>Load the weights</h3><pre>{html.escape(v.snippet)}</pre>"
                  '<p class="note">X: a float array of the same features (rows × columns) as '
                  "the training data.</p>")
    body = head + (f'<h3>Every retrained candidate</h3>{cands.html()}' if cands else "")
    body += f'<div class="verdict-grid"><div>{left}</div><div>{right}</div></div>'
    md = [f"**{v.status.upper()}**" + (f" — configuration #{v.number}" if v.number is not None
                                        else "") + f": {v.reason}"]
    if cands:
        md.append(cands.markdown())
    if v.params:
        md.append(_tables.params_table(v.params).markdown())
    md.append(facts.markdown())
    if v.snippet:
        md.append(f"```python\n{v.snippet}\n```")
    return "Verdict", f'<section class="verdict">{body}</section>', "\n\n".join(md)


def _candidates_table(v: Verdict) -> _tables.Table | None:
    """Every retrained candidate: status, validation and test means, audit, bound."""
    if not v.candidates:
        return None
    note = (v.why_chosen + ". " if v.why_chosen else "") + (
        "Validation: the mean over every seed (the search's and the fresh ones), the split the "
        "choice is made on; test and the audit verify the recommendation and never choose it.")
    return _tables.Table(CANDIDATE_HEAD, [candidate_cells(c) for c in v.candidates], note=note)


def _sections(f: RunFiles, c: dict[str, Any], v: Verdict,
              figs: dict[str, bytes]) -> list[Section]:
    card = _data_card(f)
    out: list[Section] = [_verdict_section(v)]
    h, m = _img(figs, "trade_off.png", "trade-off: search trials, retrained seed means ± std")
    if h:
        cap = ("Grey/coloured dots: search trials (seed means, with the standard error of "
               "each mean as grey bars) with the search front. Blue squares: retrained "
               "configurations on fresh seeds, seed mean ± std on validation, with the robust "
               "front (dashed). Red star: the chosen configuration.")
        noise = [n for n in (seed_noise(f.trials, m) for m, _ in f.objectives) if n is not None]
        if noise:
            cap += " " + "; ".join(n.sentence(metric_label(n.metric)) for n in noise) + "."
        out.append(("Trade-off", h + f'<p class="note">{cap}</p>', f"{m}\n\n{cap}"))
    out += _audit_sections(f, figs, card[1])
    out += _retrain_sections(f, v)
    notice = c["notice"] or ["Nothing to summarise yet."]
    out.append(("What to notice", "".join(f"<p>{html.escape(s)}</p>" for s in notice),
                "\n\n".join(notice)))
    if c["missing"]:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in c["missing"])
        out.append(("Not available yet", f"<ul>{items}</ul>",
                    "\n".join(f"- {s}" for s in c["missing"])))
    out += _search_sections(c, figs)
    out += _card_sections(f, card)
    out += _detail_sections(f, c)
    return out


def _audit_sections(f: RunFiles, figs: dict[str, bytes],
                    sizes: dict[str, int] | None) -> list[Section]:
    if f.audit is None:
        return []
    stale = "audit" in f.stale
    prefix = "STALE — " if stale else ""
    out: list[Section] = []
    matrix = _tables.audit_matrix(f.audit)
    if matrix is not None:
        h, m = _img(figs, "audit_forest.png", "audit forest plot")
        out.append((f"{prefix}Audit: can a fresh probe recover q?", matrix.html() + h,
                    matrix.markdown() + (f"\n\n{m}" if m else "")))
    dep = _tables.dependence_table(f.audit)
    if dep is not None:
        out.append((f"{prefix}Audit: kernel dependence on q", dep.html(), dep.markdown()))
    ctrl = _tables.control_table(f.audit)
    if ctrl is not None:
        out.append((f"{prefix}Audit: is the control task kept?", ctrl.html(), ctrl.markdown()))
    groups = _tables.group_table(f.audit, sizes)
    if groups is not None:
        out.append((f"{prefix}Group metrics of the control predictions", groups.html(),
                    groups.markdown()))
    return out


def _retrain_sections(f: RunFiles, v: Verdict) -> list[Section]:
    if f.summary is None or f.retrain is None:
        return []
    prefix = "STALE — " if "retrain" in f.stale else ""
    t = _tables.retrain_table(f.summary, f.objectives, v.number)
    done = f.retrain[f.retrain["status"] == "completed"]
    rule = {int(n): rule_by_seed(part, f.subject_to) if f.subject_to else {}
            for n, part in done.groupby("number")}
    seeds = _tables.retrain_seeds_table(f.retrain, f.objectives, rule)
    return [(f"{prefix}Retraining over seeds", t.html() + seeds.html(),
             t.markdown() + "\n\n" + seeds.markdown())]


def _search_sections(c: dict[str, Any], figs: dict[str, bytes]) -> list[Section]:
    out: list[Section] = []
    p = c["pareto"]
    if p:
        ref = ", ".join(f"{k} = {x:.4g}" for k, x in p["reference_point"].items())
        chosen = config_label(c["chosen"]["number"]) if c["chosen"] else "none"
        txt = (f"Front: {p['front_size']} of {p['n_ranked']} ranked trials. Hypervolume "
               f"{p['hypervolume']:.4g}: the area of objective space the front dominates, "
               f"bounded by the reference point ({ref}; {p['reference_rule']}). "
               f"Selection rule: {p['rule']}; chosen: {chosen}.")
        h, m = _img(figs, "hypervolume.png", "hypervolume by trial")
        out.append(("Search: Pareto front and hypervolume", f"<p>{html.escape(txt)}</p>{h}",
                    txt + (f"\n\n{m}" if m else "")))
    h, m = _img(figs, "loss_curves.png", "training curves")
    if h:
        out.append(("Search: training curves of front members", h, m))
    return out


def _card_sections(f: RunFiles, card: tuple[list[tuple[str, str]], Any, str | None]
                   ) -> list[Section]:
    rows, _, why = card
    card = _tables.Table(["", ""], [[k, x] for k, x in rows], css="facts")
    present = set()
    if f.audit is not None:
        present |= set(f.audit["probe"]) | set(f.audit["metric"])
        present |= {p.split("@")[0] for p in f.audit["probe"]}
        present |= {model_label(m) for m in f.audit["model"]}
    gl = _tables.Table(["term", "meaning"], [[k, x] for k, x in glossary_entries(present)],
                       css="facts")
    card_h = card.html() if rows else f"<p>{html.escape(why or '')}</p>"
    card_m = card.markdown() if rows else (why or "")
    return [("Data card", card_h, card_m), ("Glossary", gl.html(), gl.markdown())]


def _detail_sections(f: RunFiles, c: dict[str, Any]) -> list[Section]:
    ids = _tables.ids_table(f.trials, f.retrain)
    out: list[Section] = [("Details: identifiers", ids.html(), ids.markdown())]
    if c["reproduce_yaml"]:
        y = c["reproduce_yaml"]
        out.append(("Details: spec reproducing the chosen configuration",
                    f"<pre>{html.escape(y)}</pre>", f"```yaml\n{y}```"))
    man = json.dumps(c["manifest"], indent=2)
    out.append(("Details: manifest", f"<pre>{html.escape(man)}</pre>", f"```json\n{man}\n```"))
    return out


_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;max-width:1240px;margin:0 auto;padding:12px 20px;
color:#222;line-height:1.35}
h1{font-size:20px;margin:4px 0 8px}h2{font-size:17px;margin:22px 0 6px;
border-bottom:1px solid #ddd}h3{font-size:14px;margin:8px 0 4px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#eee}td:first-child,th:first-child{text-align:left}
.facts td{white-space:normal;text-align:left;vertical-align:top}
.facts td:first-child{font-weight:600;white-space:nowrap}.facts thead{display:none}
td.best{background:#dff2df}td.worst{background:#f8dcdc}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px;margin:4px 0}
img{max-width:100%;height:auto;display:block;margin:6px 0}
.note{font-size:12px;color:#555;margin:2px 0 8px}
.banner{background:#c62828;color:#fff;padding:10px 14px;font-weight:600;margin:6px 0;
border-radius:4px;overflow-wrap:anywhere}
.headline{font-size:16px;margin:6px 0 8px}
.badge{display:inline-block;padding:3px 12px;border-radius:12px;color:#fff;font-weight:700;
text-transform:uppercase;letter-spacing:.03em}
.badge.deployable{background:#2e7d32}.badge.borderline{background:#ef8f00}
.badge.fails{background:#c62828}.badge.no-verdict{background:#666}.badge.unresolved{background:#5e6ad2}
.verdict{border:2px solid #bbb;border-radius:6px;padding:8px 14px}
.verdict-grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,2.4fr);gap:18px}
@media (max-width:900px){.verdict-grid{grid-template-columns:minmax(0,1fr)}}
"""


def write_report(run_dir: str | Path) -> Path:
    """Build the report of ``run_dir`` into ``run_dir/report/``; returns the HTML path.

    Holds the run folder's lock; the files are written to ``report.partial/`` and swapped in
    whole, so an interrupted report leaves the previous one as it was."""
    note = (f"the previous report is unchanged; `fairsearch report {run_dir}` writes it "
            f"again")  # fmt: skip
    with signals.interruptible(note), stage_lock(run_dir):
        partial = sorted((Path(run_dir) / "retrain.partial" / "models").glob("*/seed-*/row.json"))
        if partial:
            print(f"note: {Path(run_dir) / 'retrain.partial'} holds {len(partial)} finished "
                  f"units of an interrupted retrain; this report shows the previous complete "
                  f"retrain; `fairsearch retrain {run_dir}` finishes the new one",
                  file=sys.stderr)  # fmt: skip
        html_path = _write_report(run_dir, Path(run_dir) / "report.partial")
        signals.check(note)
        commit(run_dir, "report", [("report.partial", "report")])
    return html_path


def _write_report(run_dir: str | Path, out: Path) -> Path:
    """Write the report's files into ``out``; returns where the HTML will be once committed."""
    f = load_run(run_dir)
    content, figs = build_report(f)
    v, _ = stored_verdict(f)
    shutil.rmtree(out, ignore_errors=True)
    sections = _sections(f, content, v, figs)
    banner_h, banner_m = _banners(f, v)
    title = html.escape(f"fairsearch report: {content['run']}")
    body = banner_h + "".join(
        (f"<h2>{html.escape(t)}</h2>" if t != "Verdict" else "") + h for t, h, _ in sections)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title><style>{_CSS}</style></head><body><h1>{title}</h1>"
            f"{body}</body></html>")
    md = [f"# fairsearch report: {content['run']}"] + ([banner_m] if banner_m else [])
    md += [f"## {t}\n\n{m}" for t, _, m in sections]
    for name, png in figs.items():
        write_atomic(out / name, lambda p, png=png: p.write_bytes(png))
    write_atomic(out / "report.md", lambda p: p.write_text("\n\n".join(md) + "\n"))
    text = json.dumps(content, indent=2, default=str)
    write_atomic(out / "report.json", lambda p: p.write_text(text + "\n"))
    write_atomic(out / "report.html", lambda p: p.write_text(page))
    return f.run_dir / "report" / "report.html"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder to report on")


def main(args: argparse.Namespace) -> int:
    print(f"wrote {write_report(args.run_dir)}")
    return 0

