"""The verdict: what to deploy, where its weights are, and how sure the numbers let us be.

It is computed from the run's tables only (pareto.json, retrain.parquet, retrain_summary.parquet,
audit.parquet) and rendered by :mod:`fairsearch.report.writer` and :func:`verdict_text`.

Rules (``ref`` = the floor when the audit measured one above chance, else chance; ``MARGIN`` =
0.05; the leak is judged by :func:`fairsearch.analysis.audit.leakage.judge_leak`, as in
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairsearch.analysis.audit.leakage import (
    MARGIN,
    Leak,
    floor_of,
    headline,
    judge_leak,
    leak_metric,
    leak_sentence,
    relation,
)
from fairsearch.analysis.audit.resolution import Resolution, other_label_leaks, resolution_of
from fairsearch.analysis.decide.bracket import bracket_sentence, reads_q_sentence
from fairsearch.analysis.decide.choice import (
    UTILITY_MARGIN,
    Choice,
    Evidence,
    choose,
    gain,
    task_metric,
)
from fairsearch.runfolder.names import (
    config_number,
    fmt_param,
    metric_info,
    metric_label,
    model_label,
    plain,
)
from fairsearch.runfolder.reader import RunFiles, load_run
from fairsearch.spec.constraints import parse_constraint

__all__ = ["MARGIN", "Leak", "ObjectiveStats", "Utility", "Verdict", "compute_verdict", "floor_of",
           "headline", "leak_metric", "relation", "rule_by_seed", "stored_verdict",
           "verdict_from_json", "verdict_text", "verdict_to_json"]

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
class Utility:
    """The task metric of the deployed seed on the test split against the trivial predictor's,
    with a bootstrap interval (over test rows) on how much better it is."""

    metric: str
    value: float
    trivial: float
    trivial_label: str
    gain: float
    ci_low: float
    ci_high: float
    margin: float = UTILITY_MARGIN

    @property
    def passes(self) -> bool:
        """Better by at least the margin, and the interval of the gain above 0."""
        return self.gain >= self.margin and self.ci_low > 0

    def sentence(self) -> str:
        info = metric_info(self.metric)
        scale = "" if info is None or info.direction == "maximize" else " (share of its error)"
        return (f"test {metric_label(self.metric)} {self.value:.3f} against {self.trivial:.3f} "
                f"for {self.trivial_label}: better by {self.gain:.3f}{scale} "
                f"[{self.ci_low:.3f}, {self.ci_high:.3f}]; deployable needs at least "
                f"{self.margin:g} with the interval above 0")


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
    #: the task metric on test against the trivial predictor (majority class, training mean)
    utility: Utility | None = None
    #: the certified upper bound on any classifier's balanced accuracy, where one exists
    bound: float | None = None
    #: what the recommendation costs against the unconstrained model on test
    cost: str | None = None
    #: a baseline the recommendation must beat (fairlearn's per-group thresholds)
    baseline: str | None = None
    #: every retrained candidate, judged (report's first table), and why the pick won
    candidates: list[dict[str, Any]] = field(default_factory=list)
    why_chosen: str = ""
    #: with no recommendation: what would help
    help: str = ""

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
    from fairsearch.analysis.retrain.stage import weights_load  # torch only when there are weights

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
    return (f"{head}from fairsearch.analysis.retrain.stage import load_model\n"
            f"model, config = load_model({json.dumps(str(folder))}{trust})\nout = {usage}")


def _factory(spec: Any) -> str | None:
    """The ``model.factory`` of the spec the run was made from, if it names one."""
    model = spec.get("model") if isinstance(spec, dict) else None
    factory = model.get("factory") if isinstance(model, dict) else None
    return factory if isinstance(factory, str) else None


# ---------------------------------------------------------------------------- the verdict
def compute_verdict(f: RunFiles) -> Verdict:
    """Judge, then choose: the recommendation among the retrained candidates
    (:func:`fairsearch.analysis.decide.choice.choose`, on validation alone), then its verification on the
    test split and by the audit. The ``decide`` stage writes it to ``verdict.json``."""
    meta = f.pareto_meta or {}
    base: dict[str, Any] = {"rule": meta.get("rule", ""), "rule_source": meta.get("rule_source", ""),
                            "constraints": f.subject_to,
                            "stale": {k: x for k, x in f.stale.items() if k != "decide"}}
    if f.pareto_meta is None:
        return Verdict("no verdict", "no Pareto analysis yet: run `fairsearch pareto`", **base)
    number = f.chosen_number
    if number is None and not meta.get("candidates"):
        return Verdict("fails", f"the selection rule ({meta.get('rule')}) picks no "
                                "configuration", **base)  # fmt: skip
    if number is None:
        number = int(meta["candidates"][0]["number"])
    if f.retrain is None:
        return Verdict("no verdict", f"#{number} is not retrained yet: run `fairsearch retrain`",
                       number=number, params=_params(_trial(f, number)), **base)
    stale = [s for s in ("retrain", "audit") if s in f.stale]
    if "retrain" in stale or ("audit" in stale and f.audit is not None):
        return Verdict("no verdict", f"{' and '.join(stale)} results are stale: re-run "
                       f"`fairsearch run {f.run_dir} --from {stale[0]}`", **base)
    choice = decide_on_validation(f)
    number = choice.number if choice.number is not None else choice.closest
    if number is None:
        return Verdict("fails", choice.why, help=choice.help, why_chosen=choice.why, **base)
    main = with_baseline(f, verify(f, number, base))
    rows = []
    for e in choice.evidence:
        v = main if e.number == number else verify(f, e.number, base)
        rows.append(candidate_row(e, v, recommended=e.number == choice.number))
    if choice.number is None:  # nothing holds on validation: the closest, never deployable
        status: Status = "fails" if main.status == "fails" else "borderline"
        why = choice.why + ("" if main.status == "deployable" else f"; and {main.reason}")
        return replace(main, status=status, reason=why, candidates=rows, why_chosen=choice.why,
                       help=choice.help)
    return replace(main, candidates=rows, why_chosen=choice.why)


def with_baseline(f: RunFiles, v: Verdict) -> Verdict:
    """``v`` with the family's threshold baseline and its cost against the unconstrained model
    (a wrapper classifier: :mod:`fairsearch.analysis.decide.baseline`)."""
    from fairsearch.analysis.decide.baseline import threshold_baseline
    from fairsearch.families import get_family

    if v.number is None or get_family(f.family).unconstrained(v.params) is None:
        return v
    select = (f.pareto_meta or {}).get("select") or {}
    target = select.get("maximize") or select.get("minimize")
    direction = "minimize" if select.get("minimize") else "maximize"
    try:
        b = threshold_baseline(f.run_dir, v.params, f.subject_to)
    except Exception as exc:  # noqa: BLE001 - a baseline that cannot be fitted is stated
        return replace(v, baseline=f"the threshold baseline could not be fitted: "
                                   f"{type(exc).__name__}: {exc}")  # fmt: skip
    if b is None:
        return v
    mine = {o.metric: o.test_mean for o in v.objectives if o.test_mean is not None}
    cost, text = b.sentences(target, direction, mine, f.subject_to)
    return replace(v, baseline=text, cost=cost or v.cost)


def _trial(f: RunFiles, number: int) -> pd.Series:
    return f.trials[f.trials["number"] == number].iloc[0]


def decide_on_validation(f: RunFiles) -> Choice:
    """:func:`~fairsearch.analysis.decide.choice.choose` given the run's validation evidence only."""
    meta = f.pareto_meta or {}
    select = meta.get("select") or ((f.spec.get("post") or {}).get("select") or {})
    target = None if select.get("knee") else (select.get("maximize") or select.get("minimize"))
    direction = "minimize" if select.get("minimize") and not select.get("knee") else "maximize"
    proposed = meta.get("candidates") or (
        [{"number": f.chosen_number, "why": "the rule's pick on the search's seed means"}]
        if f.chosen_number is not None else [])  # fmt: skip
    retrain = f.retrain if f.retrain is not None else pd.DataFrame(columns=["number", "status"])
    validation = retrain[[c for c in retrain.columns if not c.startswith("test.")]]
    reference = f.reference or {}
    available = [c.removeprefix("metric.") for c in validation.columns if c.startswith("metric.")]
    task = task_metric(f.objectives, target, available)
    trivial = (reference.get("val") or {}).get(task) if task else None
    unstable = {}
    if f.summary is not None and "unstable" in f.summary:
        for _, r in f.summary[f.summary["unstable"].astype(bool)].iterrows():
            reasons = [x for x in str(r.get("unstable_reason") or "").split("; ")
                       if "holds for some seeds only" not in x]  # judged per seed in choose()
            if reasons:
                unstable[int(r["number"])] = "; ".join(reasons)
    return choose(f.trials, validation, proposed, target=target, direction=direction,
                  subject_to=f.subject_to, task=task, trivial_val=trivial, unstable=unstable)


