"""Where a binary control head draws its line (``control_decision``).

A control head trained by cross-entropy predicts the class of the larger logit. On an imbalanced
control task that rule can cost much of the F1 that the representation still supports: a
quantized translator maps whole cells to one logit, and a cell whose positive rate sits just
under one half is predicted negative wholesale. Two seeds of one configuration can then reach
the same control loss and F1s 0.2 apart.

With ``control_decision: "f1"`` (the default) a binary head's class-1 bias is moved once, after
the last epoch's steps, so that "class 1 iff the margin ``logit_1 - logit_0`` exceeds the cut"
has the highest F1 on the *training* rows (no validation or test row is read). The head stays a
plain ``nn.Linear`` (a saved translator carries its cut in its bias) and ``predict`` stays the
argmax. ``"argmax"`` leaves the trained head as it is; a control task of more than two classes
is always left as it is.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DECISIONS", "f1_cut"]

#: The values of ``control_decision``.
DECISIONS: tuple[str, ...] = ("f1", "argmax")


def f1_cut(margin: np.ndarray, y: np.ndarray) -> float:
    """The cut ``c`` for which "class 1 iff ``margin > c``" has the highest F1 of class 1 on
    these rows (``y``: codes 0 / 1): halfway between the lowest margin predicted 1 and the next
    lower one; on a tie in F1, the highest such cut. 0.0 (the argmax) when ``y`` holds one class."""
    margin = np.asarray(margin, np.float64)
    positive = np.asarray(y) == 1
    n_pos = int(positive.sum())
    if n_pos in (0, len(positive)):
        return 0.0
    order = np.argsort(-margin, kind="stable")
    m, t = margin[order], positive[order]
    tp = np.cumsum(t)
    predicted = np.arange(1, len(m) + 1)
    # F1 = 2 TP / (predicted positive + actual positive), only where the cut falls between two
    # distinct margins (or after the last row)
    f1 = np.where(np.r_[m[:-1] > m[1:], True], 2.0 * tp / (predicted + n_pos), -1.0)
    i = int(np.argmax(f1))
    return float((m[i] + m[i + 1]) / 2.0) if i + 1 < len(m) else float(m[i] - 1.0)
