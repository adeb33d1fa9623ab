"""The verdict: what to deploy, where its weights are, and how sure the numbers let us be.

It is computed from the run's tables only (pareto.json, retrain.parquet, retrain_summary.parquet,
audit.parquet) and rendered by :mod:`fairsearch.report.writer` and :func:`verdict_text`.

Rules (``ref`` = the floor when the audit measured one above chance, else chance; ``MARGIN`` =
0.05; the leak is judged by :func:`fairsearch.analysis.leakage.judge_leak`, as in
:func:`fairsearch.audit`):

* **no verdict**: no retrain yet, or retrain/audit are stale (their inputs changed since).
* **fails**: the rule picks no configuration; no seed of it trained; the rule's constraints
  hold for no seed; or the worst-case probe's interval lies entirely above ``ref + MARGIN``.
* **borderline**: the constraints hold for some seeds only; the configuration is flagged
  unstable; the worst-case interval straddles ``ref + MARGIN``; or there is no audit yet.
* **unresolved**: the interval straddles ``ref + MARGIN`` and the held-out rows cannot resolve
  the margin (a leak-free representation's interval, chance + the audit's shuffled-q
  half-width, reaches past ``ref + MARGIN``), with no other doubt; with other doubts it is
  borderline, and the reason says the data cannot resolve the margin.
* **deployable**: none of the above.

Other labels a model gives away beyond their own chance + ``MARGIN`` are caveats, not failures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairsearch.analysis.leakage import (
    MARGIN,
    Leak,
    floor_of,
    headline,
    judge_leak,
    leak_metric,
    leak_sentence,
    relation,
)
from fairsearch.analysis.resolution import Resolution, other_label_leaks, resolution_of
from fairsearch.report.bracket import bracket_sentence, reads_q_sentence
from fairsearch.report.names import config_number, fmt_param, metric_label, model_label, plain
from fairsearch.report.runfiles import RunFiles, load_run
from fairsearch.spec.constraints import parse_constraint

__all__ = ["MARGIN", "Leak", "ObjectiveStats", "Verdict", "compute_verdict", "floor_of",
           "headline", "leak_metric", "relation", "rule_by_seed", "verdict_text"]

Status = Literal["deployable", "borderline", "unresolved", "fails", "no verdict"]


@dataclass(frozen=True)
class ObjectiveStats:
    """Seed mean and std (ddof=0, as retrain_summary.parquet holds them) of one objective."""

    metric: str
    direction: str
    val_mean: float | None
    val_std: float | None
    test_mean: float | None
    test_std: float | None


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    number: int | None = None
    rule: str = ""
    rule_source: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    objectives: list[ObjectiveStats] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    rule_by_seed: dict[int, bool] = field(default_factory=dict)
    #: the same rule judged on the test split, which no selection saw
    rule_by_seed_test: dict[int, bool] = field(default_factory=dict)
    unstable_reason: str | None = None
    leak: Leak | None = None
    #: what the held-out rows resolve (the audit's shuffled-q control), and other labels leaked
    resolution: Resolution | None = None
    caveats: list[str] = field(default_factory=list)
    #: the leak bracketed by the certified bound, and whether the model reads q (report/bracket.py)
    bracket: str | None = None
    reads_q: str | None = None
    seed: int | None = None
    seed_why: str = ""
    weights: Path | None = None
    snippet: str | None = None
    stale: dict[str, str] = field(default_factory=dict)

    @property
    def rule_holds(self) -> str:
        """``every``, ``some``, ``none`` of the seeds, or ``no constraints``."""
        if not self.constraints:
            return "no constraints"
        held = sum(self.rule_by_seed.values())
        if not self.rule_by_seed or held == 0:
            return "none"
        return "every" if held == len(self.rule_by_seed) else "some"


# ---------------------------------------------------------------------------- pieces
def _params(chosen: pd.Series) -> dict[str, Any]:
    return {c.removeprefix("param."): plain(chosen[c]) for c in chosen.index
            if c.startswith("param.") and plain(chosen[c]) is not None}


def _objectives(f: RunFiles, number: int) -> list[ObjectiveStats]:
    if f.summary is None:
        return []
    rows = f.summary[f.summary["number"] == number]
    if not len(rows):
        return []
    row = rows.iloc[0]

    def get(col: str) -> float | None:
        return plain(row[col]) if col in row.index else None

    return [ObjectiveStats(m, d, get(f"metric.{m}.mean"), get(f"metric.{m}.std"),
                           get(f"test.{m}.mean"), get(f"test.{m}.std")) for m, d in f.objectives]


def rule_by_seed(seeds: pd.DataFrame, constraints: list[str],
                 split: str = "metric") -> dict[int, bool]:  # fmt: skip
    """Whether each retrained seed meets every constraint on its own value (``split``:
    ``metric`` = validation columns, ``test`` = the test split no selection saw)."""
    holds = np.ones(len(seeds), dtype=bool)
    for text in constraints:
        con = parse_constraint(text).plain()
        col = f"{split}.{con.metric}"
        values = seeds[col] if col in seeds else pd.Series(np.nan, index=seeds.index)
        holds &= con.holds(values.to_numpy(np.float64, na_value=np.nan))
    return {int(s): bool(h) for s, h in zip(seeds["seed"], holds, strict=True)}


def audit_model(config_id: str, seed: int) -> str:
    return f"{config_id}/seed-{seed}"


def _pick_seed(seeds: pd.DataFrame, objectives: list[ObjectiveStats],
               rule: dict[int, bool], run: Path) -> tuple[pd.Series | None, str]:
    """The completed seed with weights closest to the seed mean (standardised by the std),
    preferring seeds that meet the rule."""
    from fairsearch.analysis.retrain import weights_load  # torch only when there are weights

    # a truncated or damaged model.pt is never offered for deployment
    have = seeds[[weights_load(run / "retrain" / str(r.config_id) / f"seed-{int(r.seed)}")
                  for r in seeds.itertuples()]]
    if not len(have):
        return None, "no seed left weights"
    meeting = have[[rule.get(int(s), True) for s in have["seed"]]]
    pool, note = (meeting, "") if len(meeting) else (have, "; no seed meets the rule")
    dist = np.zeros(len(pool))
    for o in objectives:
        col = f"metric.{o.metric}"
        if col in pool and o.val_mean is not None:
            scale = o.val_std if o.val_std else 1.0
            dist += ((pool[col].to_numpy(float) - o.val_mean) / scale) ** 2
    order = np.lexsort((pool["seed"].to_numpy(), dist))
    best = pool.iloc[order[0]]
    why = ("the only seed with weights" if len(have) == 1 else
           f"closest to the seed mean of the validation objectives among "
           f"{'seeds meeting the rule' if len(meeting) and len(meeting) < len(have) else 'the seeds'}")
    return best, why + note


def snippet(family: str, folder: Path, factory: str | None = None) -> str:
    """Three lines that load the weights in ``folder`` and apply them to an array ``X``; a
    user's ``factory`` is named in the call (loading imports only a factory the caller names)."""
    from fairsearch.families import FAMILIES, ModelFamily

    usage = getattr(FAMILIES.get(family), "usage", ModelFamily.usage)
    head = "import torch\n" if "torch." in usage else ""
    trust = f", factories=[{json.dumps(factory)}]" if factory else ""
    return (f"{head}from fairsearch.analysis.retrain import load_model\n"
            f"model, config = load_model({json.dumps(str(folder))}{trust})\nout = {usage}")