def verify(f: RunFiles, number: int, base: dict[str, Any]) -> Verdict:
    """Configuration ``number`` judged on its fresh seeds, the test split and the audit."""
    base = {**base, "number": number, "params": _params(_trial(f, number))}
    base["reads_q"] = reads_q_sentence(base["params"])
    assert f.retrain is not None
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
    utility = None
    if pick is not None:
        folder = f.run_dir / "retrain" / str(pick["config_id"]) / f"seed-{int(pick['seed'])}"
        base.update(seed=int(pick["seed"]), weights=folder,
                    snippet=snippet(f.family, folder, _factory(f.spec)))
        utility = utility_on_test(f, folder)
        if f.audit is not None:
            model = audit_model(str(pick["config_id"]), int(pick["seed"]))
            leak = headline(f.audit, model)
            base["bracket"] = bracket_sentence(f.audit, model)
            base["bound"] = certified_bound(f.audit, model)
            base["cost"] = cost_sentence(f.audit, model, f.family)
    base["leak"] = leak
    base["utility"] = utility
    resolution = resolution_of(f.audit) if f.audit is not None else None
    base["resolution"] = resolution
    if leak is not None and f.audit is not None:
        base["caveats"] = [c.sentence() for c in other_label_leaks(f.audit, leak.model)]
    status, reason = _judge(len(seeds), len(runs), rule, bool(f.subject_to), unstable, leak,
                            pick is not None, rule_test, resolution=resolution, utility=utility)
    return Verdict(status, reason, **base)


