"""Every benchmark's ``--smoke-test`` runs to the end and prints its figures.

The benchmarks are how speed, memory and search quality are shown (benchmarks/README.md); this
keeps them runnable as the code under them changes. Nothing here checks a figure's value: only
that each figure is there. ``bench_autoscaling.py`` is left out (minutes; the same fake cluster
is exercised by tests/test_multinode.py), and so are ``bench_dependence.py`` (no smoke mode: it
times n up to 50k) and ``bench_search_throughput.py`` (whole search processes, one per revision).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# benchmark -> patterns its smoke-test output must contain
EXPECTED = {
    "bench_orchestration": [r"c/b with Ray start/stop\s+\d", r"completed 4/4",
                            r"largest asked-and-untold [12] \(max_concurrent 2\)",
                            r"overhead per configuration\s+median \d",
                            r"\(e\) whole process, warm +Ray, K=1 .* \d+/4 completed",
                            r"warm lanes; start-up, seconds after the process started"],
    "bench_search_quality": [r"wrapper random n=4 .* HV \d", r"wrapper tpe    n=4 .* HV \d",
                             r"max asked-untold [12] ", r"HV - random's, same seed"],
    "bench_objective_noise": [r"control_f1 +between \d", r"adversary_bacc +between \d",
                              r"rank corr\. seed 0 vs other seeds"],
    "bench_objective_grid": [r"original +\d\.\d+ \(mlp \d", r"objective grid - full grid: mean [-+]\d",
                             r"objective grid: sklearn and batched MLP values (equal|DIFFER)",
                             r"objective grid, sklearn +\d+\.\d CPU s .* \d\.\d\dx the full grid"],
    "bench_objective_folds": [r"original +\d\.\d+ +\| +\d\.\d+ +\| +\d\.\d+",
                              r"3 folds, fold seed 0 - 5 folds: mean [-+]\d",
                              r"3 folds, fold seed 0 +\d+\.\d CPU s .* \d\.\d\dx 5 folds"],
    "bench_search_objective": [r"one configuration trained in \d", r"old: logistic, MLP",
                               r"new: logistic, mlp, gbt, knn +\d", r"objective cost: x\d"],
    "bench_translator": [r"names_race4 +cka \d", r"names_race4 +adversarial \d", r"meets = "],
    "bench_translator_population": [r"member by member +\d+\.\d+ config-seeds/s",
                                    r"all: .* ratio x\d+\.\d+ wall clock, x\d+\.\d+ CPU time"],
    "bench_stopped_members": [r"wrapper +frozen in the batch +\d+\.\d s wall .* ratio x\d+\.\d+ wall",
                              r"translator +frozen in the batch .* largest parameter difference \d"],
    "bench_halving": [r"halving off +configurations tried \d", r"halving on +configurations tried \d",
                      r"fresh-seed control F1 on - off, same search seed: [-+]\d"],
    "bench_gpu_populations": [r"\(i\) +driver alone, K=4 +lanes=2: +\d+\.\d configurations/s",
                              r"\(ii\) +training alone, K=4 +S=1: +\d+\.\d configurations/s",
                              r"\(iii\) fairsearch search, K=4 .* \d+/12 completed",
                              r"\(iv\)  translator, 1 configurations x 2 seeds on \w+: member by "
                              r"member \d+\.\d+ config-seeds/s, batched \d+\.\d+"],
}  # fmt: skip


#: The benchmarks that start Ray (a local one, or `fairsearch search` processes that do).
ON_RAY = {"bench_gpu_populations", "bench_orchestration", "bench_search_quality"}


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.ray) if n in ON_RAY else n
                                  for n in sorted(EXPECTED)])
def test_benchmark_smoke_test_prints_its_figures(name: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    env.pop("RAY_ADDRESS", None)  # a benchmark that needs Ray starts its own, local one
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--smoke-test"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    missing = [p for p in EXPECTED[name] if not re.search(p, done.stdout)]
    assert not missing, f"{missing} not in:\n{done.stdout[-3000:]}"
