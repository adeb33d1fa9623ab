"""The translator's search leak objective: how ``adversary_bacc`` is cross-fitted (folds, the
objective's smaller MLP grid, the engine of each probe kind) and its separation variant. No torch
at import."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LEAK_FOLDS", "OBJECTIVE_GRIDS", "given_label_leak", "leak_engines"]

#: Outer folds of the objective's cross-fit (the audit's ladder keeps 5). On 13 representations
#: of the main job's space 3 folds moved the worst case by -0.0039 on average (mean absolute
#: 0.0083, rank correlation 0.92 with 5 folds), less than another shuffle of the same 5 folds does
#: (mean absolute 0.0130, rank correlation 0.68), at 0.56x the CPU
#: (``benchmarks/bench_objective_folds.py``).
LEAK_FOLDS = 3
#: The objective's MLP is tuned over a smaller grid than the audit's (64 hidden units, both weight
#: decays, against 3 widths x 2): on 13 representations of the main job's space its worst case
#: differed from the full grid's by -0.0005 on average (-0.026 to +0.020) at 0.45x the CPU of
#: the full grid in scikit-learn, 0.32x the batched one (``benchmarks/bench_objective_grid.py``);
#: the audit judges the pick with its full ladder.
OBJECTIVE_GRIDS: dict[str, dict[str, list[Any]]] = {
    "mlp": {"estimator__mlpclassifier__hidden_layer_sizes": [(64,)],
            "estimator__mlpclassifier__alpha": [1e-4, 1e-1]},
}


def leak_engines() -> dict[str, str]:
    """How the leak probes are fitted: batched (torch) on a GPU; scikit-learn on a CPU, where it
    gives the same fits faster (``benchmarks/bench_objective_grid.py``: the objective 0.71-0.82x
    the CPU with the MLP batched; logistic and kNN: ``bench_search_objective.py``, and kNN needs
    no ``n x n`` distance blocks)."""
    import torch

    from fairsearch.probes.batched import BATCHED_KINDS

    return {} if torch.cuda.is_available() else dict.fromkeys(BATCHED_KINDS, "sklearn")


def given_label_leak(Z: np.ndarray, part: Any, kinds: Any, seed: int) -> float:
    """Separation leakage as the search measures it: the leak objective's worst case within
    each class of the control label, the worst class's balanced accuracy."""
    from fairsearch.probes.ladder.fresh import leak_scores  # sklearn

    y, q = np.asarray(part.y).reshape(-1), np.asarray(part.q).reshape(-1)
    return max(leak_scores(Z[y == c], q[y == c], kinds=kinds, folds=LEAK_FOLDS, seed=seed,
                           engine=leak_engines(), grids=OBJECTIVE_GRIDS)["bacc"]
               for c in np.unique(y))  # fmt: skip
