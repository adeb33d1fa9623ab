"""The source's 30-epoch wrapper problem as populations on a GPU (or, without one, on the CPU).

Three figures, each in configurations per second of the source's trial (600 training rows, 30
epochs, batch 128), with K (``search.population``), S (``search.seeds``) and the GPU share of
a lane stated:

(i)   the driver alone: the recorder's asks and tells on the study journal, no training, at
      each K; the ceiling of any search however fast its lanes train;
(ii)  training alone: ``train_population`` of K members x S seeds in this process on the
      device, and the GPU memory each member adds (peak allocated, from K/2 to K members);
(iii) the real path: ``fairsearch search`` as a whole process on a local Ray, ``--lanes`` lanes
      of ``1 / lanes`` GPU each (fractional GPUs: one worker per lane), at each K: wall seconds
      and configurations per second while training (asks and tells included);
(iv)  the translator: the main job's configurations (``names_translator.yaml``), member by
      member against batched populations on the device (``bench_translator_population.py``),
      in configuration-seeds per second.

Goal (GPU): at least 200 configurations per second in (iii).

Run: ``python benchmarks/bench_gpu_populations.py [--smoke-test] [--trials N]
[--populations 16 64 256] [--seeds 1] [--lanes 4]``; on a lent GPU machine see
benchmarks/README.md (the payload) and run it with ``source .gpu/setup.sh`` first.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_orchestration import SPEC, whole_process  # noqa: E402 - the same whole-process runner
from bench_translator_population import compare  # noqa: E402 - the translator's populations

from fairsearch.data import load_from_spec  # noqa: E402
from fairsearch.families import Member, TrialSettings, train_population  # noqa: E402
from fairsearch.spec.schema import load_spec  # noqa: E402


def base_spec(trials: int, epochs: int | None):
    spec = load_spec(SPEC)
    trial = spec.trial if epochs is None else dataclasses.replace(spec.trial, epochs=epochs)
    return dataclasses.replace(spec, search=dataclasses.replace(spec.search, trials=trials),
                               trial=trial)  # fmt: skip


def driver_rate(spec, population: int, lanes: int) -> float:
    """(i) configurations per second of the recorder's asks and tells, no training."""
    import optuna

    from fairsearch.search.recorder import Recorder
    from fairsearch.search.study import make_sampler, study_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = dataclasses.replace(spec, search=dataclasses.replace(
        spec.search, population=population, max_concurrent=lanes))  # fmt: skip
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        study = optuna.create_study(
            study_name=spec.name, storage=study_storage(Path(tmp) / "study.journal"),
            directions=[o.direction for o in spec.objectives],
            sampler=make_sampler(spec.search.algorithm, spec.search.seed, spec.search.trials,
                                 max_concurrent=spec.search.max_concurrent))  # fmt: skip
        rec = Recorder(study, spec, Path(tmp))
        t = time.perf_counter()
        told = 0
        while not rec.finished():
            items = [item for _ in range(lanes) if (item := rec.ask(0)) is not None]
            for item in items:
                members = item.get("members") or [{"key": item["key"]}]
                result = {"key": item["key"], "status": "completed", "started_at": 0.0,
                          "ended_at": 1.0, "members": [
                              {"key": m["key"], "status": "completed",
                               "metrics": {o.metric: float(rng.random()) for o in spec.objectives}}
                              for m in members]}  # fmt: skip
                if "members" not in item:
                    result = {**result, **result.pop("members")[0]}
                rec.tell(0, result)
                told += len(members)
            rec.flush()
        elapsed = time.perf_counter() - t
        rec.close()
    return told / elapsed


