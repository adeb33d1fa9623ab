"""The verdict of a run: judge every retrained candidate, choose on validation, verify the choice.

:func:`compute_verdict` reads the run's tables only (pareto.json, retrain.parquet,
retrain_summary.parquet, audit.parquet); :func:`stored_verdict` prefers the decide stage's
``verdict.json`` while it is current.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from fairsearch.analysis.audit.leakage import judge_leak
from fairsearch.analysis.decide.choice import DISCRETE_TIP, Choice, Evidence, choose, task_metric
from fairsearch.analysis.decide.verdict import Status, Verdict, verdict_from_json
from fairsearch.analysis.decide.verify import params_of, seeds_doubt, trial_row, verify
from fairsearch.analysis.retrain.summary import without_per_seed
from fairsearch.runfolder.names import plain
from fairsearch.runfolder.reader import RunFiles

__all__ = ["candidate_row", "compute_verdict", "decide_on_validation", "run_criterion",
           "split_shift", "stored_verdict", "what_would_help", "with_baseline", "with_groups"]


def compute_verdict(f: RunFiles) -> Verdict:
    """Judge, then choose: the recommendation among the retrained candidates
    (:func:`fairsearch.analysis.decide.choice.choose`, on validation alone), then its verification on the
    test split and by the audit. The ``decide`` stage writes it to ``verdict.json``."""
    meta = f.pareto_meta or {}
    base: dict[str, Any] = {"rule": meta.get("rule", ""), "rule_source": meta.get("rule_source", ""),
                            "constraints": f.subject_to,
                            "stale": {k: x for k, x in f.stale.items() if k != "decide"},
                            **run_criterion(f)}
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
                       number=number, params=params_of(trial_row(f, number)), **base)
    stale = [s for s in ("retrain", "audit") if s in f.stale]
    if "retrain" in stale or ("audit" in stale and f.audit is not None):
        return Verdict("no verdict", f"{' and '.join(stale)} results are stale: re-run "
                       f"`fairsearch run {f.run_dir} --from {stale[0]}`", **base)
    choice = decide_on_validation(f)
    number = choice.number if choice.number is not None else choice.closest
    if number is None:
        return Verdict("fails", choice.why, help=choice.help, why_chosen=choice.why, **base)
    main = with_groups(f, with_baseline(f, verify(f, number, base)))
    rows = []
    for e in choice.evidence:
        v = main if e.number == number else verify(f, e.number, base)
        rows.append(candidate_row(e, v, recommended=e.number == choice.number))
    if choice.number is None:  # nothing holds on validation: the closest, never deployable
        status: Status = "fails" if main.status == "fails" else "borderline"
        why = choice.why + ("" if main.status == "deployable" else
                            f"; and {_unsaid(main.reason, choice, main.rule_by_seed)}")
        return replace(main, status=status, reason=why, candidates=rows, why_chosen=choice.why,
                       help=what_would_help(choice.help, main.bound))
    held_test = main.rule_by_seed_test or {}
    help_ = split_shift(rows, f.subject_to) if held_test and not all(held_test.values()) else ""
    return replace(main, candidates=rows, why_chosen=choice.why, help=help_)


def what_would_help(tips: str, bound: float | None) -> str:
    """The choice's tips (``"; "``-joined), without the one that proposes a discrete output when
    the closest candidate's audit already certified a bound (its output is discrete)."""
    if bound is None:
        return tips
    return "; ".join(t for t in tips.split("; ") if t != DISCRETE_TIP)


def _unsaid(reason: str, choice: Choice, rule: dict[int, bool]) -> str:
    """The closest candidate's verdict reason without the per-seed count the choice's sentence
    already gives (it names the closest's fresh seeds that held the rule)."""
    closest = next((e for e in choice.evidence if e.number == choice.closest), None)
    doubt = seeds_doubt(rule)
    if not (doubt and closest is not None and closest.problem.endswith("fresh seeds")):
        return reason
    rest = reason.removeprefix(doubt).removeprefix("; ")
    return rest or reason