def _factory(spec: Any) -> str | None:
    """The ``model.factory`` of the spec the run was made from, if it names one."""
    model = spec.get("model") if isinstance(spec, dict) else None
    factory = model.get("factory") if isinstance(model, dict) else None
    return factory if isinstance(factory, str) else None


# ---------------------------------------------------------------------------- the verdict
def compute_verdict(f: RunFiles) -> Verdict:
    meta = f.pareto_meta or {}
    base = {"rule": meta.get("rule", ""), "rule_source": meta.get("rule_source", ""),
            "constraints": f.subject_to, "stale": dict(f.stale)}
    if f.pareto_meta is None:
        return Verdict("no verdict", "no Pareto analysis yet: run `fairsearch pareto`", **base)
    number = f.chosen_number
    if number is None:
        return Verdict("fails", f"the selection rule ({meta.get('rule')}) picks no configuration",
                       **base)
    chosen = f.chosen
    assert chosen is not None
    base.update(number=number, params=_params(chosen))
    base["reads_q"] = reads_q_sentence(base["params"])
    if f.retrain is None:
        return Verdict("no verdict", f"#{number} is not retrained yet: run `fairsearch retrain`",
                       **base)
    stale = [s for s in ("retrain", "audit") if s in f.stale]
    if "retrain" in stale or ("audit" in stale and f.audit is not None):
        return Verdict("no verdict", f"{' and '.join(stale)} results are stale: re-run "
                       f"`fairsearch run {f.run_dir} --from {stale[0]}`", **base)
    objectives = _objectives(f, number)
    runs = f.retrain[f.retrain["number"] == number]
    seeds = runs[runs["status"] == "completed"]
    rule = rule_by_seed(seeds, f.subject_to)
    rule_test = rule_by_seed(seeds, f.subject_to, "test") if any(
        c.startswith("test.") for c in seeds.columns) else {}  # fmt: skip
    summary = f.summary[f.summary["number"] == number] if f.summary is not None else None
    unstable = None
    if summary is not None and len(summary) and bool(summary["unstable"].iloc[0]):
        unstable = str(summary["unstable_reason"].iloc[0]) or "flagged unstable"
    pick, why = _pick_seed(seeds, objectives, rule, f.run_dir)
    base.update(objectives=objectives, rule_by_seed=rule, rule_by_seed_test=rule_test,
                unstable_reason=unstable, seed_why=why)
    leak = None
    if pick is not None:
        folder = f.run_dir / "retrain" / str(pick["config_id"]) / f"seed-{int(pick['seed'])}"
        base.update(seed=int(pick["seed"]), weights=folder, snippet=snippet(f.family, folder, _factory(f.spec)))
        if f.audit is not None:
            leak = headline(f.audit, audit_model(str(pick["config_id"]), int(pick["seed"])))
            base["bracket"] = bracket_sentence(f.audit, audit_model(str(pick["config_id"]),
                                                                  int(pick["seed"])))
    base["leak"] = leak
    resolution = resolution_of(f.audit) if f.audit is not None else None
    base["resolution"] = resolution
    if leak is not None and f.audit is not None:
        base["caveats"] = [c.sentence() for c in other_label_leaks(f.audit, leak.model)]
    status, reason = _judge(len(seeds), len(runs), rule, bool(f.subject_to), unstable, leak,
                            pick is not None, rule_test, resolution=resolution)
    return Verdict(status, reason, **base)


