"""The decision on finished run folders: the Pareto stage's pick as the verdict judged it before
(``legacy``) against judge-then-choose (``fairsearch decide``), side by side.

For each run folder it prints, per decision: the verdict, the configuration, its validation and
test seed means of the rule's metrics, whether the rule holds on every fresh seed (validation,
test), the audit's worst case and the certified bound; then the stage times of ``stages.json``.
``--rule "adversary_bacc <= 0.55 @ 0.9"`` also decides the same retrained candidates under
another rule (the choice only: no retraining), to measure what a margin in the spec changes.

    python benchmarks/bench_decision.py RUN_DIR [RUN_DIR ...] [--rule RULE]
    python benchmarks/bench_decision.py --smoke-test
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fairsearch.analysis.decide.compute import compute_verdict  # noqa: E402
from fairsearch.analysis.decide.verdict import Verdict  # noqa: E402
from fairsearch.analysis.decide.verify import verify  # noqa: E402
from fairsearch.runfolder.reader import load_run  # noqa: E402


def legacy(run: Path) -> Verdict:
    """The pick of the Pareto stage, judged as the verdict judged it before the decide stage:
    its fresh seeds, the test split and the audit, with no utility check and no choice."""
    f = load_run(run)
    number = f.chosen_number
    meta = f.pareto_meta or {}
    base: dict[str, Any] = {"rule": meta.get("rule", ""), "constraints": f.subject_to}
    if number is None:
        return Verdict("fails", "the rule picks no configuration", **base)
    f.reference = None  # the old verdict had no trivial-predictor check
    return verify(f, number, base)


def row(v: Verdict) -> dict[str, Any]:
    val = {o.metric: o.val_mean for o in v.objectives}
    test = {o.metric: o.test_mean for o in v.objectives}
    return {
        "status": v.status, "number": v.number, "val": val, "test": test,
        "rule_every_seed_val": bool(v.rule_by_seed) and all(v.rule_by_seed.values()),
        "rule_every_seed_test": bool(v.rule_by_seed_test) and all(v.rule_by_seed_test.values()),
        "audit_worst": None if v.leak is None else [round(v.leak.value, 3),
                                                    round(v.leak.ci_low, 3),
                                                    round(v.leak.ci_high, 3)],
        "bound": v.bound, "reason": v.reason,
    }


def with_rule(run: Path, rule: str) -> Verdict:
    """The same retrained candidates decided under ``rule`` (``; ``-separated constraints and
    an optional ``maximize m``), in memory."""
    from fairsearch.analysis.pareto.rule import parse_select, rule_mapping

    f = load_run(run)
    select = rule_mapping(parse_select(rule))
    f.pareto_meta = {**(f.pareto_meta or {}), "select": select,
                     "rule": parse_select(rule).describe()}
    return compute_verdict(f)


def show(name: str, r: dict[str, Any]) -> None:
    def fmt(d: dict[str, Any]) -> str:
        return ", ".join(f"{k} {x:.3f}" for k, x in d.items() if x is not None)

    print(f"  {name:<8} {r['status'].upper():<11} #{r['number']}: val {fmt(r['val'])}; "
          f"test {fmt(r['test'])}; rule on every fresh seed: val {r['rule_every_seed_val']}, "
          f"test {r['rule_every_seed_test']}; audit worst {r['audit_worst']}; bound {r['bound']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", type=Path)
    p.add_argument("--rule", default=None, help="also decide under this rule")
    p.add_argument("--json", type=Path, default=None, help="write every figure here")
    p.add_argument("--smoke-test", action="store_true", help="a tiny run folder, in seconds")
    args = p.parse_args(argv)
    runs = list(args.runs)
    if args.smoke_test:
        runs = [_smoke_folder()]
    if not runs:
        p.error("name at least one run folder (or --smoke-test)")
    out = []
    for run in runs:
        old, new = row(legacy(run)), row(compute_verdict(load_run(run)))
        print(f"{run}")
        show("legacy", old)
        show("decide", new)
        rec = {"run": str(run), "legacy": old, "decide": new}
        if args.rule:
            rec["rule"] = row(with_rule(run, args.rule))
            show("@rule", rec["rule"])
        stages = run / "stages.json"
        if stages.is_file():
            rec["stages"] = json.loads(stages.read_text())
            print(f"  stages (s): {rec['stages']}")
        out.append(rec)
    held = sum(r["decide"]["rule_every_seed_val"] and r["decide"]["rule_every_seed_test"]
               for r in out)  # fmt: skip
    held_old = sum(r["legacy"]["rule_every_seed_val"] and r["legacy"]["rule_every_seed_test"]
                   for r in out)  # fmt: skip
    deployable = sum(r["decide"]["status"] == "deployable" for r in out)
    print(f"rule held on every fresh seed (validation and test): legacy {held_old} of {len(out)}, "
          f"decide {held} of {len(out)}; decide deployable {deployable} of {len(out)}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


def _smoke_folder() -> Path:
    """A run folder built by the report tests' fixture (real wrapper weights, a fake audit)."""
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from test_report import _retrained_run  # type: ignore[import-not-found]

    folder = Path(tempfile.mkdtemp(prefix="bench-decision-"))
    return _retrained_run(folder, seeds_disagree=True)


if __name__ == "__main__":
    sys.exit(main())
