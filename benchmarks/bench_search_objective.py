"""What the translator's search objective costs per configuration.

``adversary_bacc`` is the worse of a fresh logistic and a fresh MLP probe (fitted on the
translated train rows, at most 2,000 of them, scored on the validation split), so the search
optimises against non-linear leakage as the audit judges it. This times one configuration's
training, then its evaluation with the logistic probe alone (the old objective) and with both,
on the shipped names embeddings (q = 4-class race), and prints the ratios.

    python benchmarks/bench_search_objective.py [--smoke-test] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np

from fairsearch.data import load_dataset, split_train_val
from fairsearch.families import TrialSettings, get_family
from fairsearch.families.translator import family as translator_family


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke-test", action="store_true", help="1 epoch, 1 repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    repeats = 1 if args.smoke_test else args.repeats
    data = load_dataset("names_minilm", protected="race")
    family = get_family("translator")
    settings = TrialSettings(epochs=1 if args.smoke_test else 10, batch_size=128, seed=0)
    config = {"fairness": "mmd", "w_fair": 30.0, "fair_rows": 1024, "bottleneck": "256-60"}
    train, val = split_train_val(data, 0)
    t0 = time.perf_counter()
    fitted = family.fit(config, train, val, settings, lambda row: None)
    train_s = time.perf_counter() - t0
    timings: dict[str, list[float]] = {"logistic": [], "logistic+mlp": []}
    for _ in range(repeats):
        for name, probes in (("logistic", ("logistic",)), ("logistic+mlp", ("logistic", "mlp"))):
            with mock.patch.object(translator_family, "SEARCH_PROBES", probes):
                t0 = time.perf_counter()
                metrics = family.evaluate(fitted, val, train=train, seed=0)
                timings[name].append(time.perf_counter() - t0)
    one, both = np.median(timings["logistic"]), np.median(timings["logistic+mlp"])
    print(f"names_minilm, q = race (4 classes), {len(train.X)} train / {len(val.X)} val rows")
    print(f"training one configuration ({settings.epochs} epochs): {train_s:.2f} s")
    print(f"evaluation, logistic probe only:     {one:.2f} s (median of {repeats})")
    print(f"evaluation, logistic + MLP probes:   {both:.2f} s (median of {repeats})")
    print(f"objective cost: x{both / one:.2f} the old evaluation; "
          f"{(both - one) / train_s:.1%} of the training time added per configuration")
    print("last metrics:", {k: round(v, 3) for k, v in metrics.items()})


if __name__ == "__main__":
    main()