def _judge(completed: int, tried: int, rule: dict[int, bool], constrained: bool,
           unstable: str | None, leak: Leak | None, has_weights: bool,
           rule_test: dict[int, bool] | None = None, *,
           resolution: Resolution | None = None,
           utility: Utility | None = None) -> tuple[Status, str]:  # fmt: skip
    if completed == 0:
        return "fails", f"none of its {tried} retrained seeds completed"
    if not has_weights:
        return "fails", "no retrained seed left weights to deploy"
    held = sum(rule.values())
    if constrained and held == 0:
        return "fails", f"the rule's constraints hold for none of the {len(rule)} seeds"
    if utility is not None and not utility.passes:
        return "fails", (f"near-trivial: its {utility.sentence()}")
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
    if utility is not None:
        why += (f", it beats {utility.trivial_label} by {utility.gain:.3f} "
                f"{metric_label(utility.metric)} on test")
    return "deployable", f"{why}, seeds are stable and {leak_why}"


# ---------------------------------------------------------------------------- verification
def utility_on_test(f: RunFiles, folder: Path, n_boot: int = 1000) -> Utility | None:
    """The deployed seed's task metric on the test rows against the trivial predictor's
    (``retrain/reference.json``), the gain's interval from ``n_boot`` bootstrap resamples of the
    rows. None where the run folder lacks what it needs (older retrain outputs)."""
    from fairsearch.families import get_family

    ref = f.reference
    y_path, pred_path = f.run_dir / "retrain" / "test_y.npy", folder / "test_pred.npy"
    if not ref or not y_path.is_file() or not pred_path.is_file():
        return None
    available = list(ref.get("test") or {})
    target = ((f.pareto_meta or {}).get("select") or {}).get("maximize") or (
        ((f.pareto_meta or {}).get("select") or {}).get("minimize"))
    metric = task_metric(f.objectives, target, available)
    if metric is None:
        return None
    y, pred = np.load(y_path, allow_pickle=False), np.load(pred_path, allow_pickle=False)
    if len(y) != len(pred) or not len(y):
        return None
    family = get_family(f.family)
    const = np.full(len(y), ref["constant"], dtype=y.dtype)
    kw = {"task": ref.get("task", "classification"), "n_classes": int(ref.get("n_classes", 2))}

    def score(idx: np.ndarray) -> float:
        model = family.utility_scores(y[idx], pred[idx], **kw)[metric]
        return gain(metric, model, family.utility_scores(y[idx], const[idx], **kw)[metric])

    everything = np.arange(len(y))
    rng = np.random.default_rng(0)
    boots = np.array([score(rng.integers(0, len(y), len(y))) for _ in range(n_boot)])
    lo, hi = np.quantile(boots, [0.025, 0.975])
    value = family.utility_scores(y, pred, **kw)[metric]
    trivial = family.utility_scores(y, const, **kw)[metric]
    return Utility(metric, float(value), float(trivial), str(ref.get("label", "the trivial "
                   "predictor")), float(score(everything)), float(lo), float(hi))  # fmt: skip


