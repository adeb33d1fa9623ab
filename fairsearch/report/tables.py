"""Tables a person reads, built from the run's tables: words for column names, ``#N`` for
configurations, ``value [CI]`` cells, and the best/worst cells marked.

Each builder returns a :class:`Table`; :meth:`Table.html` and :meth:`Table.markdown` render it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from fairsearch.analysis.audit.leakage import floor_of, leak_metric
from fairsearch.analysis.decide.text import objective_line
from fairsearch.analysis.decide.verdict import Verdict
from fairsearch.analysis.decide.verify import number_of
from fairsearch.probes.registry import PROBE_KINDS
from fairsearch.runfolder.names import (
    config_label,
    fmt,
    fmt_ci,
    fmt_param,
    metric_label,
    model_label,
    probe_label,
)

__all__ = ["Table", "audit_matrix", "control_table", "group_table", "ids_table",
           "params_table", "retrain_seeds_table", "retrain_table", "verdict_table"]

Mark = Literal["best", "worst"]


@dataclass
class Table:
    head: list[str]
    rows: list[list[str]]
    marks: dict[tuple[int, int], Mark] = field(default_factory=dict)
    note: str = ""
    css: str = ""

    def html(self) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in self.head)
        body = []
        for i, row in enumerate(self.rows):
            cells = []
            for j, c in enumerate(row):
                mark = self.marks.get((i, j))
                cls = f' class="{mark}"' if mark else ""
                sym = {"best": " ▼", "worst": " ▲"}.get(mark or "", "")
                cells.append(f"<td{cls}>{html.escape(c)}{sym}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        note = f'<p class="note">{html.escape(self.note)}</p>' if self.note else ""
        cls = f" {self.css}" if self.css else ""
        return (f'<div class="scroll{cls}"><table><thead><tr>{th}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table></div>{note}")

    def markdown(self) -> str:
        def cell(i: int, j: int, c: str) -> str:
            mark = self.marks.get((i, j))
            return c.replace("|", "\\|") + {"best": " ▼", "worst": " ▲"}.get(mark or "", "")
        lines = ["| " + " | ".join(self.head) + " |", "|" + " --- |" * len(self.head)]
        lines += ["| " + " | ".join(cell(i, j, c) for j, c in enumerate(r)) + " |"
                  for i, r in enumerate(self.rows)]
        return "\n".join(lines) + (f"\n\n{self.note}" if self.note else "")


# ---------------------------------------------------------------------------- verdict block
def verdict_table(v: Verdict) -> Table:
    """The verdict's facts, one per row."""
    from fairsearch.analysis.audit.leakage import leak_sentence
    from fairsearch.analysis.decide.groups import groups_sentence
    from fairsearch.analysis.decide.text import rule_sentence
    from fairsearch.measures.fairness import criterion_sentence

    rows = [["verdict", f"{v.status} — {v.reason}"]]
    if v.criterion:
        rows.append(["fairness criterion", criterion_sentence(v.criterion)])
    if v.groups:
        rows.append(["groups", groups_sentence(v.groups)])
    if v.number is not None:
        rows.append(["configuration", f"#{v.number} (Optuna trial number)"])
    if v.rule:
        rows.append(["selection rule", v.rule + (f" (from {v.rule_source})" if v.rule_source else "")])
    rows += [["objective, seed mean ± std", objective_line(o)] for o in v.objectives]
    if v.rule_by_seed:
        rows.append(["rule per seed", rule_sentence(v)])
    if v.unstable_reason:
        rows.append(["unstable", v.unstable_reason])
    if v.leak is not None:
        rows.append([f"audit of {model_label(v.leak.model)}", leak_sentence(v.leak)])
    if v.resolution is not None:
        rows.append(["resolution", v.resolution.sentence()])
    rows += [["caveat", c] for c in v.caveats]
    if v.bracket:
        rows.append(["leak bracket", v.bracket])
    if v.reads_q:
        rows.append(["reads q", v.reads_q])
    if v.weights is not None:
        rows.append(["weights to deploy", f"{v.weights / 'model.pt'}"])
        rows.append(["why this seed", f"seed {v.seed}: {v.seed_why}"])
    return Table(["", ""], rows, css="facts")


