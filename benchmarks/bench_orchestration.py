"""Orchestration overhead of the search: the source's 20-trial wrapper search three ways.

(a) bare loop: the 20 configurations trained one after another by ``train_and_evaluate``;
(b) in-process Optuna: the same sampler and objective, ``study.optimize(n_jobs=concurrency)``;
(c) fairsearch: Ray Tune + Ray Train (``run_search``), Ray start-up included and shown apart.

Each (c) variant is run with a different ``configs_per_run`` (1 = one Train run per
configuration; ``auto`` = packed). Run: ``python benchmarks/bench_orchestration.py [--smoke-test]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd

from fairsearch.data import load_from_spec
from fairsearch.families import TrialSettings, train_and_evaluate
from fairsearch.search.engine import init_ray, run_search
from fairsearch.search.recorder import make_sampler
from fairsearch.spec.schema import parse_spec
from fairsearch.spec.space import sample


def make_spec(trials: int, epochs: int, concurrency: int, per_run: int | str):
    return parse_spec({
        "name": "bench",
        "data": {"name": "synthetic_regression", "n": 800, "n_train": 600, "n_val": 200, "seed": 0},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": "wrapper_mlp.yaml",
        "search": {"algorithm": "random", "trials": trials, "max_concurrent": concurrency,
                   "seed": 0, "configs_per_run": per_run},
        "trial": {"epochs": epochs, "batch_size": 128},
    })  # fmt: skip


def bare(spec, data) -> tuple[float, list[dict]]:
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=make_sampler("random", 0))  # fmt: skip
    configs = [sample(study.ask(), spec.space) for _ in range(spec.search.trials)]
    settings = TrialSettings(epochs=spec.trial.epochs, batch_size=spec.trial.batch_size)
    t = time.perf_counter()
    for c in configs:
        train_and_evaluate("wrapper", c, data, settings, lambda r: None)
    return time.perf_counter() - t, configs


def in_process(spec, data) -> float:
    settings = TrialSettings(epochs=spec.trial.epochs, batch_size=spec.trial.batch_size)

    def objective(trial):
        m = train_and_evaluate("wrapper", sample(trial, spec.space), data, settings, lambda r: None)
        return m["mse"], m["cka"]

    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=make_sampler("random", 0))  # fmt: skip
    t = time.perf_counter()
    study.optimize(objective, n_trials=spec.search.trials, n_jobs=spec.search.max_concurrent)
    return time.perf_counter() - t


def fairsearch_run(spec, storage: Path) -> dict:
    t, t_wall = time.perf_counter(), time.time()
    run_dir = run_search(spec, storage=storage, quiet=True)
    wall = time.perf_counter() - t
    df = pd.read_parquet(run_dir / "trials.parquet")
    t0 = df["started_at"].min().timestamp()
    timing = [json.loads(s) for s in _timings(run_dir)]
    run_start = min(x["run_started_at"] for x in timing)
    worker_start = [x["worker_started_at"] - x["run_started_at"] for x in timing]
    return {
        "wall_s": wall,
        "train_s_sum": float(df["duration_s"].sum()),
        "tune_start_s": run_start - t_wall,
        "train_start_s_mean": sum(worker_start) / len(worker_start),
        "first_config_after_run_start_s": t0 - run_start,
        "completed": int((df["status"] == "completed").sum()),
    }


def _timings(run_dir: Path) -> list[str]:
    study = optuna.load_study(study_name="bench", storage=f"sqlite:///{run_dir / 'study.db'}")
    seen, out = set(), []
    for t in study.trials:
        tm = t.user_attrs.get("timing")
        if tm and tm["run_started_at"] not in seen:
            seen.add(tm["run_started_at"])
            out.append(json.dumps(tm))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="4 trials, 3 epochs")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--per-run", nargs="*", default=["auto", "1"])
    args = parser.parse_args()
    trials, epochs = (4, 3) if args.smoke_test else (args.trials, args.epochs)
    import torch

    torch.set_num_threads(1)  # as each Ray Train worker does (one CPU per worker)
    spec = make_spec(trials, epochs, 2, "auto")
    data = load_from_spec(spec.data)
    a, _ = bare(spec, data)
    b = in_process(spec, data)
    print(f"(a) bare loop            {a:7.2f} s  ({trials} trials x {epochs} epochs)")
    print(f"(b) in-process Optuna    {b:7.2f} s  (n_jobs=2)")
    t = time.perf_counter()
    init_ray()
    ray_start = time.perf_counter() - t
    print(f"    Ray start            {ray_start:7.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for per_run in args.per_run:
            per = per_run if per_run == "auto" else int(per_run)
            r = fairsearch_run(make_spec(trials, epochs, 2, per), Path(tmp))
            c = r["wall_s"] + ray_start
            print(
                f"(c) fairsearch per_run={per_run:<4} {c:7.2f} s  c/b={c / b:5.2f} c/a={c / a:5.2f}"
                f"  [search {r['wall_s']:.2f} s; first Tune trial after {r['tune_start_s']:.2f} s;"
                f" Train run start->worker {r['train_start_s_mean']:.2f}"
                f" s; sum of trial training {r['train_s_sum']:.2f} s; {r['completed']} completed]"
            )


if __name__ == "__main__":
    main()
