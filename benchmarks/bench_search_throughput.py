"""The main job's search stage as a whole process: this checkout against an earlier revision.

Runs ``fairsearch search search_spaces/names_translator.yaml`` (its own Ray on 127.0.0.1, its
lanes as Ray Train runs, every seed's leak objective) once per way, one after another in this one
run: the revision ``--baseline`` (a detached ``git worktree`` of it, imported through
``PYTHONPATH``), this checkout training each configuration's seeds member by member (the CPU
default), and with ``--batched`` this checkout with ``model.batched: always``. Each way's
search has the same spec and ``--trials``. From its ``trials.parquet`` it prints the
configuration-seeds trained (completed trials x seeds), the whole process's wall seconds, the
configuration-seeds per second over that wall time and over the search's own span (first start
to last end, without Ray's start), and each way's ratio to the baseline.

    python benchmarks/bench_search_throughput.py [--baseline 5c250ca] [--trials 10] [--batched]

With ``--whole``, each revision runs ``make run`` instead: the whole ``fairsearch run`` of its
own ``names_translator.yaml`` (its own trials, every stage from the search to the report), and
the benchmark prints each way's trials, stage seconds, wall seconds and verdict, and the ratio
of this checkout's wall time to the baseline's.

    python benchmarks/bench_search_throughput.py --whole [--baseline 5c250ca]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEC = Path("search_spaces") / "names_translator.yaml"
#: The revision before the translator's search got cheaper (fresh probe at every epoch, the
#: linear guard on the full outputs, the objective's MLP over the audit's whole grid).
BASELINE = "5c250ca"


def _worktree(rev: str, where: Path) -> Path:
    """A detached checkout of ``rev`` at ``where`` (removed again by :func:`_drop`)."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(where), rev],
                   check=True, capture_output=True)  # fmt: skip
    return where


def _drop(where: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)],
                   check=False, capture_output=True)  # fmt: skip


def _timed(tree: Path, command: str, *args: str) -> float:
    """Wall seconds of one whole ``fairsearch COMMAND ARGS --quiet`` process of ``tree``'s code
    (imported through ``PYTHONPATH``, one thread, run in ``tree``)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "from fairsearch.cli import entry; entry()", command, *args,
           "--quiet"]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"fairsearch {command} failed in {tree}:\n{done.stderr[-3000:]}")
    return wall


def search(tree: Path, storage: Path, *, trials: int, batched: bool) -> dict[str, Any]:
    """One whole ``fairsearch search`` process of ``tree``'s code on the main job's spec."""
    raw = yaml.safe_load((tree / SPEC).read_text())
    raw["search"]["trials"] = trials
    if batched:
        raw["model"] = {**raw["model"], "batched": "always"}
    spec = storage / "spec.yaml"
    storage.mkdir(parents=True)
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    wall = _timed(tree, "search", str(spec), "--storage", str(storage / "runs"))
    table = pd.read_parquet(next((storage / "runs").glob("*/trials.parquet")))
    ok = table[table["status"] == "completed"]
    span = (pd.to_datetime(table["ended_at"]).max() - pd.to_datetime(table["started_at"]).min()).total_seconds()
    return {"trials": len(ok), "config_seeds": int(ok["n_seeds"].sum()), "wall": wall,
            "span": span, "train_s": float(ok["train_s"].sum())}


def whole_run(tree: Path, storage: Path) -> dict[str, Any]:
    """One whole ``fairsearch run`` of ``tree``'s code on ``tree``'s own main-job spec, as
    ``make run`` starts it."""
    storage.mkdir(parents=True)
    wall = _timed(tree, "run", str(SPEC), "--storage", str(storage))
    run = next(storage.glob("*/trials.parquet")).parent
    table = pd.read_parquet(run / "trials.parquet")
    verdict = json.loads((run / "verdict.json").read_text())
    f1 = next((o for o in verdict.get("objectives") or [] if o.get("metric") == "control_f1"), {})
    leak = verdict.get("leak") or {}
    return {"trials": int((table["status"] == "completed").sum()), "wall": wall,
            "stages": json.loads((run / "stages.json").read_text()),
            "verdict": f"{str(verdict.get('status')).upper()} #{verdict.get('number')}",
            "test_f1": f1.get("test_mean"), "audit": leak.get("value")}


def _whole(args: argparse.Namespace, tmp: Path) -> None:
    ways = [(f"baseline {args.baseline}", _worktree(args.baseline, tmp / "base")),
            ("this checkout", ROOT)]
    print(f"make run ({SPEC}, each revision's own spec), whole process on a local Ray, "
          f"{os.cpu_count()} CPUs", flush=True)
    results = {}
    try:
        for i, (label, tree) in enumerate(ways):
            results[label] = r = whole_run(tree, tmp / f"run{i}")
            stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stages"].items())
            scores = ("" if r["test_f1"] is None else
                      f", test control F1 {r['test_f1']:.3f}, audit worst case {r['audit']:.3f}")
            print(f"  {label:<24} {r['trials']:3d} trials in {r['wall']:6.1f} s wall "
                  f"({stages}); {r['verdict']}{scores}", flush=True)
    finally:
        _drop(tmp / "base")
    first, last = results.values()
    print(f"this checkout: {last['trials']} trials in {last['wall'] / first['wall']:.2f}x the "
          f"baseline's wall time ({first['trials']} trials)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default=BASELINE, help="the revision to compare against")
    ap.add_argument("--trials", type=int, default=10, help="trials of each search (spec: 10)")
    ap.add_argument("--batched", action="store_true", help="also this checkout batched")
    ap.add_argument("--smoke-test", action="store_true", help="2 trials, this checkout only")
    ap.add_argument("--whole", action="store_true",
                    help="each revision's whole make run (its own spec's trials), not the search")
    args = ap.parse_args()
    if args.whole:
        with tempfile.TemporaryDirectory(prefix="bench_make_run_") as tmp:
            _whole(args, Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
        ways: list[tuple[str, Path, bool]] = []
        if not args.smoke_test:
            ways.append((f"baseline {args.baseline}", _worktree(args.baseline, Path(tmp) / "base"), False))
        ways.append(("this checkout", ROOT, False))
        if args.batched:
            ways.append(("this checkout, batched", ROOT, True))
        trials = 2 if args.smoke_test else args.trials
        print(f"{SPEC}: search stage, {trials} trials, whole process on a local Ray, "
              f"{os.cpu_count()} CPUs", flush=True)
        results = {}
        try:
            for i, (label, tree, batched) in enumerate(ways):
                results[label] = r = search(tree, Path(tmp) / f"run{i}", trials=trials, batched=batched)
                print(f"  {label:<24} {r['trials']:3d} trials, {r['config_seeds']:3d} config-seeds "
                      f"in {r['wall']:6.1f} s wall ({r['span']:6.1f} s of search): "
                      f"{r['config_seeds'] / r['wall']:.3f} config-seeds/s whole process, "
                      f"{r['config_seeds'] / r['span']:.3f} over the search", flush=True)
        finally:
            if not args.smoke_test:
                _drop(Path(tmp) / "base")
        first = next(iter(results.values()))
        for label, r in list(results.items())[1:]:
            whole = (r["config_seeds"] / r["wall"]) / (first["config_seeds"] / first["wall"])
            own = (r["config_seeds"] / r["span"]) / (first["config_seeds"] / first["span"])
            print(f"{label}: {whole:.2f}x the baseline's config-seeds/s whole process, "
                  f"{own:.2f}x over the search")


if __name__ == "__main__":
    main()