def params_table(params: dict[str, object]) -> Table:
    return Table(["hyperparameter", "value"], [[k, fmt_param(p)] for k, p in params.items()])


# ---------------------------------------------------------------------------- retrain
def _ms(row: pd.Series, col: str) -> str:
    m, s = row.get(f"{col}.mean"), row.get(f"{col}.std")
    return "–" if m is None or pd.isna(m) else f"{m:.3f} ± {0.0 if pd.isna(s) else s:.3f}"


def retrain_table(summary: pd.DataFrame, objectives: list[tuple[str, str]],
                  chosen: int | None) -> Table:
    """One row per retrained configuration: seed mean ± std (ddof=0) per objective and split."""
    head = ["configuration", "seeds"]
    for m, _ in objectives:
        head += [f"{metric_label(m)} (val) mean ± std", f"{metric_label(m)} (test) mean ± std"]
    head += ["robust front", "unstable"]
    rows = []
    for _, r in summary.iterrows():
        label = config_label(r["number"]) + (" (chosen)" if r["number"] == chosen else "")
        cells = [label, fmt(int(r["seeds"]))]
        for m, _ in objectives:
            cells += [_ms(r, f"metric.{m}"), _ms(r, f"test.{m}")]
        cells += [fmt(bool(r["robust_front"])),
                  f"yes: {r['unstable_reason']}" if bool(r["unstable"]) else "no"]
        rows.append(cells)
    return Table(head, rows, note="± is the standard deviation over seeds (ddof = 0).")


def retrain_seeds_table(retrain: pd.DataFrame, objectives: list[tuple[str, str]],
                        rule: dict[int, dict[int, bool]]) -> Table:
    """One row per configuration and seed; ``rule`` maps number -> seed -> rule holds."""
    head = ["configuration", "seed", "status"]
    for m, _ in objectives:
        head += [f"{metric_label(m)} (val)", f"{metric_label(m)} (test)"]
    head.append("rule holds")
    rows = []
    for _, r in retrain.sort_values(["number", "seed"]).iterrows():
        cells = [config_label(r["number"]), fmt(int(r["seed"])), str(r["status"])]
        for m, _ in objectives:
            cells += [fmt(r.get(f"metric.{m}")), fmt(r.get(f"test.{m}"))]
        holds = rule.get(int(r["number"]), {}).get(int(r["seed"]))
        cells.append("–" if holds is None else fmt(holds))
        rows.append(cells)
    return Table(head, rows)


# ---------------------------------------------------------------------------- audit
def _model_order(models: list[str]) -> list[str]:
    def key(m: str) -> tuple[int, int, str]:
        n = number_of(m)
        base = {"original": 0, "leace": 1, "floor": 2}.get(m, 3)
        return (base, n if n is not None else -1, m)
    return sorted(models, key=key)


def _probe_order(probes: list[str]) -> list[str]:
    """The worst case (the headline), the probe kinds in ladder order, then any other probe."""
    known = [p for p in PROBE_KINDS if p in probes]
    rest = sorted(p for p in probes if p not in PROBE_KINDS and p != "worst_case")
    return (["worst_case"] if "worst_case" in probes else []) + known + rest


