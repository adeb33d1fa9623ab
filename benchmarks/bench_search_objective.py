"""What the translator's search leak objective costs per configuration, old against new.

Old ``adversary_bacc``: the worse of a fresh logistic and an untuned 64-unit MLP probe, fitted on
at most 2,000 translated *train* rows and scored on the validation rows. New: the audit ladder's
nested worst case over the leak probes (default: logistic, tuned MLP, boosted trees, kNN; and
the variants without kNN and without boosted trees), cross-fitted over 5 folds of the validation
rows' representation (:func:`fairsearch.probes.ladder.fresh.leak_scores`). For each data set this
trains one configuration, then times both objectives on it (CPU seconds, median of
``--repeats``) and each family of the new one on its own, and prints the seconds per
configuration (training + evaluation), the ratio, and each objective's value. Data sets: the
shipped names embeddings (the main job) and the Adult embeddings (q = sex).

    OMP_NUM_THREADS=1 python benchmarks/bench_search_objective.py [--smoke-test] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fairsearch.analysis.audit.units import LADDER_FOLDS, LADDER_REPEATS
from fairsearch.data import load_dataset, split_train_val
from fairsearch.families import TrialSettings, get_family
from fairsearch.families.translator.family import LEAK_FOLDS, LEAK_PROBES, leak_engines
from fairsearch.probes.ladder import run_ladder
from fairsearch.probes.ladder.fresh import leak_scores, probe_scores

#: (data set, protected, epochs, batch size, a configuration of its shipped spec's space)
CASES: dict[str, tuple[str, str | None, int, int, dict[str, Any]]] = {
    "names": ("names_minilm", None, 10, 128,
              {"fairness": "linear_guard", "w_fair": 10.0, "fair_rows": 100000,
               "bottleneck": "256-60", "lr_schedule": "cosine"}),
    "adult": ("adult_embeddings", "sex", 6, 512,
              {"fairness": "conditional_mmd", "w_fair": 1000.0, "fair_rows": 1024,
               "bottleneck": "32", "batch_size": 512, "lr_schedule": "cosine"}),
}  # fmt: skip


def old_objective(Ztr: np.ndarray, qtr: np.ndarray, Zv: np.ndarray, qv: np.ndarray,
                  seed: int) -> float:  # fmt: skip
    """The search objective before: worse of an untuned logistic and MLP on <= 2,000 train rows."""
    return max(probe_scores(Ztr, qtr, Zv, qv, kind=k, max_train=2000, seed=seed)["bacc"]
               for k in ("logistic", "mlp"))  # fmt: skip


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median CPU seconds of ``fn`` (this process's, all threads: on a loaded machine the wall
    clock measures the neighbours too) and its last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return float(np.median(times)), out


def bench(case: str, *, epochs: int | None, repeats: int, full: bool, audit: bool) -> None:
    name, protected, default_epochs, batch, config = CASES[case]
    data = load_dataset(name, protected=protected) if protected else load_dataset(name)
    family = get_family("translator")
    settings = TrialSettings(epochs=epochs or default_epochs, batch_size=batch, seed=0)
    train, val = split_train_val(data, 0)
    t0, w0 = time.process_time(), time.perf_counter()
    fitted = family.fit(config, train, val, settings, lambda row: None)
    train_s, wall_s = time.process_time() - t0, time.perf_counter() - w0
    Ztr = fitted.transform(np.asarray(train.X, np.float32), q=train.q)
    Zv = fitted.transform(np.asarray(val.X, np.float32), q=val.q)
    old_s, old = _median_time(lambda: old_objective(Ztr, train.q, Zv, val.q, 0), repeats)
    variants = {"new": LEAK_PROBES}
    if full:
        variants["no kNN"] = tuple(f for f in LEAK_PROBES if f != "knn")
        variants["no gbt"] = tuple(f for f in LEAK_PROBES if f != "gbt")
    print(f"{case}: {name}, q = {protected or 'race'}, {len(train.X)} train / {len(val.X)} val "
          f"rows, d = {Zv.shape[1]}; one configuration trained in {train_s:.1f} s "
          f"({settings.epochs} epochs; {wall_s:.1f} s wall at load {os.getloadavg()[0]:.1f})")
    print("  CPU seconds, one thread (OMP_NUM_THREADS=1, torch 1 thread)")
    print(f"  {'objective':<34} {'eval s':>7} {'per config s':>12} {'x old':>6}  bacc")
    print(f"  {'old: logistic, MLP on train rows':<34} {old_s:7.2f} {train_s + old_s:12.2f} "
          f"{1.0:6.2f}  {old:.3f}")  # fmt: skip
    for label, fams in variants.items():
        def run(fams: tuple[str, ...] = fams) -> dict[str, Any]:
            return leak_scores(Zv, val.q, kinds=fams, folds=LEAK_FOLDS, seed=0,
                               engine=leak_engines())  # fmt: skip

        new_s, new = _median_time(run, repeats)
        per = (train_s + new_s) / (train_s + old_s)
        print(f"  {label + ': ' + ', '.join(fams):<34} {new_s:7.2f} {train_s + new_s:12.2f} "
              f"{per:6.2f}  {new['bacc']:.3f} (max {new['max']:.3f})")  # fmt: skip
        if label == "new":
            default_s, default_bacc = new_s, new["bacc"]
    parts = []
    for f in LEAK_PROBES:
        s, out = _median_time(lambda f=f: leak_scores(Zv, val.q, kinds=(f,), seed=0,
                                                      engine=leak_engines()), 1)  # fmt: skip
        parts.append(f"{f} {s:.1f} s ({out['by_kind'][f]:.3f})")
    print("  each family alone (+ majority): " + " · ".join(parts))
    if audit:  # the audit's ladder on the test rows (its families, folds, repeats, bootstrap)
        test = data.subset("test")
        Zt = fitted.transform(np.asarray(test.X, np.float32), q=test.q)
        fams = ("majority", "logistic", "mlp", "gbt", "knn")  # the shipped specs' post.probes
        lad = run_ladder(Zt, test.q, kinds=fams, folds=LADDER_FOLDS, repeats=LADDER_REPEATS,
                         n_boot=1000, seed=0, mdl=False, engine="sklearn")  # fmt: skip
        wc = lad.worst_case
        print(f"  audit's worst case on the {len(test.X)} test rows: {wc.value:.3f} "
              f"[{wc.ci_low:.3f}, {wc.ci_high:.3f}] (selected {lad.selected}); inside: old "
              f"{'yes' if wc.ci_low <= old <= wc.ci_high else 'no'}, new "
              f"{'yes' if wc.ci_low <= default_bacc <= wc.ci_high else 'no'}")  # fmt: skip
    seeds = 4  # search.seeds: every configuration trains and is evaluated once per seed
    print(f"  objective cost: x{(train_s + default_s) / (train_s + old_s):.2f} per configuration; "
          f"at {seeds} seeds a configuration takes {seeds * (train_s + default_s):.0f} s instead "
          f"of {seeds * (train_s + old_s):.0f} s")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke-test", action="store_true", help="names only, 1 epoch, 1 repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="names,adult", help="comma-separated: names, adult")
    ap.add_argument("--audit", action="store_true",
                    help="also the audit's worst case on the test rows, and whether each "
                         "objective lies inside its interval")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = ["names"] if args.smoke_test else args.cases.split(",")
    for case in cases:
        bench(case, epochs=1 if args.smoke_test else None,
              repeats=1 if args.smoke_test else args.repeats, full=not args.smoke_test,
              audit=args.audit)


if __name__ == "__main__":
    main()