def split_shift(rows: list[dict[str, Any]], subject_to: list[str]) -> str:
    """Where the recommendation holds its rule on validation but not on every test seed: the
    sentence saying that every retrained candidate moved the same way from validation to test
    on a constrained metric (the splits differ, so the choice on validation met a harder test),
    with the margin that would have absorbed it; empty when the candidates do not agree."""
    from fairsearch.spec.constraints import parse_constraint

    out = []
    for c in map(parse_constraint, subject_to):
        shifts = [float(r["test"][c.metric]) - float(r["val"][c.metric]["mean"]) for r in rows
                  if r["test"].get(c.metric) is not None
                  and (r["val"].get(c.metric) or {}).get("mean") is not None]  # fmt: skip
        worse = [s if c.op.startswith("<") else -s for s in shifts]
        if len(worse) < 2 or min(worse) <= 0:
            continue
        stricter = c.value - max(worse) if c.op.startswith("<") else c.value + max(worse)
        direction = "higher" if c.op.startswith("<") else "lower"
        out.append(f"every one of the {len(worse)} retrained candidates measures {c.metric} "
                   f"{direction} on test than on validation (by {min(worse):.3f} to "
                   f"{max(worse):.3f}), so the split moved it, not the choice: a rule stricter "
                   f"by that much on validation ({c.metric} {c.op} {stricter:.3f}) allows for "
                   "the shift")  # fmt: skip
    return "; ".join(out)


def run_criterion(f: RunFiles) -> dict[str, str]:
    """``{"criterion": ...}`` of the run's ``fairness.criterion`` unless independence."""
    fairness = (f.spec or {}).get("fairness") if isinstance(f.spec, dict) else None
    criterion = fairness.get("criterion") if isinstance(fairness, dict) else None
    return {"criterion": criterion} if criterion not in (None, "independence") else {}


def with_groups(f: RunFiles, v: Verdict) -> Verdict:
    """``v`` with the per-group rates of its deployed seed's test decisions, the rates its
    criterion equalises, for a binary task and categorical q
    (:mod:`fairsearch.analysis.decide.groups`); ``v`` as it is where the run folder lacks what
    they need."""
    from fairsearch.analysis.decide.groups import group_rates
    from fairsearch.data import load_from_spec

    if v.weights is None:
        return v
    y_path, pred_path = f.run_dir / "retrain" / "test_y.npy", v.weights / "test_pred.npy"
    if not y_path.is_file() or not pred_path.is_file():
        return v
    test = load_from_spec(f.spec["data"]).subset("test")
    y, pred = np.load(y_path, allow_pickle=False), np.load(pred_path, allow_pickle=False)
    q = np.asarray(test.q).reshape(-1)
    if len(y) != len(q) or len(np.unique(y)) != 2 or test.q_kind != "categorical":
        return v
    names = test.classes.get("q") or tuple(str(g) for g in range(int(q.max()) + 1))
    return replace(v, groups=group_rates(y, pred, q, names,
                                         criterion=v.criterion or "independence"))


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
    cost, text = b.sentences(target, direction, mine, f.subject_to,
                             [metric for metric, _ in f.objectives])
    return replace(v, baseline=text, cost=cost or v.cost)


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
            reason = without_per_seed(r.get("unstable_reason"))  # judged per seed in choose()
            if reason:
                unstable[int(r["number"])] = reason
    return choose(f.trials, validation, proposed, target=target, direction=direction,
                  subject_to=f.subject_to, task=task, trivial_val=trivial, unstable=unstable)


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


def stored_verdict(f: RunFiles) -> tuple[Verdict, str | None]:
    """``verdict.json`` when it is current; else the verdict computed from the tables now, and a
    note that says why and which command writes it."""
    if f.verdict is not None and "decide" not in f.stale:
        return verdict_from_json(f.verdict), None
    why = ("verdict.json is stale" if f.verdict is not None else "the run folder has no "
           "verdict.json")  # fmt: skip
    return compute_verdict(f), (f"{why}: the verdict shown is computed from the current tables; "
                                f"`fairsearch decide {f.run_dir}` writes it")