def audit_matrix(audit: pd.DataFrame, metric: str | None = None,
                 target: str = "q") -> Table | None:
    """Rows: models (original, LEACE, each configuration and seed); columns: probes and the
    worst case; cell ``value [CI]``; per column the lowest cell (least leak) ▼ and highest ▲.
    ``metric`` defaults to balanced accuracy, or R² when q is continuous."""
    metric = metric or leak_metric(audit)
    part = audit[(audit["target"] == target) & (audit["metric"] == metric)]
    if not len(part):
        return None
    models = _model_order(list(part["model"].unique()))
    probes = _probe_order(list(part["probe"].unique()))
    head = ["model"] + [probe_label(p) for p in probes]
    has_mdl = ((audit["metric"] == "mdl_bits") & (audit["target"] == target)).any()
    if has_mdl:
        head.append(metric_label("mdl_bits"))
    rows, values = [], np.full((len(models), len(probes)), np.nan)
    for i, m in enumerate(models):
        cells = [model_label(m)]
        for j, p in enumerate(probes):
            r = part[(part["model"] == m) & (part["probe"] == p)]
            if len(r):
                r0 = r.iloc[0]
                values[i, j] = r0["value"]
                sel = r0.get("selected") if "selected" in r0.index else None
                extra = f" ({probe_label(sel)})" if isinstance(sel, str) and sel else ""
                cells.append(f"{fmt(r0['value'])} {fmt_ci(r0['ci_low'], r0['ci_high'])}{extra}")
            else:
                cells.append("–")
        if has_mdl:
            r = audit[(audit["model"] == m) & (audit["metric"] == "mdl_bits")
                      & (audit["target"] == target)]
            cells.append(fmt(r["value"].iloc[0], 1) if len(r) else "–")
        rows.append(cells)
    marks: dict[tuple[int, int], Mark] = {}
    for j in range(len(probes)):
        col = values[:, j]
        if np.isfinite(col).sum() >= 2 and np.nanmax(col) > np.nanmin(col):
            marks[(int(np.nanargmin(col)), j + 1)] = "best"
            marks[(int(np.nanargmax(col)), j + 1)] = "worst"
    chance = part["chance"].dropna()
    floor = floor_of(audit)
    note = (f"{metric_label(metric)} of fresh probes predicting {target} on held-out rows, "
            f"[95% CI]. ▼ lowest (least leak) and ▲ highest in each column. "
            f"Chance {fmt(chance.iloc[0]) if len(chance) else '–'}; "
            f"floor {fmt(floor) if floor is not None else 'not measured in this audit'}."
            + _halving_note(audit, target))
    return Table(head, rows, marks, note)


def _halving_note(audit: pd.DataFrame, target: str) -> str:
    """Which probes successive halving cross-fitted on fewer fold seeds, per model."""
    seeds = audit[(audit["metric"] == "fold_seeds") & (audit["target"] == target)]
    cut = seeds[seeds["value"] < seeds["chance"]]
    if not len(cut):
        return ""
    parts = [f"{model_label(m)}: {', '.join(probe_label(p) for p in g['probe'])}"
             for m, g in cut.groupby("model", sort=False)]
    total = int(cut["chance"].iloc[0])
    return (f" Successive halving cross-fitted these probes, far below their model's worst case, "
            f"on 1 of {total} fold seeds: {'; '.join(parts)}.")


def dependence_table(audit: pd.DataFrame) -> Table | None:
    """Kernel dependence between each model's output and q (CKA, HSIC) against a permutation
    baseline: the audit's score for a continuous q."""
    part = audit[(audit["target"] == "q") & audit["metric"].isin(["cka", "hsic"])]
    if not len(part):
        return None
    metrics = list(dict.fromkeys(part["metric"]))
    head = ["model"] + [f"{metric_label(m)} (permutation baseline)" for m in metrics]
    rows = _model_rows(part, metrics, lambda r: f"{fmt(r['value'])} ({fmt(r['chance'])})")
    return Table(head, rows, note="Dependence of the output on q; in brackets the mean over "
                                  "shuffled q (no dependence).")


def _value_ci(r: pd.Series) -> str:
    return f"{fmt(r['value'])} {fmt_ci(r['ci_low'], r['ci_high'])}"


def _model_rows(part: pd.DataFrame, metrics: list[str],
                cell: Callable[[pd.Series], str]) -> list[list[str]]:  # fmt: skip
    """One row per model (in report order), one ``cell(row)`` per metric, ``–`` when missing."""
    rows = []
    for m in _model_order(list(part["model"].unique())):
        cells = [model_label(m)]
        for metric in metrics:
            r = part[(part["model"] == m) & (part["metric"] == metric)]
            cells.append(cell(r.iloc[0]) if len(r) else "–")
        rows.append(cells)
    return rows


