"""LEACE (Belrose et al. 2023) as a translator: closed-form removal of all *linear* information.

Same ``fit`` / ``transform`` interface as :class:`~fairsearch.families.translator.Translator` so that it sits
on the same trade-off plot (config ``fairness="leace"``). It has no control head: ``y`` is accepted
and ignored. Needs the optional ``concept-erasure`` package (``pip install fairsearch[leace]``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from fairsearch.families.translator._options import leace_available

__all__ = ["LeaceTranslator", "leace_available"]


def _eraser_class() -> Any:
    try:
        from concept_erasure import LeaceEraser
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "fairness='leace' needs the optional 'concept-erasure' package: "
            "pip install 'fairsearch[leace]'"
        ) from exc
    return LeaceEraser


class LeaceTranslator:
    """Erase the linear information about ``q`` from embeddings (``method``: ``leace`` | ``orth``)."""

    def __init__(self, *, method: Literal["leace", "orth"] = "leace") -> None:
        self.method = method

    def fit(self, E: Any, y: Any = None, *, q: Any, **_ignored: Any) -> LeaceTranslator:
        """Fit the eraser on ``(E, q)``; ``y`` and other keywords (``E_val``...) are ignored."""
        if self.method not in ("leace", "orth"):
            raise ValueError(f"method must be 'leace' or 'orth', but got {self.method!r}")
        x = np.asarray(E, dtype=np.float64)
        if x.ndim != 2 or not np.all(np.isfinite(x)):
            raise ValueError(f"E must be a finite 2-D array, but got shape {x.shape}")
        qa = np.asarray(q).reshape(-1)
        if qa.shape[0] != x.shape[0]:
            raise ValueError(f"q must have one label per row of E ({x.shape[0]}), but got {qa.shape[0]}")
        self.protected_classes_, codes = np.unique(qa, return_inverse=True)
        if self.protected_classes_.size < 2:
            raise ValueError(f"q needs at least 2 classes, but got only {self.protected_classes_.tolist()!r}")
        # One-hot (drop one column: the k-th is linearly implied) for multi-class; 0/1 for binary.
        z = np.eye(self.protected_classes_.size)[codes][:, 1:]
        self.eraser_ = _eraser_class().fit(torch.from_numpy(x), torch.from_numpy(z), method=self.method)
        # Constant input columns (e.g. dead ReLU units) stay constant: the projection would
        # otherwise leave float round-off in them that correlates with q, and any per-column
        # scaling downstream (a StandardScaler) blows that dust up into a perfect q detector.
        std = x.std(0)
        self.constant_ = std <= 1e-7 * max(float(std.max()), 1e-30)
        self.constant_values_ = x.mean(0)[self.constant_]
        self.history_: list[dict[str, float]] = []
        return self

    def transform(self, E: Any) -> np.ndarray:
        if not hasattr(self, "eraser_"):
            raise RuntimeError("this LeaceTranslator is not fitted yet: call fit(E, y, q=...) first")
        x = torch.from_numpy(np.asarray(E, dtype=np.float64))
        with torch.no_grad():
            out = self.eraser_(x).numpy()
        out[:, self.constant_] = self.constant_values_
        return out.astype(np.float32)
