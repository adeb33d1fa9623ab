"""Two facts the verdict states beside the audit's headline: the bracket on the leak (the probes'
worst case from below, a certified bound on any classifier from above where one exists) and
whether the model reads the protected attribute to produce its output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["READS_Q", "bracket_sentence", "reads_q_sentence"]

#: What a person must know about a model that reads q (``q_input``).
READS_Q = ("reads q to translate (q_input): it needs the protected attribute at encoding time, so "
           "it suits a data owner who holds q and sanitises the embeddings before handing them "
           "on, not a setting where q is unknown")  # fmt: skip


def bracket_sentence(audit: pd.DataFrame | None, model: str) -> str | None:
    """``model``'s leak bracketed: the worst-case probe (a lower bound on what a classifier can
    recover of q) and the ``certified_bound`` row (an upper bound on any classifier), or a
    statement that no upper bound exists. None without a categorical-q audit of ``model``."""
    if audit is None or not len(audit):
        return None
    rows = audit[(audit["model"] == model) & (audit["target"] == "q")
                 & (audit["metric"] == "balanced_accuracy")]  # fmt: skip
    worst = rows[rows["probe"] == "worst_case"]
    if not len(worst):
        return None
    w = worst.iloc[0]
    low = f"probes reach {w['value']:.3f} [{w['ci_low']:.3f}, {w['ci_high']:.3f}]"
    bound = rows[rows["probe"] == "certified_bound"]
    if not len(bound):
        return (f"{low}; no certified upper bound: the output is not quantized, so probes bound "
                f"the leak from below only")  # fmt: skip
    b = bound.iloc[0]
    return (f"{low}; no classifier exceeds {b['value']:.3f} balanced accuracy (certified: "
            f"{b['selected']})")


def reads_q_sentence(params: Mapping[str, Any]) -> str | None:
    """:data:`READS_Q` for a configuration with ``q_input`` on, else None."""
    value = params.get("q_input")
    return READS_Q if value is True or str(value).lower() == "true" else None
