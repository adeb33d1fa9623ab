"""The verdict as plain text: what ``fairsearch decide`` and ``fairsearch run`` print, and the
candidates' cells the report's first table shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fairsearch.analysis.audit.leakage import leak_sentence
from fairsearch.analysis.decide.compute import stored_verdict
from fairsearch.analysis.decide.groups import groups_sentence
from fairsearch.analysis.decide.verdict import ObjectiveStats, Verdict
from fairsearch.measures.fairness import criterion_sentence
from fairsearch.runfolder.names import fmt_param, metric_label, model_label
from fairsearch.runfolder.reader import load_run

__all__ = ["CANDIDATE_HEAD", "WORDS", "candidate_cells", "candidate_lines", "legend",
           "objective_line", "render_text", "rule_sentence", "verdict_text"]

#: The verdict's words a first reader may not know (docs/architecture.md, "Glossary"), each
#: explained under the verdict when it uses them: (pattern in the text, explanation).
WORDS: tuple[tuple[str, str], ...] = (
    ("chance", "chance: the balanced accuracy of guessing q, 1 / number of groups"),
    ("floor", "floor: how well q is predicted from the control label alone, what keeping that "
              "label forces any representation to leak; the audit judges the worst-case probe "
              "against floor + 0.05 (the margin)"),
    ("worst case", "worst case: the highest balanced accuracy of q any probe reaches, the probe "
                   "chosen on inner folds; a probe is a classifier trained afresh to recover q"),
    ("leak bracket", "leak bracket: the leak lies between the probes' worst case (a lower "
                     "bound) and the certified bound (an upper bound for any classifier)"),
    ("control", "control: the label the model keeps predicting (its task); q: the protected "
                "attribute"),
    ("sigma_f", "sigma_f, sigma_q: the bandwidths of the RBF kernels on the model's output and "
                "on q in the CKA penalty ('median': the median distance between rows)"),
)


def legend(text: str) -> list[str]:
    """One line for each of :data:`WORDS` that ``text`` uses."""
    lowered = text.lower()
    return [line for word, line in WORDS if word in lowered]


def rule_sentence(v: Verdict) -> str:
    if not v.constraints:
        return f"{v.rule} (no constraints to check per seed)"
    held = sum(v.rule_by_seed.values())
    text = (f"{', '.join(v.constraints)} holds for {v.rule_holds} seed"
            f"{'s' if v.rule_holds != 'every' else ''} ({held} of {len(v.rule_by_seed)}, "
            "validation split")
    if v.rule_by_seed_test:
        text += f"; {sum(v.rule_by_seed_test.values())} of {len(v.rule_by_seed_test)} on test"
    return text + ")"


def objective_line(o: ObjectiveStats) -> str:
    def ms(m: float | None, s: float | None) -> str:
        return "–" if m is None else f"{m:.3f} ± {s or 0.0:.3f}"
    return (f"{metric_label(o.metric)} ({o.direction}): val {ms(o.val_mean, o.val_std)}, "
            f"test {ms(o.test_mean, o.test_std)}")


def render_text(v: Verdict) -> str:
    lines = [f"VERDICT: {v.status.upper()}" + (f" — configuration #{v.number}"
                                                 if v.number is not None else ""),
             f"  why: {v.reason}"]
    if v.criterion:
        lines.insert(1, f"  fairness: {criterion_sentence(v.criterion)}")
    if v.why_chosen and v.why_chosen != v.reason:
        lines.append(f"  chosen: {v.why_chosen}")
    if v.help:
        lines.append(f"  would help: {v.help}")
    if v.utility is not None:
        lines.append(f"  task: {v.utility.sentence()}")
    if v.cost:
        lines.append(f"  cost: {v.cost}")
    if v.baseline:
        lines.append(f"  baseline: {v.baseline}")
    if v.groups:
        lines.append(f"  groups: {groups_sentence(v.groups)}")
    for stage, why in v.stale.items():
        lines.append(f"  STALE: {stage} ({why})")
    if v.rule:
        lines.append(f"  rule: {v.rule}" + (f" [{v.rule_source}]" if v.rule_source else ""))
    if v.candidates:
        lines.append("  retrained candidates (validation: every seed pooled; test: fresh seeds):")
        lines += [f"    {line}" for line in candidate_lines(v.candidates)]
    if v.params:
        width = max(len(k) for k in v.params)
        lines.append("  hyperparameters:")
        lines += [f"    {k:<{width}}  {fmt_param(p)}" for k, p in v.params.items()]
    if v.objectives:
        lines.append("  seed mean ± std (fresh seeds):")
        lines += [f"    {objective_line(o)}" for o in v.objectives]
    if v.rule_by_seed or (v.constraints and v.status != "no verdict" and v.number is not None):
        lines.append(f"  rule per seed: {rule_sentence(v)}")
    if v.leak is not None:
        lines.append(f"  audit ({model_label(v.leak.model)}): {leak_sentence(v.leak)}")
    if v.resolution is not None:
        lines.append(f"  resolution: {v.resolution.sentence()}")
    lines += [f"  caveat: {c}" for c in v.caveats]
    if v.bracket:
        lines.append(f"  leak bracket: {v.bracket}")
    if v.reads_q:
        lines.append(f"  reads q: {v.reads_q}")
    if v.weights is not None:
        lines.append(f"  deploy: {v.weights / 'model.pt'} (seed {v.seed}: {v.seed_why})")
        lines.append("  load:")
        lines += [f"    {s}" for s in (v.snippet or "").splitlines()]
    words = legend("\n".join(lines))
    if words:
        lines.append("  words:")
        lines += [f"    {w}" for w in words]
    return "\n".join(lines)


def candidate_cells(c: dict[str, Any]) -> list[str]:
    """One candidate's cells: configuration, status, validation and test means per metric,
    audit worst case [interval], certified bound."""
    val = " · ".join(f"{metric_label(m)} {x['mean']:.3f}" for m, x in c["val"].items()
                     if x.get("mean") is not None)  # fmt: skip
    test = " · ".join(f"{metric_label(m)} {x:.3f}" for m, x in c["test"].items() if x is not None)
    worst = "–" if not c.get("audit_worst") else "{:.3f} [{:.3f}, {:.3f}]".format(*c["audit_worst"])
    bound = "–" if c.get("bound") is None else f"{c['bound']:.3f}"
    status = c["status"] + (f" ({c['problem']})" if c.get("problem") else "")
    return [f"#{c['number']}", status, f"{val} ({c['seeds']} seeds)", test or "–", worst, bound]


CANDIDATE_HEAD = ["configuration", "status", "validation, mean over seeds", "test, mean",
                  "audit worst case", "certified bound"]


def candidate_lines(candidates: list[dict[str, Any]]) -> list[str]:
    rows = [candidate_cells(c) for c in candidates]
    return [f"{r[0]:<5} {r[1]}" + "".join(f"\n      {h}: {x}" for h, x in zip(CANDIDATE_HEAD[2:],
                                                                            r[2:], strict=True))
            for r in rows]


def verdict_text(run_dir: str | Path) -> str:
    """The verdict of ``run_dir`` as plain text (printed at the end of ``fairsearch run``):
    ``verdict.json`` as the decide stage wrote it, else computed from the tables."""
    verdict, note = stored_verdict(load_run(run_dir))
    return render_text(verdict) + (f"\n  note: {note}" if note else "")