def certified_bound(audit: pd.DataFrame, model: str) -> float | None:
    """The ``certified_bound`` row's value for ``model``, where the audit has one."""
    rows = audit[(audit["model"] == model) & (audit["probe"] == "certified_bound")]
    return float(rows["value"].iloc[0]) if len(rows) else None


def cost_sentence(audit: pd.DataFrame, model: str, family: str) -> str | None:
    """The control task of ``model`` against the unconstrained representation (the audit's
    ``original`` baseline: the same fresh probe on the same held-out rows)."""
    rows = audit[(audit["target"] == "control") & (audit["metric"] == "f1")]
    mine, orig = rows[rows["model"] == model], rows[rows["model"] == "original"]
    if not len(mine) or not len(orig):
        return None
    a, b = float(orig["value"].iloc[0]), float(mine["value"].iloc[0])
    return (f"control F1 of a fresh logistic probe on test: {b:.3f} against {a:.3f} on the "
            f"original representation, a cost of {a - b:.3f}")


def candidate_row(e: Evidence, v: Verdict, *, recommended: bool) -> dict[str, Any]:
    """One retrained candidate for the first screen: status, validation (every seed pooled) and
    test means, audit worst case and certified bound."""
    if recommended:
        status = "recommended"
    elif not e.eligible:
        status = e.kind
    elif v.status == "deployable":
        status = "also passes"
    elif v.leak is not None and judge_leak(v.leak)[0] == "fails":
        status = "fails the audit"
    else:
        status = "fails on test" if v.status == "fails" else "borderline on test"
    return {
        "number": e.number, "status": status, "why": e.why, "problem": e.problem,
        "seeds": e.n_seeds, "fresh_seeds": e.fresh,
        "val": {m: {"mean": plain(x), "se": plain(e.ses.get(m))} for m, x in e.means.items()},
        "test": {o.metric: plain(o.test_mean) for o in v.objectives},
        "audit_worst": None if v.leak is None else [v.leak.value, v.leak.ci_low, v.leak.ci_high],
        "bound": v.bound, "verdict": v.status, "verdict_reason": v.reason,
    }


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


def stored_verdict(f: RunFiles) -> tuple[Verdict, str | None]:
    """``verdict.json`` when it is current; else the verdict computed from the tables now, and a
    note that says why and which command writes it."""
    if f.verdict is not None and "decide" not in f.stale:
        return verdict_from_json(f.verdict), None
    why = ("verdict.json is stale" if f.verdict is not None else "the run folder has no "
           "verdict.json")  # fmt: skip
    return compute_verdict(f), (f"{why}: the verdict shown is computed from the current tables; "
                                f"`fairsearch decide {f.run_dir}` writes it")


def verdict_to_json(v: Verdict) -> dict[str, Any]:
    """``verdict.json``'s content (:func:`verdict_from_json` reads it back)."""
    d = asdict(v)
    d["weights"] = None if v.weights is None else str(v.weights)
    d["rule_by_seed"] = {str(k): b for k, b in v.rule_by_seed.items()}
    d["rule_by_seed_test"] = {str(k): b for k, b in v.rule_by_seed_test.items()}
    d["rule_holds"] = v.rule_holds if v.number is not None else None
    d["deploy"] = None if v.weights is None else str(v.weights / "model.pt")
    return _finite(d)


def _finite(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return plain(v) if isinstance(v, np.generic) else v


def verdict_from_json(d: dict[str, Any]) -> Verdict:
    """The :class:`Verdict` written by :func:`verdict_to_json`."""
    d = {k: x for k, x in d.items() if k in Verdict.__dataclass_fields__}
    d["objectives"] = [ObjectiveStats(**o) for o in d.get("objectives") or []]
    d["rule_by_seed"] = {int(k): b for k, b in (d.get("rule_by_seed") or {}).items()}
    d["rule_by_seed_test"] = {int(k): b for k, b in (d.get("rule_by_seed_test") or {}).items()}
    for key, cls in (("leak", Leak), ("resolution", Resolution), ("utility", Utility)):
        d[key] = None if d.get(key) is None else cls(**d[key])
    d["weights"] = None if d.get("weights") is None else Path(d["weights"])
    return Verdict(**d)


def number_of(model: str) -> int | None:
    """The trial number of an audit model name (``trial-3/seed-0`` -> 3)."""
    return config_number(model.partition("/seed-")[0])
