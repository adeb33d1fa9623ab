"""Time and peak memory of the exact blockwise CKA metric against n (and the dense path at small n).

Each measurement runs in a fresh subprocess so that peak RSS belongs to that one computation.
Run: .venv/bin/python benchmarks/bench_dependence.py [--sizes 5000 20000 50000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from fairsearch.measures.dependence import cka, cka_score
n, mode = int(sys.argv[1]), sys.argv[2]
torch.set_num_threads(int(sys.argv[3]))
rng = np.random.default_rng(0)
x = rng.normal(size=(n, 1)); q = np.tanh(x) + rng.normal(size=(n, 1))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
value = float(cka(torch.as_tensor(x), torch.as_tensor(q))) if mode == "dense" else cka_score(x, q)
sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "mode": mode, "seconds": sec, "peak_mib": (peak - base) / 1024, "cka": value}))
"""


def measure(n: int, mode: str, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), mode, str(threads)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--dense-max", type=int, default=5000, help="largest n for the dense path")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        if n <= args.dense_max:
            rows.append(measure(n, "dense", args.threads))
        rows.append(measure(n, "blockwise", args.threads))
    print(f"{'n':>7} {'path':>10} {'seconds':>9} {'peak MiB':>9} {'CKA':>7}")
    for r in rows:
        print(f"{r['n']:>7} {r['mode']:>10} {r['seconds']:>9.2f} {r['peak_mib']:>9.1f} {r['cka']:>7.4f}")
    block = {r["n"]: r for r in rows if r["mode"] == "blockwise"}
    dense = {r["n"]: r for r in rows if r["mode"] == "dense"}
    for n in sorted(set(block) & set(dense)):
        print(
            f"n={n}: blockwise/dense time {block[n]['seconds'] / dense[n]['seconds']:.2f}x, "
            f"memory {block[n]['peak_mib'] / max(dense[n]['peak_mib'], 1e-9):.3f}x"
        )
    ns = sorted(block)
    if len(ns) > 1:
        a, b = ns[0], ns[-1]
        print(
            f"n {a} -> {b} ({b / a:.0f}x): time {block[b]['seconds'] / block[a]['seconds']:.1f}x "
            f"(n^2 would be {(b / a) ** 2:.0f}x), memory {block[b]['peak_mib'] / max(block[a]['peak_mib'], 1e-9):.1f}x"
        )
    # n x n float64 would need this much for one kernel matrix:
    print("dense float64 kernel matrix at largest n would need "
          f"{ns[-1] ** 2 * 8 / 2**30:.1f} GiB (x3 matrices for CKA)")


if __name__ == "__main__":
    main()
