"""The translator's options, without torch: what a spec is checked against (the configuration
keys and their defaults, the fairness losses) and whether the LEACE baseline can run."""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULTS", "FAIRNESS_CHOICES", "leace_available"]

#: A translator's configuration keys and their defaults.
DEFAULTS: dict[str, Any] = {
    "fairness": "adversarial",
    "bottleneck": "60",
    "activation": "relu",
    "w_control": 1.0,
    "w_fair": 1.0,
    "w_rec": 1.0,
    "lr": 1e-3,
    "lr_schedule": "constant",
    "weight_decay": 0.0,
    "batch_size": 128,
    "epochs": 10,
    "adversary_every": 1,
    "adversary_steps": 1,
    "adversary_width": 64,
    "adversary_depth": 1,
    "adversary_lr": 1e-3,
    "adversary_loss": "negative_ce",
    "adversary_count": 1,
    "adversary_reset_every": 0,
    "adversary_control": False,
    "grl_lambda": 1.0,
    "fair_rows": 0,
    "q_input": False,
    "quantize": 0,
    "w_cells": 1.0,
    "control_decision": "f1",
    "restarts": 1,
    "probe_every": 0,
    "probe_max_train": 2000,
    "loss_bound": 1e4,
    "seed": 0,
    "device": "cpu",
}
FAIRNESS_CHOICES: tuple[str, ...] = (
    "none", "adversarial", "gradient_reversal", "negative_ce", "cka", "hsic", "linear_cka",
    "linear_guard", "mmd", "conditional_mmd", "conditional_sw",
)  # fmt: skip


def leace_available() -> bool:
    """Whether the optional ``concept-erasure`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("concept_erasure") is not None
