"""One retrained configuration verified: its fresh seeds, the test split and the audit.

Rules (``ref`` = the floor when the audit measured one above chance, else chance; ``MARGIN`` =
0.05; the leak is judged by :func:`fairsearch.analysis.audit.leakage.judge_leak`, as in
:func:`fairsearch.audit`):

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

(**no verdict**, for a run without retrain or with stale retrain/audit outputs, is decided by
:func:`fairsearch.analysis.decide.compute.compute_verdict`.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairsearch.analysis.audit.leakage import Leak, headline, judge_leak
from fairsearch.analysis.audit.resolution import Resolution, other_label_leaks, resolution_of
from fairsearch.analysis.decide.bracket import bracket_sentence, reads_q_sentence
from fairsearch.analysis.decide.choice import gain, task_metric
from fairsearch.analysis.decide.verdict import ObjectiveStats, Status, Utility, Verdict
from fairsearch.analysis.retrain.summary import without_per_seed
from fairsearch.runfolder.names import config_number, metric_label, plain
from fairsearch.runfolder.reader import RunFiles
from fairsearch.spec.constraints import parse_constraint

__all__ = ["audit_model", "certified_bound", "cost_sentence", "judge", "number_of", "params_of",
           "rule_by_seed", "seeds_doubt", "snippet", "trial_row", "utility_on_test", "verify"]


def params_of(chosen: pd.Series) -> dict[str, Any]:
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
    # torch only when there are weights
    from fairsearch.analysis.retrain.weights import weights_load

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



def trial_row(f: RunFiles, number: int) -> pd.Series:
    """The trials row of configuration ``number``."""
    return f.trials[f.trials["number"] == number].iloc[0]


def number_of(model: str) -> int | None:
    """The trial number of an audit model name (``trial-3/seed-0`` -> 3)."""
    return config_number(model.partition("/seed-")[0])


def verify(f: RunFiles, number: int, base: dict[str, Any]) -> Verdict:
    """Configuration ``number`` judged on its fresh seeds, the test split and the audit."""
    base = {**base, "number": number, "params": params_of(trial_row(f, number))}
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
    status, reason = judge(len(seeds), len(runs), rule, bool(f.subject_to), unstable, leak,
                           pick is not None, rule_test, resolution=resolution, utility=utility)
    return Verdict(status, reason, **base)


def seeds_doubt(rule: dict[int, bool]) -> str:
    """The doubt a rule that held for some seeds only raises (empty when it held for all or
    none)."""
    held = sum(rule.values())
    return f"the rule holds for {held} of {len(rule)} seeds" if 0 < held < len(rule) else ""


def judge(completed: int, tried: int, rule: dict[int, bool], constrained: bool,
          unstable: str | None, leak: Leak | None, has_weights: bool,
          rule_test: dict[int, bool] | None = None, *,
          resolution: Resolution | None = None,
          utility: Utility | None = None) -> tuple[Status, str]:  # fmt: skip
    """The status of one configuration and why, by the rules of this module's docstring."""
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
    some_seeds = seeds_doubt(rule) if constrained else ""
    if some_seeds:
        doubts.append(some_seeds)
        unstable = without_per_seed(unstable)  # the same fact, said once
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

