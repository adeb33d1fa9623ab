"""Search quality: hypervolume of the (MSE, CKA) front after 20 and 50 trials.

NSGA-II and TPE against random sampling, 5 seeds, mean +- std, on the source's wrapper problem
(synthetic regression, 600 training / 200 validation rows, 2x32 MLP, 30 epochs, the
``wrapper_mlp.yaml`` space). Runs in-process with Optuna (no Ray: the samplers and the trial code
are exactly those of ``fairsearch search``; only the scheduling differs), so it fits 2 cores.
Reference point: (variance of the validation target, 1.0) -- the constant predictor's MSE and
the largest possible CKA. Run: ``python benchmarks/bench_search_quality.py [--smoke-test]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import optuna
import torch

from fairsearch.analysis.pareto import hypervolume
from fairsearch.data import load_dataset, split_train_val
from fairsearch.families import TrialSettings, train_and_evaluate
from fairsearch.search.recorder import make_sampler
from fairsearch.spec.schema import SPACES_DIR
from fairsearch.spec.space import parse_space, sample


def run(algorithm: str, seed: int, trials: int, data, space, settings) -> np.ndarray:
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=make_sampler(algorithm, seed, trials))  # fmt: skip
    losses = []
    for _ in range(trials):
        trial = study.ask()
        m = train_and_evaluate("wrapper", sample(trial, space), data, settings, lambda r: None)
        study.tell(trial, [m["mse"], m["cka"]])
        losses.append((m["mse"], m["cka"]))
    return np.array(losses)


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="2 seeds, 6/10 trials, 5 epochs")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seeds, checkpoints, epochs = (2, (6, 10), 5) if args.smoke_test else (args.seeds, (20, 50), 30)
    data = load_dataset("synthetic_regression", n=800, n_train=600, n_val=200, seed=0)
    _, val = split_train_val(data)
    ref = np.array([float(np.var(val.y)), 1.0])
    space = parse_space(yaml.safe_load((SPACES_DIR / "wrapper_mlp.yaml").read_text()))
    settings = TrialSettings(epochs=epochs, batch_size=128)
    print(f"reference point (MSE, CKA) = ({ref[0]:.3f}, 1.0); {seeds} seeds; {epochs} epochs")
    for algorithm in ("nsga2", "tpe", "random"):
        t = time.perf_counter()
        hv = {n: [] for n in checkpoints}
        for seed in range(seeds):
            losses = run(algorithm, seed, max(checkpoints), data, space, settings)
            for n in checkpoints:
                hv[n].append(hypervolume(losses[:n], ref))
        cells = "  ".join(f"HV@{n}: {np.mean(v):.4f} +- {np.std(v):.4f}" for n, v in hv.items())
        print(f"{algorithm:<7} {cells}   ({time.perf_counter() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
