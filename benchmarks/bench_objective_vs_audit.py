"""Does the search's leak objective agree with the audit, on every retrained front member?

For each retrained (configuration, seed) of a run folder this prints the search objective
``adversary_bacc`` as the retrain recorded it on the validation rows (``retrain.parquet``,
``metric.adversary_bacc``; the same measure the search steered by), the largest single family
of it (the max over families, biased upwards), the audit's worst case on the test rows with its
interval (``audit.parquet``) and whether each lies inside that interval. With ``--old`` it also
reloads each model and computes the objective the search used before (the worse of an untuned
logistic and a 64-unit MLP fitted on at most 2,000 translated train rows, scored on validation);
with ``--recompute``, the objective with this checkout's leak probes (for a run folder made
before they changed).

    python benchmarks/bench_objective_vs_audit.py RUN_DIR [--old] [--recompute]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairsearch.analysis.retrain.weights import load_model
from fairsearch.data import load_from_spec, split_train_val
from fairsearch.families.translator.family import LEAK_FOLDS, leak_engines, leak_probes
from fairsearch.probes.ladder.fresh import leak_scores, probe_scores
from fairsearch.spec import load_spec


def _reloaded(run: Path, config_id: str, seed: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """The train and validation splits and a retrained model's outputs on them."""
    spec = load_spec(run / "spec.yaml")
    train, val = split_train_val(load_from_spec(spec.data), spec.search.seed)
    model, _ = load_model(run / "retrain" / config_id / f"seed-{seed}")

    def out(part: Any) -> np.ndarray:
        X = np.asarray(part.X, np.float32)
        return model.transform(X, q=part.q) if hasattr(model, "net_") else model.transform(X)

    return train, val, out(train), out(val)


def old_objective(run: Path, config_id: str, seed: int) -> float:
    """The retrained model's objective as the search measured it before (see the docstring)."""
    train, val, Ztr, Zv = _reloaded(run, config_id, seed)
    return max(probe_scores(Ztr, train.q, Zv, val.q, kind=k, max_train=2000, seed=seed)["bacc"]
               for k in ("logistic", "mlp"))  # fmt: skip


def current_objective(run: Path, config_id: str, seed: int) -> float:
    """The objective with this checkout's leak probes (the spec's ``model.leak_probes`` or the
    defaults), on the validation rows, as the family's ``evaluate`` computes it."""
    spec = load_spec(run / "spec.yaml")
    _, val, _, Zv = _reloaded(run, config_id, seed)
    return float(leak_scores(Zv, val.q, kinds=leak_probes(spec.model_args), folds=LEAK_FOLDS,
                             seed=seed, engine=leak_engines())["bacc"])  # fmt: skip


def compare(run: Path, *, old: bool = False, recompute: bool = False) -> pd.DataFrame:
    """One row per retrained seed: the search objective, the audit's worst case, inside or not."""
    retrain = pd.read_parquet(run / "retrain.parquet")
    retrain = retrain[retrain["status"] == "completed"]
    audit = pd.read_parquet(run / "audit.parquet")
    audit = audit[(audit["target"] == "q") & (audit["probe"] == "worst_case")
                  & (audit["metric"] == "balanced_accuracy")].set_index("model")  # fmt: skip
    families = [c.removeprefix("metric.adversary_bacc_") for c in retrain.columns
                if c.startswith("metric.adversary_bacc_")]  # fmt: skip
    rows = []
    for _, r in retrain.iterrows():
        model = f"{r['config_id']}/seed-{int(r['seed'])}"
        if model not in audit.index:
            continue
        a = audit.loc[model]
        search = float(r["metric.adversary_bacc"])
        by_family = {f: float(r[f"metric.adversary_bacc_{f}"]) for f in families
                     if pd.notna(r.get(f"metric.adversary_bacc_{f}"))}  # fmt: skip
        best = max(by_family, key=by_family.get) if by_family else ""
        row = {
            "model": model, "search": search, "search_max": by_family.get(best, np.nan),
            "strongest": best, "test_rows": float(r.get("test.adversary_bacc", np.nan)),
            "audit": float(a["value"]), "low": float(a["ci_low"]), "high": float(a["ci_high"]),
            "selected": a["selected"],
        }  # fmt: skip
        row["inside"] = row["low"] <= search <= row["high"]
        row["max_inside"] = row["low"] <= row["search_max"] <= row["high"]
        if old:
            row["old"] = old_objective(run, r["config_id"], int(r["seed"]))
            row["old_inside"] = row["low"] <= row["old"] <= row["high"]
        if recompute:
            row["now"] = current_objective(run, r["config_id"], int(r["seed"]))
            row["now_inside"] = row["low"] <= row["now"] <= row["high"]
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", metavar="RUN_DIR", help="a run folder with retrain and audit")
    ap.add_argument("--old", action="store_true", help="also the objective the search used before")
    ap.add_argument("--recompute", action="store_true",
                    help="also the objective with this checkout's leak probes, recomputed")
    args = ap.parse_args()
    run = Path(args.run_dir)
    for name in ("retrain.parquet", "audit.parquet"):
        if not (run / name).is_file():
            sys.exit(f"{run} has no {name}: run the retrain and audit stages first")
    table = compare(run, old=args.old, recompute=args.recompute)
    if table.empty:
        sys.exit(f"{run}: no retrained seed appears in the audit")
    print(f"{run}: search objective (validation rows, as retrain.parquet records it) against the "
          f"audit's worst case (test rows)")  # fmt: skip
    head = f"  {'model':<18} {'search':>7} {'max (family)':>17} {'test rows':>9}"
    head += f" {'old':>6}" if args.old else ""
    head += f" {'now':>6}" if args.recompute else ""
    print(head + f"  {'audit [interval]':<24} {'selected':<9} inside")
    for r in table.itertuples():
        line = (f"  {r.model:<18} {r.search:7.3f} {r.search_max:7.3f} {'(' + r.strongest + ')':>9} "
                f"{r.test_rows:9.3f}")  # fmt: skip
        line += f" {r.old:6.3f}" if args.old else ""
        line += f" {r.now:6.3f}" if args.recompute else ""
        print(line + f"  {r.audit:.3f} [{r.low:.3f}, {r.high:.3f}]  {r.selected:<9} "
                     f"{'yes' if r.inside else 'NO'}")  # fmt: skip
    n = len(table)
    print(f"inside the audit's interval: search objective {int(table['inside'].sum())}/{n}; "
          f"max over families {int(table['max_inside'].sum())}/{n}"
          + (f"; old objective {int(table['old_inside'].sum())}/{n}" if args.old else "")
          + (f"; recomputed {int(table['now_inside'].sum())}/{n}" if args.recompute else ""))
    gap = table["search"] - table["audit"]
    print(f"search - audit: mean {gap.mean():+.3f}, largest |gap| {gap.abs().max():.3f}")


if __name__ == "__main__":
    main()
