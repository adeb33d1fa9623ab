"""Successive halving on against off at equal wall time: does stopping dominated configurations
at their rungs buy more configurations without losing the pick?

For each of ``--search-seeds`` search seeds, the spec (default the main job's
``search_spaces/names_translator.yaml``) is searched twice in this process
(``search.executor: inprocess``), each search stopped after the same ``--wall`` seconds (its
trial budget is set far above what fits): once as it is, once with ``search.halving`` (``--rule``,
YAML; default ``true``). Each search's best feasible configuration (largest control F1 seed mean
with ``adversary_bacc <= 0.55``) is retrained on ``--fresh`` seeds that no search used and judged
on the test split, with ``bench_search_quality.py``'s seeds-in-the-loop helper. Printed per arm:
configurations tried (completed + pruned), fresh-seed control F1, and how often the rule still
holds on the fresh seeds; then the paired difference, on - off, per search seed.

The arms share the machine one after another, so its load must be steady (``nice``, idle cores):
both arms get the same wall time, not the same CPU time.

Run: ``python benchmarks/bench_halving.py [--smoke-test] [--search-seeds 3] [--wall 600]
[--fresh 4]``; ``--smoke-test``: a tiny translator spec on synthetic embeddings, 1 search seed,
15 s a search, a lenient rule (one rung, ``min_trials`` 2, confidence 0.6), 1 fresh seed (about
a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from bench_search_quality import FEASIBLE_BACC, fresh_judgement

from fairsearch.data import load_from_spec
from fairsearch.search.engine import SearchInterrupted, search_inprocess
from fairsearch.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "search_spaces" / "names_translator.yaml"

#: The smoke test's spec: the translator on synthetic embeddings, 3 epochs, 2 seeds a trial.
SMOKE = {
    "name": "halving-smoke",
    "data": {"name": "synthetic_embeddings", "n": 600, "d": 8, "seed": 0},
    "model": {"family": "translator", "leak_probes": ["logistic"]},
    "objectives": [{"metric": "control_f1", "direction": "maximize"},
                   {"metric": "adversary_bacc", "direction": "minimize"}],
    "space": {"fairness": {"type": "categorical", "choices": ["cka"]},
              "w_fair": {"type": "float", "low": 0.0, "high": 10.0},
              "lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True}},
    "search": {"algorithm": "random", "trials": 10, "seeds": 2, "seed": 0},
    "trial": {"epochs": 3, "batch_size": 64},
}  # fmt: skip


def arm_spec(spec: Any, seed: int, halving: Any) -> Any:
    """``spec`` searched in this process with search seed ``seed``, a budget no wall time
    reaches, and ``halving`` (None: off) validated as a spec key."""
    raw = spec.to_dict()
    raw["name"] = f"{spec.name}-{'on' if halving is not None else 'off'}-s{seed}"
    raw["search"].update(seed=seed, trials=10_000, executor="inprocess")
    raw["search"].pop("halving", None)
    if halving is not None:
        raw["search"]["halving"] = halving
    return parse_spec(raw)


def timed_search(spec: Any, wall: float, storage: str) -> Path:
    """Search ``spec`` for ``wall`` seconds; the run folder (consistent, as after SIGINT)."""
    stop = threading.Event()
    timer = threading.Timer(wall, stop.set)
    timer.start()
    try:
        return search_inprocess(spec, storage=storage, stop=stop)
    except SearchInterrupted as exc:
        return Path(exc.run_dir)
    finally:
        timer.cancel()


def one_arm(spec: Any, data: Any, wall: float, fresh: int, storage: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    run = timed_search(spec, wall, storage)
    wall_s = time.perf_counter() - t0
    df = pd.read_parquet(run / "trials.parquet")
    counts = df["status"].value_counts()
    judged = fresh_judgement(spec, df, data, fresh)
    return {"wall_s": wall_s, "completed": int(counts.get("completed", 0)),
            "pruned": int(counts.get("pruned", 0)),
            "tried": int(counts.get("completed", 0) + counts.get("pruned", 0)), **judged}  # fmt: skip


def report(rows: list[dict[str, Any]], fresh: int) -> None:
    df = pd.DataFrame(rows)
    for arm, part in df.groupby("arm", sort=False):
        print(f"halving {arm:<3}  configurations tried {part['tried'].mean():.1f} +- "
              f"{part['tried'].std(ddof=0):.1f} (completed {part['completed'].mean():.1f}, pruned "
              f"{part['pruned'].mean():.1f}) in {part['wall_s'].mean():.0f} s; fresh-seed control "
              f"F1 ({fresh} seeds, test split) {part['fresh_f1'].mean():.4f} +- "
              f"{part['fresh_f1'].std(ddof=0):.4f}; rule (adversary_bacc <= {FEASIBLE_BACC}) holds "
              f"on {part['fresh_held'].mean():.0%} of fresh seeds", flush=True)  # fmt: skip
    on, off = (df[df["arm"] == a].set_index("seed") for a in ("on", "off"))
    gain = (on["fresh_f1"] - off["fresh_f1"]).dropna()
    held = (on["fresh_held"] - off["fresh_held"]).dropna()
    print(f"fresh-seed control F1 on - off, same search seed: {gain.mean():+.4f} +- "
          f"{gain.std(ddof=0):.4f} ({int((gain > 0).sum())} better, {int((gain < 0).sum())} worse "
          f"of {len(gain)}); rule holds on - off: {held.mean():+.0%}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--spec", type=Path, default=SPEC, help="the spec searched (a translator's)")
    parser.add_argument("--rule", default="true", help="search.halving of the on arm (YAML)")
    parser.add_argument("--search-seeds", type=int, default=3, help="searches per arm")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first search seed (to run the seeds of one comparison apart)")
    parser.add_argument("--wall", type=float, default=600.0, help="seconds per search")
    parser.add_argument("--fresh", type=int, default=4, help="fresh judging seeds")
    parser.add_argument("--csv", type=Path, default=None, help="also write one row per search")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rule = yaml.safe_load(args.rule)
    if args.smoke_test:  # a rule that can stop something within a few trials
        spec, seeds, wall, fresh = parse_spec(SMOKE), 1, 15.0, 1
        rule = {"rungs": [1], "keep": 0.5, "confidence": 0.6, "min_trials": 2}
    else:
        spec, seeds, wall, fresh = load_spec(args.spec), args.search_seeds, args.wall, args.fresh
    data = load_from_spec(spec.data)
    print(f"{spec.name}: {seeds} search seed(s) x 2 arms, {wall:.0f} s a search, in process; "
          f"halving rule {rule!r}; {spec.search.seeds} seeds a trial", flush=True)  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + seeds):
            for arm, halving in (("off", None), ("on", rule)):
                one = arm_spec(spec, seed, halving)
                rows.append({"arm": arm, "seed": seed, **one_arm(one, data, wall, fresh, tmp)})
                r = rows[-1]
                print(f"  seed {seed} {arm:<3}: tried {r['tried']} (pruned {r['pruned']}), picked "
                      f"#{r['picked']}, fresh-seed control F1 {r['fresh_f1']:.4f}", flush=True)  # fmt: skip
    report(rows, fresh)
    if args.csv is not None:
        pd.DataFrame(rows).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