def training_rate(spec, population: int, seeds: int, device: str) -> tuple[float, float | None]:
    """(ii) configurations per second of one population trained in this process, and the GPU
    memory one member adds (MiB; None on a CPU)."""
    import torch

    data = load_from_spec(spec.data)
    settings = TrialSettings(epochs=spec.trial.epochs, batch_size=spec.trial.batch_size,
                             device=device, split_seed=spec.search.seed)  # fmt: skip
    rng = np.random.default_rng(0)

    def members(k: int) -> list[Member]:
        return [Member({"mu": float(rng.uniform(0, 3)), "lr": float(10 ** rng.uniform(-3, -2)),
                        "sigma_f": 1.0, "sigma_q": 1.0}, s)
                for _ in range(k) for s in range(seeds)]  # fmt: skip

    def peak(k: int) -> tuple[float, float]:
        group = members(k)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        train_population(spec.model, group, data, settings, [lambda r: None] * len(group))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        used = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0
        return seconds, used

    peak(1)  # warm-up: kernels, allocator, the first optimizer step's imports
    half = max(1, population // 2)
    _, used_half = peak(half)
    seconds, used = peak(population)
    per_member = (used - used_half) / max(population - half, 1) if device.startswith("cuda") else None
    return population / seconds, per_member


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="a few configurations, 3 epochs")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's (30)")
    parser.add_argument("--populations", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seeds", type=int, default=1, help="S, seeds per configuration")
    parser.add_argument("--lanes", type=int, default=4, help="lanes, each 1/lanes of the GPU")
    parser.add_argument("--skip-search", action="store_true", help="(i), (ii) and (iv) only")
    parser.add_argument("--translator-seeds", type=int, default=4, help="(iv): members a configuration")
    args = parser.parse_args()
    import torch

    if args.smoke_test:
        args.trials, args.epochs, args.populations, args.lanes = 12, 3, [4], 2
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpus = torch.cuda.device_count()
    spec = base_spec(args.trials, args.epochs)
    name = torch.cuda.get_device_name(0) if gpus else "no GPU"
    print(f"{args.trials} configurations x {spec.trial.epochs} epochs, S={args.seeds}, "
          f"device {device} ({name}), torch {torch.__version__}", flush=True)
    for k in args.populations:
        print(f"(i)   driver alone, K={k:<4} lanes={args.lanes}: "
              f"{driver_rate(spec, k, args.lanes):8.1f} configurations/s (asks + tells)", flush=True)
    for k in args.populations:
        rate, mib = training_rate(spec, k, args.seeds, device)
        memory = f"; {mib:.2f} MiB of GPU memory per member" if mib is not None else ""
        print(f"(ii)  training alone, K={k:<4} S={args.seeds}: {rate:8.1f} configurations/s"
              f"{memory}", flush=True)
    translator(args.smoke_test, args.translator_seeds, device)
    if args.skip_search:
        return
    share = 1.0 / args.lanes if gpus else 0.0
    for k in args.populations:
        run = dataclasses.replace(
            spec, search=dataclasses.replace(spec.search, max_concurrent=args.lanes),
            trial=dataclasses.replace(spec.trial, gpus_per_worker=share))  # fmt: skip
        wall, first, df = whole_process(run, args.seeds, k)
        done = df[df["status"] == "completed"]
        start = done["started_at"].map(lambda v: v.timestamp()).min()
        end = done["ended_at"].map(lambda v: v.timestamp()).max()
        rate = len(done) / max(end - start, 1e-9)
        print(f"(iii) fairsearch search, K={k:<4} S={args.seeds} lanes={args.lanes} "
              f"GPU/lane={share:g}: {wall:7.2f} s whole process, first configuration at "
              f"{first:5.2f} s, {rate:8.1f} configurations/s while training, "
              f"{len(done)}/{len(df)} completed (goal on a GPU >= 200/s)", flush=True)


def translator(smoke: bool, seeds: int, device: str) -> None:
    """(iv) the translator's populations on ``device``, member by member against batched."""
    seeds, kinds = (2, 1) if smoke else (seeds, 3)
    wa, _, wb, _ = compare(seeds=seeds, epochs=1 if smoke else None, kinds=kinds, device=device,
                           log=lambda line: print(f"(iv)  {line}", flush=True))  # fmt: skip
    n = seeds * kinds
    print(f"(iv)  translator, {kinds} configurations x {seeds} seeds on {device}: member by member "
          f"{n / wa:.3f} config-seeds/s, batched {n / wb:.3f} config-seeds/s, ratio x{wa / wb:.2f}",
          flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
