"""The search leak objective's MLP grid and engine: the audit's full grid against the objective's.

The translator's ``adversary_bacc`` is the audit ladder's nested worst case over the leak probes
(main job: logistic, tuned MLP, kNN), cross-fitted over ``LEAK_FOLDS`` folds of the validation rows. Tuning
the MLP over the audit's six grid points is most of its cost. This trains ``--configs``
configurations drawn at random from the main job's space (one seed each, as a search lane trains
them) and, on each translated validation set and on the original embeddings, computes the
objective four ways: the full grid and the objective's grid (``OBJECTIVE_GRIDS``), each with the
MLP fitted by scikit-learn and by the batched torch probe. It prints each representation's worst
case and MLP value per way, then, over all of them, the mean, smallest and largest difference of
the objective's grid from the full grid, whether the two engines agree, and the CPU seconds of
each way with their ratios (one thread, measured in this one run).

    OMP_NUM_THREADS=1 nice python benchmarks/bench_objective_grid.py [--configs 12] [--smoke-test]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from typing import Any

import numpy as np
import optuna
import torch

from fairsearch.data import load_from_spec, split_train_val
from fairsearch.families import Member, ModelFamily, TrialSettings, get_family
from fairsearch.families.translator.family import LEAK_FOLDS, OBJECTIVE_GRIDS, leak_probes
from fairsearch.probes.ladder.fresh import leak_scores
from fairsearch.spec.schema import load_spec
from fairsearch.spec.space import sample

try:
    from bench_translator_population import SPEC
except ImportError:  # run from the repository root
    from benchmarks.bench_translator_population import SPEC

#: (label, the MLP's grid, the MLP's engine)
WAYS: tuple[tuple[str, Any, str], ...] = (
    ("full grid, sklearn", None, "sklearn"), ("full grid, batched", None, "batched"),
    ("objective grid, sklearn", OBJECTIVE_GRIDS, "sklearn"),
    ("objective grid, batched", OBJECTIVE_GRIDS, "batched"),
)  # fmt: skip


def representations(configs: int, epochs: int | None, seed: int,
                    rows: int | None = None) -> tuple[list[Any], tuple[str, ...]]:  # fmt: skip
    """``(name, Z, q)`` of the validation rows (the first ``rows``; None: all): the original
    embeddings, then ``configs`` trained translators of the main job's space (one seed each);
    and the spec's leak probes."""
    spec = load_spec(SPEC)
    data = load_from_spec(spec.data)
    family = get_family(spec.model)
    settings = TrialSettings(epochs=epochs or spec.trial.epochs, batch_size=spec.trial.batch_size,
                             split_seed=spec.search.seed, model=dict(spec.model_args))  # fmt: skip
    train, val = split_train_val(data, settings.split_seed)
    out = [("original", np.asarray(val.X, np.float32), np.asarray(val.q))]
    study = optuna.create_study(directions=[o.direction for o in spec.objectives],
                                sampler=optuna.samplers.RandomSampler(seed=seed))  # fmt: skip
    for i in range(configs):
        config = sample(study.ask(), spec.space)
        fitted = ModelFamily.fit_population(family, [Member(config, i)], train, val,
                                            dataclasses.replace(settings, seed=i),
                                            [lambda row: None])[0]  # fmt: skip
        Z = fitted.transform(np.asarray(val.X, np.float32), q=val.q)
        out.append((f"#{i} {config['fairness']}", Z, np.asarray(val.q)))
    return [(name, Z[:rows], q[:rows]) for name, Z, q in out], leak_probes(spec.model_args)


def representation_args(ap: argparse.ArgumentParser) -> None:
    """The options of :func:`representations_for`: ``--configs``, ``--seed``, ``--smoke-test``."""
    ap.add_argument("--configs", type=int, default=12, help="trained configurations")
    ap.add_argument("--seed", type=int, default=7, help="seed of the random configurations")
    ap.add_argument("--smoke-test", action="store_true",
                    help="1 configuration of 1 epoch, 300 validation rows")


def representations_for(args: argparse.Namespace) -> tuple[list[Any], tuple[str, ...]]:
    """:func:`representations` as :func:`representation_args`' options ask, on one thread."""
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    configs, epochs, rows = (1, 1, 300) if args.smoke_test else (args.configs, None, None)
    return representations(configs, epochs, args.seed, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    representation_args(ap)
    reps, kinds = representations_for(ap.parse_args())
    print(f"leak objective over {list(kinds)}, {LEAK_FOLDS} folds, on {len(reps)} representations "
          f"of the main job's validation rows (d = {reps[0][1].shape[1]}, n = {len(reps[0][2])})")
    cpu: dict[str, float] = dict.fromkeys((w[0] for w in WAYS), 0.0)
    worst: dict[str, list[float]] = {w[0]: [] for w in WAYS}
    mlp: dict[str, list[float]] = {w[0]: [] for w in WAYS}
    for name, Z, q in reps:
        cells = []
        for label, grids, engine in WAYS:
            engines = {"logistic": "sklearn", "knn": "sklearn", "mlp": engine}
            c0 = time.process_time()
            res = leak_scores(Z, q, kinds=kinds, folds=LEAK_FOLDS, seed=0, engine=engines,
                              grids=grids)  # fmt: skip
            cpu[label] += time.process_time() - c0
            worst[label].append(res["bacc"])
            mlp[label].append(res["by_kind"].get("mlp", float("nan")))
            cells.append(f"{res['bacc']:.4f} (mlp {mlp[label][-1]:.4f})")
        print(f"  {name:<22} " + " | ".join(cells), flush=True)
    full, own = worst["full grid, sklearn"], worst["objective grid, sklearn"]
    diff = [b - a for a, b in zip(full, own, strict=True)]
    print(f"worst case, objective grid - full grid: mean {statistics.mean(diff):+.4f}, "
          f"from {min(diff):+.4f} to {max(diff):+.4f} over {len(diff)} representations")
    for grid in ("full grid", "objective grid"):
        same = mlp[f"{grid}, sklearn"] == mlp[f"{grid}, batched"]
        print(f"{grid}: sklearn and batched MLP values {'equal' if same else 'DIFFER'}")
    base = cpu["full grid, batched"]
    for label, _, _ in WAYS:
        print(f"  {label:<24} {cpu[label]:7.1f} CPU s ({cpu[label] / len(reps):5.2f} s a "
              f"representation), {cpu[label] / base:4.2f}x the full grid batched")


if __name__ == "__main__":
    main()
