"""The trivial predictor's scores: what the decision judges every retrained model's task metric
against (``retrain/reference.json``, beside the test labels ``retrain/test_y.npy``)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["REFERENCE", "TEST_Y", "trivial_reference"]

#: In ``retrain/``: the trivial predictor's scores (``reference.json``) and the test labels
#: (``test_y.npy``) that the decision judges every model's task metric against.
REFERENCE, TEST_Y = "reference.json", "test_y.npy"


def trivial_reference(family: Any, data: Any, split_seed: int) -> dict[str, Any]:
    """The trivial predictor of ``data``'s task (the majority class of the training rows, or
    their mean for regression) and the family's utility metrics of it on the validation rows
    (those the search judged on) and on the test rows."""
    from fairsearch.data import split_train_val

    train, val = split_train_val(data, split_seed)
    y = np.asarray(train.y).reshape(-1)
    if data.task == "regression":
        constant: Any = float(y.mean())
        label, n_classes = f"the training mean ({constant:.4g})", 0
    else:
        values, counts = np.unique(y, return_counts=True)
        constant = int(values[counts.argmax()])
        names = data.classes.get("y")
        name = names[constant] if names and constant < len(names) else constant
        label = f"the majority class ({name})"
        n_classes = int(max(np.max(np.asarray(data.y)), y.max())) + 1

    def score(part: Any) -> dict[str, float]:
        if not len(part.y):
            return {}
        const = np.full(len(part.y), constant, dtype=np.asarray(part.y).dtype)
        return family.utility_scores(part.y, const, task=data.task, n_classes=n_classes)

    return {"task": data.task, "constant": constant, "label": label, "n_classes": n_classes,
            "val": score(val), "test": score(data.subset("test"))}
