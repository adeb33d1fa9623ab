"""The run report: ``report/report.html`` (one self-contained file), ``report.md``, ``report.json``.

It reads only files of the run folder (trials, history, pareto, retrain, audit, spec, lineage) and
plots what the earlier stages computed. The verdict comes first: what to deploy, where its weights
are, and how sure the numbers let us be. A missing optional stage is stated, not an error; stale
stage outputs get a red banner and no verdict. The content is built by
:mod:`fairsearch.report.content`, the sections by :mod:`fairsearch.report.sections`; this module
writes the files (``fairsearch report RUN_DIR``).
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
from pathlib import Path

from fairsearch.analysis.decide.compute import stored_verdict
from fairsearch.io import signals
from fairsearch.io.atomic import write_atomic
from fairsearch.io.transaction import commit, stage_lock
from fairsearch.report.content import build_report
from fairsearch.report.sections import banners, sections
from fairsearch.runfolder.reader import load_run

__all__ = ["write_report"]


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
.candidates td{white-space:normal;text-align:left;vertical-align:top}.candidates th{text-align:left}
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
    parts = sections(f, content, v, figs)
    banner_h, banner_m = banners(f, v)
    title = html.escape(f"fairsearch report: {content['run']}")
    body = banner_h + "".join(
        (f"<h2>{html.escape(t)}</h2>" if t != "Verdict" else "") + h for t, h, _ in parts)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title><style>{_CSS}</style></head><body><h1>{title}</h1>"
            f"{body}</body></html>")
    md = [f"# fairsearch report: {content['run']}"] + ([banner_m] if banner_m else [])
    md += [f"## {t}\n\n{m}" for t, _, m in parts]
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