def control_table(audit: pd.DataFrame) -> Table | None:
    """How well a fresh probe still predicts the control label from each model's output."""
    part = audit[(audit["target"] == "control")
                 & audit["metric"].isin(["f1", "balanced_accuracy", "roc_auc"])]
    if not len(part):
        return None
    metrics = [m for m in ("f1", "balanced_accuracy", "roc_auc") if m in set(part["metric"])]
    head = ["model"] + [f"control {metric_label(m)}" for m in metrics]
    rows = _model_rows(part, metrics, _value_ci)
    return Table(head, rows, note="A fresh logistic probe for the control label on the same "
                                  "held-out rows, [95% CI]: the task the representation must keep.")


def group_table(audit: pd.DataFrame,
                group_sizes: dict[str, tuple[str, int]] | None = None) -> Table | None:
    """Group metrics of the control predictions: gaps and per-group accuracy (or MSE), each
    group by its name where ``group_sizes`` (``{code: (name, test rows)}``) gives one."""
    part = audit[(audit["target"] == "control")
                 & ~audit["metric"].isin(["f1", "balanced_accuracy", "roc_auc"])]
    if not len(part):
        return None
    metrics = list(dict.fromkeys(part["metric"]))
    names = {code: name for code, (name, _) in (group_sizes or {}).items()}
    head = ["model"] + [_group_named(metric_label(m), names) for m in metrics]
    rows = _model_rows(part, metrics, _value_ci)
    note = "Gaps are fairlearn's between-group differences (0 = equal), [95% CI]."
    if group_sizes:
        sizes = ", ".join(f"{name}: {n}" for name, n in group_sizes.values())
        note += f" Group sizes in the test split: {sizes} (the audit scores a held-out half)."
    return Table(head, rows, note=note)


def _group_named(label: str, names: dict[str, str]) -> str:
    """``accuracy [q=3]`` as ``accuracy [Black × Female]`` where group 3 has that name."""
    return re.sub(r"\[q=([^\]]+)\]", lambda m: f"[{names.get(m.group(1), 'q=' + m.group(1))}]",
                  label)


def given_label_table(audit: pd.DataFrame) -> Table | None:
    """Separation leakage: the balanced accuracy of q within each class of the label, per model,
    and the worst class, against chance (the label given, no floor)."""
    part = audit[audit["target"] == "q_given_y"]
    if not len(part):
        return None
    classes = list(dict.fromkeys(part.loc[part["probe"] == "worst_case", "selected"]))
    head = ["model"] + [f"within {c}" for c in classes] + ["worst class", "chance"]
    rows = []
    for m in _model_order(list(part["model"].unique())):
        own = part[part["model"] == m]
        cells = [model_label(m)]
        for c in classes:
            r = own[(own["probe"] == "worst_case") & (own["selected"] == c)]
            cells.append(_value_ci(r.iloc[0]) if len(r) else "–")
        worst = own[own["probe"] == "worst_class"]
        cells += [str(worst.iloc[0]["selected"]), fmt(worst.iloc[0]["chance"])] if len(worst) \
            else ["–", "–"]  # fmt: skip
        rows.append(cells)
    return Table(head, rows, note="Balanced accuracy of q from each model's output within each "
                                  "class of the control label: the probe ladder's worst case, "
                                  "cross-fitted on that class's held-out rows, [95% CI]. With "
                                  "the label given the reference is chance, not the floor.")


def ids_table(trials: pd.DataFrame, retrain: pd.DataFrame | None) -> Table:
    """The one identifier (``#N``) against every other id a file uses."""
    folders: dict[int, str] = {}
    if retrain is not None:
        for n, cid in retrain[["number", "config_id"]].drop_duplicates().itertuples(index=False):
            folders[int(n)] = f"retrain/{cid}/"
    head = ["configuration", "trial_id (trials.parquet)", "run_id (Ray Tune)", "retrain folder",
            "status"]
    rows = []
    for _, r in trials.sort_values("number").iterrows():
        n = int(r["number"])
        rows.append([config_label(n), str(r["trial_id"]), str(r.get("run_id", "–")),
                     folders.get(n, "–"), str(r.get("status", "–"))])
    return Table(head, rows)
