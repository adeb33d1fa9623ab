"""What a member stopped by successive halving costs the rest of its batched population.

A population of ``--members`` members trains for ``--epochs`` epochs; all but ``--keep`` of them
are stopped at the end of the first epoch (their epoch report raises ``MemberStopped``, as a
rung of ``search.halving`` does). Each population trains two ways in one run, the order flipping
from one repeat to the next: the stopped members leave the batch at the end of that epoch (what
training does), or they stay frozen in it (``keep_active`` turned off here: no more updates, but
their slices still ride in every forward and backward pass, as before). Printed per family: wall
and CPU seconds each way, their ratio, and the largest difference between the two ways in a
kept member's parameters (0 when leaving changes nothing for the members that go on).

For the wrapper, the main job's kind of batched MLP on UCI Adult's 45,222 complete rows (the
``adult_eo`` wrapper, 32 hidden units, batch 512); for the translator, the main job's names
embeddings with a CKA term (batched with ``model.batched: always``). One torch thread, as a
1-CPU lane trains.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_stopped_members.py [--members 8 --keep 2 --epochs 8 --repeats 2]
    python benchmarks/bench_stopped_members.py --smoke-test
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairsearch.data import load_from_spec, split_train_val
from fairsearch.families.translator import Translator, _population
from fairsearch.families.wrapper import population as wrapper_population
from fairsearch.families.wrapper.population import MemberSpec, fit_wrapper_population
from fairsearch.nets import MemberStopped, build_mlp
from fairsearch.spec.schema import load_spec

ROOT = Path(__file__).resolve().parents[1]


def _stop_after_first_epoch(record: Any) -> None:
    raise MemberStopped(0)


def _wrapper(members: int, keep: int, epochs: int, rows: int | None) -> Callable[[], list[Any]]:
    spec = load_spec(ROOT / "search_spaces" / "adult_eo.yaml")
    data = load_from_spec(spec.data).subset("train")
    X, y, q = data.X[:rows], data.y[:rows], data.q[:rows]

    def fit() -> list[Any]:
        specs = []
        for s in range(members):
            torch.manual_seed(s)
            module = build_mlp(X.shape[1], 2, "32", "relu")
            stop = None if s < keep else _stop_after_first_epoch
            specs.append(MemberSpec(module=module, seed=s, mu=0.5 + s, lr=3e-3, on_epoch_end=stop))
        out = fit_wrapper_population(specs, X, y, q=q, task="classification", epochs=epochs,
                                     batch_size=512, device="cpu", criterion="separation")  # fmt: skip
        return [w.module.state_dict() for w in out[:keep]]

    return fit


def _translator(members: int, keep: int, epochs: int, rows: int | None) -> Callable[[], list[Any]]:
    spec = load_spec(ROOT / "search_spaces" / "names_translator.yaml")
    train, val = split_train_val(load_from_spec(spec.data), spec.search.seed)
    E, y, q = train.X[:rows], train.y[:rows], train.q[:rows]
    base = dict(fairness="cka", bottleneck="60", epochs=epochs, batch_size=128, probe_every=0)

    def fit() -> list[Any]:
        trs = [Translator(**base, seed=s, w_fair=0.5 + s, lr=1e-3) for s in range(members)]
        reports = [None if s < keep else _stop_after_first_epoch for s in range(members)]
        out = _population.fit_translator_population(trs, E, y, q=q, E_val=val.X, y_val=val.y,
                                                    q_val=val.q, reports=reports)  # fmt: skip
        return [t.net_.state_dict() for t in out[:keep]]

    return fit


def _timed(fit: Callable[[], list[Any]], *, leave: bool) -> tuple[float, float, list[Any]]:
    keeps = (wrapper_population._Population._keep_active, _population._PopulationLoop.keep_active)
    if not leave:  # the stopped members stay frozen in the batch
        wrapper_population._Population._keep_active = lambda self, *a: None  # type: ignore[method-assign]
        _population._PopulationLoop.keep_active = lambda self: None  # type: ignore[method-assign]
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        out = fit()
        return time.perf_counter() - w0, time.process_time() - c0, out
    finally:
        wrapper_population._Population._keep_active, _population._PopulationLoop.keep_active = keeps


def _largest_difference(a: list[Any], b: list[Any]) -> float:
    return max(float((x[k] - y[k]).abs().max()) for x, y in zip(a, b, strict=True) for k in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--keep", type=int, default=2, help="members not stopped")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--smoke-test", action="store_true", help="4 members, 2 epochs, 600 rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    members, keep, epochs, repeats, rows = args.members, args.keep, args.epochs, args.repeats, None
    if args.smoke_test:
        members, keep, epochs, repeats, rows = 4, 2, 2, 1, 600
    print(f"{members} members, {keep} trained to epoch {epochs}, the others stopped after "
          f"epoch 1; {repeats} repeat(s) each way; {torch.get_num_threads()} torch thread(s)")
    for name, build in (("wrapper", _wrapper), ("translator", _translator)):
        build(members, keep, 1, rows)()  # warm-up: first-use imports and allocations
        fit = build(members, keep, epochs, rows)
        times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        outs: dict[bool, list[Any]] = {}
        for r in range(repeats):
            for leave in ((True, False) if r % 2 == 0 else (False, True)):
                wall, cpu, outs[leave] = _timed(fit, leave=leave)
                times[leave].append((wall, cpu))
        (wl, cl), (wf, cf) = (np.mean(times[k], axis=0) for k in (True, False))
        print(f"{name:<10}  frozen in the batch {wf:6.1f} s wall {cf:6.1f} s CPU | leave the "
              f"batch {wl:6.1f} s wall {cl:6.1f} s CPU | ratio x{wf / wl:.2f} wall, x{cf / cl:.2f} "
              f"CPU | kept members' largest parameter difference "
              f"{_largest_difference(outs[True], outs[False]):.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