def _judge(completed: int, tried: int, rule: dict[int, bool], constrained: bool,
           unstable: str | None, leak: Leak | None, has_weights: bool,
           rule_test: dict[int, bool] | None = None, *,
           resolution: Resolution | None = None) -> tuple[Status, str]:  # fmt: skip
    if completed == 0:
        return "fails", f"none of its {tried} retrained seeds completed"
    if not has_weights:
        return "fails", "no retrained seed left weights to deploy"
    held = sum(rule.values())
    if constrained and held == 0:
        return "fails", f"the rule's constraints hold for none of the {len(rule)} seeds"
    leak_status, leak_why = judge_leak(leak) if leak is not None else ("borderline", "")
    if leak_status == "fails":
        return "fails", leak_why
    doubts = []
    if constrained and held < len(rule):
        doubts.append(f"the rule holds for {held} of {len(rule)} seeds")
    held_test = sum((rule_test or {}).values())
    if constrained and rule_test and held_test < len(rule_test):
        doubts.append(f"on the test split the rule holds for {held_test} of {len(rule_test)} "
                      "seeds")  # fmt: skip
    if unstable:
        doubts.append(f"unstable over seeds ({unstable})")
    if leak is None:
        doubts.append("no independent audit of it yet")
    elif leak_status == "borderline":
        if resolution is not None and not resolution.resolves(leak):
            unresolved = f"{resolution.unresolved(leak)}; {leak_why}"
            return ("borderline", "; ".join([*doubts, unresolved])) if doubts else (
                "unresolved", unresolved)
        doubts.append(leak_why)
    if doubts:
        return "borderline", "; ".join(doubts)
    why = ("the rule holds for every seed on validation and test" if constrained and rule_test
           else "the rule holds for every seed" if constrained else "retrained seeds agree")
    return "deployable", f"{why}, seeds are stable and {leak_why}"


# ---------------------------------------------------------------------------- plain text
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
    for stage, why in v.stale.items():
        lines.append(f"  STALE: {stage} ({why})")
    if v.rule:
        lines.append(f"  rule: {v.rule}" + (f" [{v.rule_source}]" if v.rule_source else ""))
    if v.params:
        width = max(len(k) for k in v.params)
        lines.append("  hyperparameters:")
        lines += [f"    {k:<{width}}  {fmt_param(p)}" for k, p in v.params.items()]
    if v.objectives:
        lines.append("  seed mean ± std:")
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
    return "\n".join(lines)


def verdict_text(run_dir: str | Path) -> str:
    """The verdict of ``run_dir`` as plain text (printed at the end of ``fairsearch run``)."""
    return render_text(compute_verdict(load_run(run_dir)))


def number_of(model: str) -> int | None:
    """The trial number of an audit model name (``trial-3/seed-0`` -> 3)."""
    return config_number(model.partition("/seed-")[0])
