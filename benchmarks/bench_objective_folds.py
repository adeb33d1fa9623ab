"""The search leak objective's outer folds: 5 (the audit's) against 3, beside the fold seed's own noise.

The translator's ``adversary_bacc`` is cross-fitted over ``LEAK_FOLDS`` stratified folds of the
validation rows: every fold fits each tuned probe once more, so the folds set most of the
objective's cost. This trains ``--configs`` configurations drawn at random from the main job's
space (one seed each, as a search lane trains them; the same draws as
``bench_objective_grid.py``) and computes the objective on each translated validation set and on
the original embeddings three ways: 5 folds with fold seed 0, 5 folds with fold seed 1 (the noise
a different shuffle of the same rows brings), and ``--folds`` folds with fold seed 0. It prints
each representation's worst case per way; then, over all of them, the difference of the fewer
folds from 5 (mean, smallest, largest, mean absolute) beside the same for the other fold seed,
the rank correlation with the 5-fold values, and each way's CPU seconds with their ratio (one
thread, measured in this one run).

    OMP_NUM_THREADS=1 nice python benchmarks/bench_objective_folds.py [--configs 12] [--folds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from scipy.stats import spearmanr

from fairsearch.families.translator.family import OBJECTIVE_GRIDS, leak_engines
from fairsearch.probes.ladder.fresh import leak_scores

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.*
    from bench_objective_grid import representation_args, representations_for
except ImportError:  # pragma: no cover
    from benchmarks.bench_objective_grid import representation_args, representations_for


def _differences(ref: list[float], other: list[float]) -> str:
    d = [b - a for a, b in zip(ref, other, strict=True)]
    return (f"mean {statistics.mean(d):+.4f}, from {min(d):+.4f} to {max(d):+.4f}, "
            f"mean absolute {statistics.mean(abs(x) for x in d):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    representation_args(ap)
    ap.add_argument("--folds", type=int, default=3, help="the fewer outer folds to compare")
    args = ap.parse_args()
    reps, kinds = representations_for(args)
    ways = (("5 folds, fold seed 0", 5, 0), ("5 folds, fold seed 1", 5, 1),
            (f"{args.folds} folds, fold seed 0", args.folds, 0))  # fmt: skip
    print(f"leak objective over {list(kinds)} (the objective's grid and engines) on {len(reps)} "
          f"representations of the main job's validation rows (n = {len(reps[0][2])})")
    print(f"  {'representation':<22} " + " | ".join(w[0] for w in ways))
    cpu = dict.fromkeys((w[0] for w in ways), 0.0)
    worst: dict[str, list[float]] = {w[0]: [] for w in ways}
    for name, Z, q in reps:
        for label, folds, seed in ways:
            c0 = time.process_time()
            res = leak_scores(Z, q, kinds=kinds, folds=folds, seed=seed, engine=leak_engines(),
                              grids=OBJECTIVE_GRIDS)  # fmt: skip
            cpu[label] += time.process_time() - c0
            worst[label].append(res["bacc"])
        print(f"  {name:<22} " + " | ".join(f"{worst[w[0]][-1]:.4f}".center(len(w[0]))
                                             for w in ways), flush=True)  # fmt: skip
    ref, other, fewer = (worst[w[0]] for w in ways)
    print(f"worst case, {ways[2][0]} - 5 folds: {_differences(ref, fewer)}")
    print(f"worst case, other fold seed - 5 folds: {_differences(ref, other)}")
    if len(ref) > 2:
        print(f"rank correlation with 5 folds, fold seed 0: {ways[2][0]} "
              f"{spearmanr(ref, fewer).statistic:.3f}, other fold seed "
              f"{spearmanr(ref, other).statistic:.3f}")
    base = cpu[ways[0][0]]
    for label, _, _ in ways:
        print(f"  {label:<22} {cpu[label]:7.1f} CPU s ({cpu[label] / len(reps):5.2f} s a "
              f"representation), {cpu[label] / base:4.2f}x 5 folds")


if __name__ == "__main__":
    main()
