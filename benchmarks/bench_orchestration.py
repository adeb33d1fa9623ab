"""Orchestration cost of the search: the source's 20-trial wrapper search, three ways.

(c) fairsearch: ``run_search`` on a local Ray (lanes, the real path), Ray start shown apart;
(b) in-process Optuna: the same sampler and objective, ``study.optimize(n_jobs=concurrency)``;
(a) bare loop: the configurations (c) trained, one after another in this process, 1 thread
    (a proposal that repeats a completed configuration is told that result, not trained: see
    ``same_as`` in docs/schemas.md; the count is printed).

Reported: c/b with and without Ray start (goal <= 2.0), training inside the lanes against the
bare loop on the same configurations (goal <= 1.2x), the per-configuration overhead inside a
lane (``overhead_s`` of trials.parquet: lane time minus training, goal <= 50 ms) and the
largest number of configurations asked and untold (must be <= max_concurrent).

(e) start-up: ``fairsearch search`` as a whole process at ``search.population`` K = 1 and 10,
    with no Ray running (cold), with a ``fairsearch up --warm-lanes 0`` Ray (running) and with
    a ``fairsearch up`` Ray and its warm lanes (warm, the default of ``up``), against (b): seconds
    from process start to the first finished configuration and configurations per second while
    training (``search.seeds = 1`` as in (b)), each process against a (b) timed just before it;
    goal: a running ``fairsearch up`` Ray (warm) with K = 10 <= (b), cold <= 2 x (b).
(d) seeds in the loop: ``fairsearch search`` as a whole process (imports, validation, Ray
    start, search, shutdown), once per ``--seeds`` value in this run; each configuration trains
    its S seeds as one population, so S = 4 should cost little more than S = 1 (goal <= 1.3x).
    (a)-(c) train one seed per configuration, as (b) does.

Run: ``python benchmarks/bench_orchestration.py [--smoke-test] [--trials N] [--epochs E]
[--seeds 1 4] [--startup-only [--repeats R]]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from fairsearch.data import load_from_spec
from fairsearch.executor.ray_start import init_ray, shutdown_ray
from fairsearch.families import TrialSettings, train_and_evaluate
from fairsearch.search.engine import run_search
from fairsearch.search.recorder import Recorder
from fairsearch.search.study import load_run_study, make_sampler, study_storage
from fairsearch.spec.schema import dump_spec, load_spec
from fairsearch.spec.space import sample

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "search_spaces" / "wrapper_synthetic.yaml"


def bench_spec(trials: int, epochs: int, concurrency: int, seeds: int = 1):
    spec = load_spec(SPEC)
    return dataclasses.replace(
        spec, search=dataclasses.replace(spec.search, trials=trials, max_concurrent=concurrency,
                                         seeds=seeds),
        trial=dataclasses.replace(spec.trial, epochs=epochs))  # fmt: skip


def whole_process(spec, seeds: int, population: int = 1,
                  home: str | None = None) -> tuple[float, float, pd.DataFrame]:  # fmt: skip
    """``fairsearch search`` in a fresh process with ``search.seeds = seeds`` and
    ``search.population = population``: wall seconds, seconds from the process start to the
    first finished configuration, and the trials table it wrote. ``home``: the
    ``FAIRSEARCH_HOME`` whose ``fairsearch up`` Ray it joins (None: a folder with none: cold)."""
    spec = dataclasses.replace(spec, search=dataclasses.replace(spec.search, seeds=seeds,
                                                                population=population))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(dump_spec(spec))
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["FAIRSEARCH_HOME"] = home or str(Path(tmp) / "no-ray")
        t, start = time.perf_counter(), time.time()
        subprocess.run([sys.executable, "-m", "fairsearch.cli", "search", str(path), "--storage",
                        str(Path(tmp) / "runs"), "--quiet"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        wall = time.perf_counter() - t
        run_dir = next((Path(tmp) / "runs").iterdir())
        df = pd.read_parquet(run_dir / "trials.parquet")
        ended = df["ended_at"].map(lambda v: v.timestamp())
        lanes_file = run_dir / "lanes.json"
        if lanes_file.is_file():  # where the start-up went, seconds after the process started
            lanes = json.loads(lanes_file.read_text())
            began = lanes["started_epoch"] - start
            marks = {k: began + max(m[k] for m in lanes["start_marks"].values())
                     for k in ("trainable", "loop", "pulled")} if lanes["start_marks"] else {}  # fmt: skip
            df.attrs["phases"] = {"lanes began": began, **{f"slowest lane {k}": v
                                                          for k, v in marks.items()}}  # fmt: skip
            df.attrs["warm"] = int(lanes.get("warm", 0))
        return wall, float(ended.min() - start), df


#: The Rays (e) starts its whole processes on: none, ``fairsearch up --warm-lanes 0``, ``fairsearch up``.
STATES = ("cold", "running", "warm")


def startup(spec, populations: list[int], data, repeats: int = 1,
            states: tuple[str, ...] = STATES) -> None:
    """(e) the whole process, cold, with a running ``fairsearch up --warm-lanes 0`` Ray and with
    a running ``fairsearch up`` Ray and its warm lanes (the default), at each K.

    Each process is compared with an in-process Optuna loop (b) timed just before it, so that
    both see the machine in the same state (its speed moves by a quarter within minutes); with
    ``repeats`` pairs per case the median ratio is shown, with the spread. Before each pair on
    a ``fairsearch up`` Ray the bench waits until its warm lanes have imported (a search
    replaces the ones it used, and they import for seconds after it): each pair is then a
    search on a settled Ray, and (b) does not share the CPUs with their imports."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FAIRSEARCH_HOME": home}
        for state in states:
            if state != "cold":
                up = ["up"] if state == "warm" else ["up", "--warm-lanes", "0"]
                subprocess.run([sys.executable, "-m", "fairsearch.cli", *up], cwd=ROOT, env=env,
                               check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            try:
                for k in populations:
                    runs = []
                    for _ in range(repeats):
                        if state == "warm":
                            _wait_for_warm_lanes(env)
                        b = in_process(spec, data)
                        run = _startup_run(spec, k, None if state == "cold" else home)
                        runs.append({**run, "b": b, "ratio": run["wall"] / b})
                    runs.sort(key=lambda r: r["ratio"])
                    run = runs[len(runs) // 2]
                    spread = (f" (median of {repeats}; {runs[0]['ratio']:.2f} to "
                              f"{runs[-1]['ratio']:.2f} x)" if repeats > 1 else "")  # fmt: skip
                    print(f"(e) whole process, {state:<7} Ray, K={k:<3} {run['wall']:6.2f} s = "
                          f"{run['ratio']:5.2f} x (b) = {run['b']:.2f} s timed just before"
                          f"{spread}; first configuration finished {run['first']:5.2f} s after "
                          f"the process started; {run['rate']:6.1f} configurations/s while "
                          f"training; {run['done']}/{run['all']} completed", flush=True)  # fmt: skip
                    if run["phases"]:
                        print(f"    {run['warm']} warm lanes; start-up, seconds after the process"
                              " started: " + "; ".join(
                                  f"{k} {v:.2f}" for k, v in run["phases"].items()), flush=True)  # fmt: skip
            finally:
                if state != "cold":
                    subprocess.run([sys.executable, "-m", "fairsearch.cli", "down"], cwd=ROOT,
                                   env=env, stdout=subprocess.DEVNULL)  # fmt: skip


#: Joins the ``fairsearch up`` Ray and waits until every warm lane has imported what it needs.
_SETTLE = """
import contextlib
from fairsearch.executor.head import prepare_environment
prepare_environment()  # the head's auth mode, before Ray is imported
import ray
from fairsearch.executor import warm
from fairsearch.executor.ray_start import init_ray, shutdown_ray
init_ray(None)
refs = []
for name in warm._host_names():
    with contextlib.suppress(Exception):
        refs.append(ray.get_actor(name, namespace=warm.NAMESPACE).__ray_ready__.remote())
ray.wait(refs, num_returns=len(refs), timeout=120)
shutdown_ray()
"""


def _wait_for_warm_lanes(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-c", _SETTLE], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _startup_run(spec, k: int, home: str | None) -> dict:
    wall, first, df = whole_process(spec, 1, k, home)
    done = df[df["status"] == "completed"]
    start = done["started_at"].map(lambda v: v.timestamp()).min()
    end = done["ended_at"].map(lambda v: v.timestamp()).max()
    return {"wall": wall, "first": first, "rate": len(done) / max(end - start, 1e-9),
            "done": len(done), "all": len(df), "phases": df.attrs.get("phases", {}),
            "warm": df.attrs.get("warm", 0)}  # fmt: skip


def seeds_in_the_loop(spec, values: list[int]) -> None:
    walls = {}
    for s in values:
        wall, _, df = whole_process(spec, s)
        walls[s] = wall
        done = df[df["status"] == "completed"]
        print(f"(d) fairsearch search, search.seeds={s}: {wall:6.2f} s whole process, "
              f"{len(done)}/{len(df)} completed, training summed {df['train_s'].sum():.2f} s")
    base = walls[values[0]]
    for s in values[1:]:
        print(f"    whole process seeds={s} / seeds={values[0]}     {walls[s] / base:7.2f}   "
              "(goal <= 1.3 for 4 / 1)")  # fmt: skip


def bare(spec, data, configs: list[dict]) -> float:
    settings = TrialSettings(epochs=spec.trial.epochs, batch_size=spec.trial.batch_size,
                             seed=spec.search.seed)  # fmt: skip
    train_and_evaluate(spec.model, configs[0], data, settings, lambda r: None)  # warm-up, untimed
    t = time.perf_counter()
    for c in configs:
        train_and_evaluate(spec.model, c, data, settings, lambda r: None)
    return time.perf_counter() - t


def _bare_share(spec, configs: list[dict]) -> float:
    """One process of :func:`bare_parallel`: 1 torch thread, its share of the configurations."""
    import torch

    torch.set_num_threads(1)
    return bare(spec, load_from_spec(spec.data), configs)


def bare_parallel(spec, configs: list[dict], processes: int) -> float:
    """The bare loop in ``processes`` processes at once (each with every ``processes``-th
    configuration): the baseline of lanes that train side by side on the same cores. Returns
    the sum of the processes' training time, comparable to the lanes' sum of ``train_s``."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        shares = [pool.submit(_bare_share, spec, configs[i::processes]) for i in range(processes)]
        return float(sum(f.result() for f in shares))


def in_process(spec, data) -> float:
    settings = TrialSettings(epochs=spec.trial.epochs, batch_size=spec.trial.batch_size,
                             seed=spec.search.seed)  # fmt: skip
    names = [o.metric for o in spec.objectives]

    def objective(trial):
        m = train_and_evaluate(spec.model, sample(trial, spec.space), data, settings,
                               lambda r: None)  # fmt: skip
        return tuple(m[n] for n in names)

    study = optuna.create_study(
        directions=[o.direction for o in spec.objectives],
        sampler=make_sampler(spec.search.algorithm, spec.search.seed, spec.search.trials,
                             max_concurrent=spec.search.max_concurrent))  # fmt: skip
    t = time.perf_counter()
    study.optimize(objective, n_trials=spec.search.trials, n_jobs=spec.search.max_concurrent)
    return time.perf_counter() - t


def _time_driver() -> dict[str, list[float]]:
    """Time the driver's Optuna calls (ask, tell on the study journal) inside ``overhead_s``."""
    from fairsearch.search import recorder

    spent: dict[str, list[float]] = {"ask": [], "tell": []}
    for name in spent:
        original = getattr(recorder.Recorder, name)

        def timed(self, *a, _original=original, _name=name, **k):
            t = time.perf_counter()
            try:
                return _original(self, *a, **k)
            finally:
                spent[_name].append(time.perf_counter() - t)

        setattr(recorder.Recorder, name, timed)
    return spent


def driver_cost(spec, kind: str) -> tuple[float, float]:
    """Mean ms of the recorder's ask and tell over the search's budget, no training, on a
    study journal or on SQLite (the study file of earlier versions), as the driver does them."""
    asks, tells = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("study.journal" if kind == "journal" else "study.db")
        study = optuna.create_study(
            study_name=spec.name, storage=study_storage(path),
            directions=[o.direction for o in spec.objectives],
            sampler=make_sampler(spec.search.algorithm, spec.search.seed, spec.search.trials,
                                 max_concurrent=spec.search.max_concurrent))  # fmt: skip
        rec = Recorder(study, spec, Path(tmp))
        rng = np.random.default_rng(0)
        pending = []
        while not rec.finished():
            while len(pending) < spec.search.max_concurrent and rec.remaining() > 0:
                t = time.perf_counter()
                pending.append(rec.ask())
                asks.append(time.perf_counter() - t)
            item = pending.pop(0)
            metrics = {o.metric: float(rng.random()) for o in spec.objectives}
            history = [{"epoch": e, "loss": float(rng.random())} for e in range(spec.trial.epochs)]
            t = time.perf_counter()
            rec.tell(0, {"key": item["key"], "status": "completed", "metrics": metrics,
                         "history": history, "started_at": 0.0, "ended_at": 1.0})  # fmt: skip
            tells.append(time.perf_counter() - t)
    return 1e3 * float(np.mean(asks)), 1e3 * float(np.mean(tells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true",
                        help="4 trials, 1 epoch; (e) at the first --populations value, warm")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's (30)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4],
                        help="search.seeds values timed as whole processes (first = baseline)")
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 10],
                        help="search.population values of (e), cold and with a running Ray")
    parser.add_argument("--startup-only", action="store_true",
                        help="only (b) and (e): the start-up comparison")
    parser.add_argument("--repeats", type=int, default=1,
                        help="pairs of (b) and (e) per case of (e); the median ratio is shown")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    states = STATES
    if args.smoke_test:  # (e) at one K on the default of `up` (warm) shows each of its lines;
        args.populations = args.populations[:1]  # one search.seeds value runs the whole process
        args.seeds = args.seeds[:1]  # with no Ray running, as (e)'s cold case does
        states = ("warm",)
    spec = bench_spec(4 if args.smoke_test else args.trials,
                      1 if args.smoke_test else (args.epochs or load_spec(SPEC).trial.epochs),
                      args.concurrency)  # fmt: skip
    os.environ.pop("RAY_ADDRESS", None)
    print(f"{spec.search.trials} trials x {spec.trial.epochs} epochs, {spec.search.algorithm}, "
          f"concurrency {spec.search.max_concurrent}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.startup_only:
        import torch

        torch.set_num_threads(1)
        startup(spec, args.populations, load_from_spec(spec.data), max(args.repeats, 1), states)
        return
    driver = _time_driver()
    t = time.perf_counter()
    init_ray()
    ray_start = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run_dir = run_search(spec, storage=tmp, quiet=True)
        search = time.perf_counter() - t
        df = pd.read_parquet(run_dir / "trials.parquet").sort_values("number")
        study = load_run_study(run_dir, spec.name)
        peak = study.user_attrs.get("max_untold")
        repeats = int(df["same_as"].notna().sum())  # told an earlier result, not trained
        trained = df[df["same_as"].isna()]
        configs = [{p.name: row[f"param.{p.name}"] for p in spec.space
                    if not pd.isna(row[f"param.{p.name}"])} for _, row in trained.iterrows()]  # fmt: skip
        first = (df["started_at"].min() - pd.Timestamp(time.time() - search, unit="s", tz="UTC"))
    t = time.perf_counter()
    shutdown_ray()
    ray_stop = time.perf_counter() - t
    import torch

    torch.set_num_threads(1)  # as a 1-CPU lane does
    data = load_from_spec(spec.data)
    a = bare(spec, data, configs)
    a2 = bare_parallel(spec, configs, spec.search.max_concurrent)
    b = in_process(spec, data)
    c_run, c_all = search, ray_start + search + ray_stop
    train_sum = float(df["train_s"].sum())
    over = df["overhead_s"]
    print(f"(a) bare loop, the {len(configs)} configurations (c) trained  {a:7.2f} s  (in "
          f"{spec.search.max_concurrent} "
          f"processes at once: {a2:.2f} s of training summed)")
    print(f"(b) in-process Optuna (n_jobs={spec.search.max_concurrent})   {b:7.2f} s")
    print(f"(c) fairsearch run_search            {c_run:7.2f} s  (Ray start {ray_start:.2f} s,"
          f" Ray shutdown {ray_stop:.2f} s; first configuration started "
          f"{first.total_seconds():.2f} s into the search)")  # fmt: skip
    print(f"    c/b without Ray start/stop        {c_run / b:7.2f}   (goal <= 2.0)")
    print(f"    c/b with Ray start/stop           {c_all / b:7.2f}   (goal <= 2.0)")
    print(f"    training in lanes / bare loop     {train_sum / a:7.2f}   (sum of train_s "
          f"{train_sum:.2f} s; goal <= 1.2); / the same loop in {spec.search.max_concurrent} "
          f"processes at once {train_sum / a2:.2f}")  # fmt: skip
    print(f"    overhead per configuration        median {1e3 * over.median():.1f} ms, "
          f"mean {1e3 * over.mean():.1f} ms, max {1e3 * over.max():.1f} ms (goal <= 50 ms); "
          f"of it the driver's Optuna ask {1e3 * np.mean(driver['ask']):.1f} ms + tell "
          f"{1e3 * np.mean(driver['tell']):.1f} ms (study journal)")
    journal, sqlite = driver_cost(spec, "journal"), driver_cost(spec, "sqlite")
    print(f"    driver's ask + tell alone (no training): journal {sum(journal):.1f} ms, SQLite "
          f"{sum(sqlite):.1f} ms per configuration (SQLite / journal {sum(sqlite) / sum(journal):.1f})")
    print(f"    completed {int((df['status'] == 'completed').sum())}/{spec.search.trials}, "
          f"largest asked-and-untold {peak} (max_concurrent {spec.search.max_concurrent}), "
          f"lanes used {sorted(df['lane'].dropna().astype(int).unique().tolist())}, "
          f"{repeats} proposals repeated a completed configuration (told its result, not "
          f"trained; (b) trains every proposal)")  # fmt: skip
    seeds_in_the_loop(spec, args.seeds)
    startup(spec, args.populations, data, states=states)


if __name__ == "__main__":
    main()
