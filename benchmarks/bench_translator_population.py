"""The main job's search training, member by member against batched translator populations.

For each fairness kind of the main job's space (``search_spaces/names_translator.yaml``: linear
guard, CKA, quantized with no term of its own), one configuration drawn at random from the space
trains with ``--seeds`` seeds (one population, as a search lane trains a configuration), first
member by member (the contract's default ``fit_population``), then batched (the translator's,
with ``model.batched: always``);
the order flips from one configuration to the next, so drifting load on a shared machine weighs
on both. It prints, per configuration and over all, configuration-seeds trained per second (wall
clock, and per CPU second of this process) each way and their ratio, and the largest difference
between the two ways in a parameter and in a history value. Training only: the leak objective
evaluated after training (``train_population``) is the same either way. One torch thread, as a
1-CPU lane runs; with ``OMP_NUM_THREADS=1`` the fresh probes' BLAS does not spin extra
threads either, so CPU time is comparable on a shared machine.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_translator_population.py [--seeds 4] [--smoke-test]

``--device cuda`` times both ways on a GPU (``bench_gpu_populations.py`` runs it there as (iv)).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from fairsearch.data import load_from_spec, split_train_val
from fairsearch.families import Member, ModelFamily, TrialSettings, get_family
from fairsearch.spec.schema import load_spec
from fairsearch.spec.space import sample

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "search_spaces" / "names_translator.yaml"


def configurations(spec: Any, kinds: int, seed: int) -> list[dict[str, Any]]:
    """The first random configuration of each fairness kind of the space (at most ``kinds``)."""
    study = optuna.create_study(directions=[o.direction for o in spec.objectives],
                                sampler=optuna.samplers.RandomSampler(seed=seed))  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for _ in range(200):
        config = sample(study.ask(), spec.space)
        found.setdefault(str(config.get("fairness")), config)
        if len(found) >= kinds:
            break
    return list(found.values())


def _timed(fit: Any) -> tuple[float, float, list[Any], list[list[dict[str, float]]]]:
    """Wall and CPU seconds of ``fit(reports)``, its results and each member's history."""
    histories: list[list[dict[str, float]]] = []
    w0, c0 = time.perf_counter(), time.process_time()
    out = fit(histories)
    return time.perf_counter() - w0, time.process_time() - c0, out, histories


def _difference(a: list[Any], b: list[Any], ha: list[list[dict]], hb: list[list[dict]]
                ) -> tuple[float, float]:  # fmt: skip
    """Largest |difference| in a parameter and in a history value between two populations."""
    dp, dh = 0.0, 0.0
    for x, y in zip(a, b, strict=True):
        if isinstance(x, Exception) or isinstance(y, Exception):
            continue
        sx, sy = x.net_.state_dict(), y.net_.state_dict()
        dp = max(dp, max(float((sx[k] - sy[k]).abs().max()) for k in sx))
    for rx, ry in ((rx, ry) for hx, hy in zip(ha, hb, strict=True) for rx, ry in zip(hx, hy, strict=True)):
        vals = [abs(rx[k] - ry[k]) for k in rx if np.isfinite(rx[k]) and np.isfinite(ry[k])]
        dh = max(dh, *vals)
    return dp, dh


def _fit(family: ModelFamily, how: str, members: list[Member], train: Any, val: Any,
         settings: TrialSettings, histories: list[list[dict[str, float]]]) -> list[Any]:  # fmt: skip
    """``members`` trained member by member (the contract's default) or batched."""
    histories.extend([] for _ in members)
    if how == "alone":
        return ModelFamily.fit_population(family, members, train, val, settings,
                                          [h.append for h in histories])  # fmt: skip
    batched = dataclasses.replace(settings, model={**settings.model, "batched": "always"})
    return family.fit_population(members, train, val, batched, [h.append for h in histories])


def compare(*, seeds: int, epochs: int | None, kinds: int, sample_seed: int = 0,
            device: str = "cpu", log: Any = print) -> tuple[float, float, float, float]:
    """Train ``kinds`` configurations of the main job's space, ``seeds`` members each, member by
    member and batched on ``device``; print a line per configuration and return the totals
    (wall and CPU seconds member by member, then batched)."""
    spec = load_spec(SPEC)
    data = load_from_spec(spec.data)
    epochs = epochs or spec.trial.epochs
    configs = configurations(spec, kinds, sample_seed)
    family = get_family(spec.model)
    settings = TrialSettings(epochs=epochs, batch_size=spec.trial.batch_size, seed=0,
                             split_seed=spec.search.seed, model=dict(spec.model_args),
                             device=device)  # fmt: skip
    train, val = split_train_val(data, settings.split_seed)
    log(f"{spec.name}: {len(train.X)} train / {len(val.X)} val rows, d = {train.X.shape[1]}, "
        f"{epochs} epochs, {seeds} seeds a configuration, device {device}, "
        f"{torch.get_num_threads()} torch thread(s)")  # fmt: skip
    totals = {"alone": [0.0, 0.0], "batched": [0.0, 0.0]}
    for i, config in enumerate(configs):
        members = [Member(config, s) for s in range(seeds)]
        order = ("alone", "batched") if i % 2 == 0 else ("batched", "alone")
        runs = {how: _timed(lambda h, how=how, ms=members: _fit(family, how, ms, train, val, settings, h))
                for how in order}  # fmt: skip
        for how, (wall, cpu, _, _) in runs.items():
            totals[how][0] += wall
            totals[how][1] += cpu
        (wa, ca, oa, ha), (wb, cb, ob, hb) = runs["alone"], runs["batched"]
        dp, dh = _difference(oa, ob, ha, hb)
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in config.items()}
        log(f"  {shown}")
        log(f"    member by member {seeds / wa:6.3f} config-seeds/s ({wa:6.1f} s wall, "
            f"{ca:6.1f} s CPU) | batched {seeds / wb:6.3f} config-seeds/s ({wb:6.1f} s wall, "
            f"{cb:6.1f} s CPU) | ratio x{wa / wb:.2f} wall, x{ca / cb:.2f} CPU | largest "
            f"difference: parameter {dp:.1e}, history {dh:.1e}")  # fmt: skip
    (wa, ca), (wb, cb) = totals["alone"], totals["batched"]
    return wa, ca, wb, cb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="seeds per configuration (members)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--smoke-test", action="store_true", help="1 epoch, 2 seeds, 1 kind")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = 2 if args.smoke_test else args.seeds
    kinds = 1 if args.smoke_test else 3
    wa, ca, wb, cb = compare(seeds=seeds, epochs=1 if args.smoke_test else args.epochs,
                             kinds=kinds, sample_seed=args.sample_seed, device=args.device)  # fmt: skip
    n = seeds * kinds
    print(f"all: member by member {n / wa:.3f} config-seeds/s, batched {n / wb:.3f} "
          f"config-seeds/s: ratio x{wa / wb:.2f} wall clock, x{ca / cb:.2f} CPU time")  # fmt: skip


if __name__ == "__main__":
    main()
