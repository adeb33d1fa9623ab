"""The audit stage, old path against new, on the same run folder in one run.

Old: the audit as it was: every probe fitted on its own with scikit-learn (``--engine sklearn``),
every family on every fold seed, one unit after another.
New: the audit as ``fairsearch run`` runs it: ``--engine auto`` (batched probes on a GPU,
scikit-learn on a CPU), successive halving across families, and the units as Ray
tasks on a local Ray with this machine's CPUs (``--executor serial``: in this process).
Both read the folder's ``audit_inputs.npz`` and the spec's probes, with the same seed, folds and
bootstrap; nothing is written to the folder. The new path's Ray is started before its clock.

Prints, per representation: both worst-case headlines with their intervals, the family each
selected, the interval widths and their ratio, and the families halving gave one fold seed; the
resolution (shuffled-q control) of both; then both audit times, their ratio, and each audit's
time divided by the search stage's time from the folder's ``stages.json``.

    python benchmarks/bench_audit.py RUN_DIR            # a folder of `make run`
    python benchmarks/bench_audit.py --smoke-test       # a small synthetic folder (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from fairsearch.analysis.audit.leakage import headline, judge_leak
from fairsearch.analysis.audit.representations import audit_representations
from fairsearch.analysis.audit.split_probes import TransferSource
from fairsearch.analysis.audit.units import UnitStore
from fairsearch.probes.registry import PROBE_KINDS


def _inputs(run: Path) -> dict[str, np.ndarray]:
    path = run / "audit_inputs.npz"
    if not path.is_file():
        raise SystemExit(f"RUN_DIR must hold audit_inputs.npz (run the audit stage once), "
                         f"but {str(path)!r} does not exist")
    loaded = np.load(path, allow_pickle=False)
    return {k: loaded[k] for k in loaded.files}


def _probes(run: Path) -> tuple[str, ...]:
    spec = run / "spec.yaml"
    if not spec.is_file():
        return PROBE_KINDS
    post = (yaml.safe_load(spec.read_text()) or {}).get("post") or {}
    return tuple(post.get("probes") or PROBE_KINDS)


def _audit(data: dict[str, np.ndarray], probes: tuple[str, ...], engine: str, n_boot: int,
           halving: bool, executor: object = None, store: object = None
           ) -> tuple[pd.DataFrame, float]:
    reps = {k.removeprefix("rep:"): data[k] for k in data if k.startswith("rep:")}
    extras = {k.removeprefix("extra:"): data[k] for k in data if k.startswith("extra:")}
    transfer = None
    if "transfer_X" in data:
        labels = {k.removeprefix("transfer:"): data[k] for k in data if k.startswith("transfer:")}
        transfer = TransferSource(data["transfer_X"], labels)
    t = time.perf_counter()
    table = audit_representations(reps, data["q"], y=data.get("y"), extras=extras, probes=probes,
                                  transfer_source=transfer, n_boot=n_boot, seed=0,
                                  engine=engine, halving=halving,  # type: ignore[arg-type]
                                  executor=executor, store=store)  # type: ignore[arg-type]
    return table, time.perf_counter() - t


def _heads(table: pd.DataFrame) -> pd.DataFrame:
    wc = table[(table.probe == "worst_case") & (table.target == "q")]
    return wc.set_index("model")[["value", "ci_low", "ci_high", "selected"]]


def _smoke_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 160
    q, y = rng.integers(0, 2, n), rng.integers(0, 2, n)
    leak = rng.normal(size=(n, 6))
    leak[:, 0] += 1.5 * q
    leak[:, 1] += 1.5 * y
    np.savez(root / "audit_inputs.npz", q=q, y=y, **{"rep:original": leak,
             "rep:noise": rng.normal(size=(n, 6))})
    (root / "spec.yaml").write_text("post: {probes: [logistic, mlp, knn]}\n")
    (root / "stages.json").write_text(json.dumps({"search": 1.0}))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a run folder with audit_inputs.npz")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--smoke-test", action="store_true", help="a small synthetic folder")
    parser.add_argument("--executor", choices=("ray", "serial"), default="ray",
                        help="where the new path's units run (default: Ray tasks)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke_test:
            run, n_boot = _smoke_folder(Path(tmp)), 100
        elif args.run_dir:
            run, n_boot = Path(args.run_dir), args.n_boot
        else:
            raise SystemExit("give RUN_DIR or --smoke-test")
        data, probes = _inputs(run), _probes(run)
        print(f"run folder {run}: {len(data['q'])} held-out rows, probes {', '.join(probes)}")
        old, t_old = _audit(data, probes, "sklearn", n_boot, halving=False)
        load_old = os.getloadavg()[0]
        executor = None
        if args.executor == "ray" and not args.smoke_test:
            from fairsearch.analysis.audit.on_ray import RayExecutor
            from fairsearch.executor.ray_start import init_ray

            init_ray()
            executor = RayExecutor()
        store = UnitStore(Path(tmp) / "units")
        new, t_new = _audit(data, probes, "auto", n_boot, halving=True, executor=executor,
                            store=store)
        load_new = os.getloadavg()[0]
        # the same audit without halving: only the units halving skipped are fitted (untimed)
        full, _ = _audit(data, probes, "auto", n_boot, halving=False, executor=executor,
                         store=store)
        stages = json.loads((run / "stages.json").read_text()) if (
            run / "stages.json").is_file() else {}  # fmt: skip
    ho, hn = _heads(old), _heads(new)
    print(f"\n{'representation':<22} {'old worst case':<24} {'sel':<9} {'new worst case':<24} "
          f"{'sel':<9} {'width old':>9} {'width new':>9} {'new/old':>7}")
    for model in ho.index:
        o, w = ho.loc[model], hn.loc[model]
        wo, wn = o.ci_high - o.ci_low, w.ci_high - w.ci_low
        print(f"{model:<22} {o.value:.3f} [{o.ci_low:.3f}, {o.ci_high:.3f}]{'':<4} "
              f"{o.selected:<9} {w.value:.3f} [{w.ci_low:.3f}, {w.ci_high:.3f}]{'':<4} "
              f"{w.selected:<9} {wo:9.3f} {wn:9.3f} {wn / wo:7.2f}")
    seeds = new[new.metric == "fold_seeds"]
    cut = seeds[seeds.value < seeds.chance]
    for model, part in cut.groupby("model", sort=False):
        print(f"halving: {model}: one fold seed for {', '.join(part.probe)}")
    if cut.empty:
        print("halving: every family got every fold seed")
    hf = _heads(full)
    for m in ho.index:
        f, o = hf.loc[m], ho.loc[m]
        print(f"new without halving: {m:<22} {f.value:.3f} [{f.ci_low:.3f}, {f.ci_high:.3f}] "
              f"{f.selected:<9} width/old {(f.ci_high - f.ci_low) / (o.ci_high - o.ci_low):.2f}")
    print("verdict of each headline, old / new: " + ", ".join(
        f"{m} {judge_leak(headline(old, m))[0]}/{judge_leak(headline(new, m))[0]}"
        for m in ho.index))
    verdicts = {m: (judge_leak(headline(new, m))[0], judge_leak(headline(full, m))[0])
                for m in hn.index}
    changed = {m: v for m, v in verdicts.items() if v[0] != v[1]}
    print(f"verdict of each headline with halving / without: "
          f"{', '.join(f'{m} {a}/{b}' for m, (a, b) in verdicts.items())}; "
          f"unchanged: {not changed}")
    for name, table in (("old", old), ("new", new)):
        r = table[table.model == "resolution"].set_index("metric")["value"]
        if len(r):
            print(f"resolution ({name}): {int(r['held_out_rows'])} held-out rows resolve a leak "
                  f"to ± {r['ci_half_width']:.3f}; about {int(r['rows_to_resolve'])} would "
                  f"resolve the margin")
    widths = [(hn.loc[m].ci_high - hn.loc[m].ci_low) / (ho.loc[m].ci_high - ho.loc[m].ci_low)
              for m in ho.index]
    print(f"interval width new/old: min {min(widths):.2f}, max {max(widths):.2f}; within 10%: "
          f"{all(abs(w - 1) <= 0.10 for w in widths)}")
    same = (ho.selected == hn.selected.reindex(ho.index)).all()
    inside = all(hn.loc[m].ci_low <= ho.loc[m].value <= hn.loc[m].ci_high
                 and ho.loc[m].ci_low <= hn.loc[m].value <= ho.loc[m].ci_high for m in ho.index)
    print(f"\nselected families identical: {same}; each headline inside the other's interval: "
          f"{inside}")
    print(f"audit time: old {t_old:.1f}s, new {t_new:.1f}s, old/new {t_old / t_new:.2f}x "
          f"(load average over 1 min at the end of each: old {load_old:.2f}, new "
          f"{load_new:.2f}; the machine's CPUs: {os.cpu_count()})")
    if "search" in stages:
        s = float(stages["search"])
        print(f"stages.json: search {s:.1f}s, audit {stages.get('audit', float('nan')):.1f}s; "
              f"audit/search here: old {t_old / s:.2f}, new {t_new / s:.2f}")


if __name__ == "__main__":
    main()
