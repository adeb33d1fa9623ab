"""How much of a search objective is the configuration, and how much the training seed.

A sampler can only beat random sampling by more than the objective's own noise: a search trains
each configuration once (``search.seed``), so a configuration that looks better by less than
the spread between seeds of one configuration is better by luck. This benchmark draws ``K``
configurations at random from a spec's space, trains each with ``S`` seeds (each seed also
draws its own validation split, as a retrain does) and prints, per objective:

* ``between``: the std, across configurations, of the per-configuration mean;
* ``within``: the pooled std across seeds of one configuration (the noise a search sees);
* ``between / within``: how many noise-widths the configurations spread over;
* the rank correlation between the seed-0 values (what a search sees) and the means over the
  other seeds (what a retrain finds).

It also prints, for a ``post.select`` constraint, how often the best feasible configuration by
seed 0 is the best by the other seeds' mean.

Run: ``python benchmarks/bench_objective_noise.py [--spec PATH] [--configs K] [--seeds S]
[--smoke-test]`` (default: the names translator, 8 configurations x 4 seeds, ~5 min on 2 cores).
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from scipy.stats import spearmanr

from fairsearch.spec.schema import load_spec
from fairsearch.spec.space import sample

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / "search_spaces" / "names_translator.yaml"


def configurations(spec, k: int, seed: int) -> list[dict]:
    study = optuna.create_study(directions=[o.direction for o in spec.objectives],
                                sampler=optuna.samplers.RandomSampler(seed=seed))  # fmt: skip
    return [sample(study.ask(), spec.space) for _ in range(k)]


@functools.cache
def _problem(spec_path: str):
    """The spec and its data, loaded once per worker process."""
    from fairsearch.data import load_from_spec

    spec = load_spec(spec_path)
    return spec, load_from_spec(spec.data)


def _train(spec_path: str, epochs: int | None, config: dict, seed: int) -> dict[str, float]:
    import torch

    from fairsearch.families import TrialSettings, train_and_evaluate

    torch.set_num_threads(1)  # as a 1-CPU lane does
    spec, data = _problem(spec_path)
    settings = TrialSettings(epochs=epochs or spec.trial.epochs, batch_size=spec.trial.batch_size,
                             seed=seed)  # fmt: skip
    return train_and_evaluate(spec.model, config, data, settings, lambda r: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--sample-seed", type=int, default=123, help="seed of the random draw")
    parser.add_argument(
        "--smoke-test", action="store_true", help="2 configurations x 2 seeds, 1 epoch"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.smoke_test:
        args.configs, args.seeds = 2, 2
    epochs = 1 if args.smoke_test else None
    spec = load_spec(args.spec)
    configs = configurations(spec, args.configs, args.sample_seed)
    jobs = [(i, s) for i in range(len(configs)) for s in range(args.seeds)]
    print(
        f"{spec.name}: {len(configs)} random configurations x {args.seeds} seeds, "
        f"{epochs or spec.trial.epochs} epochs, {args.processes} processes",
        flush=True,
    )
    t = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.processes, mp_context=ctx) as pool:
        futures = {job: pool.submit(_train, str(args.spec), epochs, configs[job[0]], job[1])
                   for job in jobs}  # fmt: skip
        rows = [{"config": i, "seed": s, **futures[(i, s)].result()} for i, s in jobs]
    df = pd.DataFrame(rows)
    print(f"trained {len(jobs)} times in {time.perf_counter() - t:.0f} s")
    for o in spec.objectives:
        values = df.pivot(index="config", columns="seed", values=o.metric)
        between = float(values.mean(axis=1).std(ddof=1))
        within = float(np.sqrt(values.var(axis=1, ddof=1).mean()))
        rho = spearmanr(values[0], values.drop(columns=0).mean(axis=1)).statistic
        print(f"  {o.metric:<16} between {between:.4f}  within {within:.4f}  "
              f"between / within {between / within:5.2f}  rank corr. seed 0 vs other seeds "
              f"{rho:+.2f}")  # fmt: skip
    if spec.post.subject_to and (spec.post.select_maximize or spec.post.select_minimize):
        _best_feasible(df, spec)


def _best_feasible(df: pd.DataFrame, spec) -> None:
    """The best feasible configuration by seed 0 against the best by the other seeds' mean."""
    post = spec.post
    goal, sign = (
        (post.select_maximize, 1.0) if post.select_maximize else (post.select_minimize, -1.0)
    )
    others = df[df.seed != 0].groupby("config").mean(numeric_only=True)
    first = df[df.seed == 0].set_index("config")

    def best(frame: pd.DataFrame) -> int | None:
        ok = np.ones(len(frame), dtype=bool)
        for c in spec.post.constraints:
            ok &= np.array([c.violation(v) <= 0 for v in frame[c.metric]])
        feasible = frame[ok]
        return None if feasible.empty else int((sign * feasible[goal]).idxmax())

    by_first, by_others = best(first), best(others)
    if by_first is None or by_others is None:
        print(f"  best feasible by {goal}: seed 0 picks {by_first}, other seeds {by_others}")
        return
    print(
        f"  best feasible by {goal}: seed 0 picks configuration {by_first} "
        f"({goal} {first.loc[by_first, goal]:.4f}; {others.loc[by_first, goal]:.4f} over the other "
        f"seeds), the other seeds' mean picks {by_others} ({others.loc[by_others, goal]:.4f})"
    )


if __name__ == "__main__":
    main()
