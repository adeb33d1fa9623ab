"""The report's sections, each as ``(title, html, markdown)``: the verdict first, then the audit,
the retraining, what to notice, the search, the data card and glossary, and the details."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from fairsearch.analysis.decide.text import CANDIDATE_HEAD, candidate_cells
from fairsearch.analysis.decide.verdict import Verdict
from fairsearch.analysis.decide.verify import rule_by_seed
from fairsearch.measures.fairness import criterion_sentence
from fairsearch.report import tables as _tables
from fairsearch.report.content import data_card_rows
from fairsearch.report.glossary import glossary_entries
from fairsearch.report.noise import seed_noise
from fairsearch.runfolder.names import config_label, metric_label, model_label
from fairsearch.runfolder.reader import RunFiles

__all__ = ["Section", "banners", "sections"]

Section = tuple[str, str, str]  # (title, html, markdown)


def _img(figs: dict[str, bytes], name: str, alt: str) -> tuple[str, str]:
    if name not in figs:
        return "", ""
    data = base64.b64encode(figs[name]).decode()
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">',
            f"![{alt}]({name})")


def banners(f: RunFiles, v: Verdict) -> tuple[str, str]:
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
    if v.criterion:
        head += f'<p class="note">Fairness criterion: {html.escape(criterion_sentence(v.criterion))}</p>'
    if v.help:
        head += f'<p class="note">Would help: {html.escape(v.help)}</p>'
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
    if v.criterion:
        md.append(f"Fairness criterion: {criterion_sentence(v.criterion)}")
    if v.help:
        md.append(f"Would help: {v.help}")
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
    return _tables.Table(CANDIDATE_HEAD, [candidate_cells(c) for c in v.candidates], note=note,
                        css="candidates")

def sections(f: RunFiles, c: dict[str, Any], v: Verdict,
             figs: dict[str, bytes]) -> list[Section]:
    """Every section of the report, in order, from its content ``c`` and figures ``figs``."""
    card = data_card_rows(f)
    out: list[Section] = [_verdict_section(v)]
    out += _trade_off_section(f, figs)
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


def _trade_off_section(f: RunFiles, figs: dict[str, bytes]) -> list[Section]:
    """The trade-off plot, its caption and the seed noise of each objective."""
    h, m = _img(figs, "trade_off.png", "trade-off: search trials, retrained seed means ± std")
    if not h:
        return []
    cap = ("Grey/coloured dots: search trials (seed means, with the standard error of "
           "each mean as grey bars) with the search front. Blue squares: retrained "
           "configurations on fresh seeds, seed mean ± std on validation, with the robust "
           "front (dashed). Red star: the chosen configuration.")
    noise = [n for n in (seed_noise(f.trials, metric) for metric, _ in f.objectives)
             if n is not None]
    if noise:
        cap += " " + "; ".join(n.sentence(metric_label(n.metric)) for n in noise) + "."
    return [("Trade-off", h + f'<p class="note">{cap}</p>', f"{m}\n\n{cap}")]


def _audit_sections(f: RunFiles, figs: dict[str, bytes],
                    sizes: dict[str, tuple[str, int]] | None) -> list[Section]:
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
    given = _tables.given_label_table(f.audit)
    if given is not None:
        out.append((f"{prefix}Audit: can a fresh probe recover q given the label?", given.html(),
                    given.markdown()))
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
