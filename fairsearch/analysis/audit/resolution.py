"""What the held-out rows can resolve, and what else a model gives away, read from an audit table.

:func:`resolution_of` reads the shuffled-q control the audit writes
(:func:`fairsearch.analysis.audit.control.resolution_rows`): the interval half-width a leak-free
representation gets at this many rows, and how many rows would bring it down to the margin.
The margin is resolvable when a leak-free representation's upper interval, chance + half-width,
lies within reference + margin; otherwise no model can be shown fair on these rows, whatever it
does, and a verdict says "the data cannot resolve the margin" instead of calling it borderline.

:func:`other_label_leaks` lists the other labels of the data (the audit's ``extra`` labels,
probed by a fresh logistic probe) that a model gives away beyond their own chance + margin: a
caveat, since the verdict's rule is about ``q``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairsearch.analysis.audit.leakage import MARGIN, Leak

__all__ = ["LabelLeak", "Resolution", "other_label_leaks", "resolution_of"]


@dataclass(frozen=True)
class Resolution:
    """Half-width of a leak-free representation's interval at ``n_rows`` held-out rows."""

    n_rows: int
    half_width: float
    rows_to_resolve: int
    margin: float = MARGIN

    def resolves(self, leak: Leak) -> bool:
        """Whether a leak-free representation could pass: chance + half-width within the
        reference + margin of ``leak``."""
        return leak.chance + self.half_width <= leak.reference + self.margin

    def sentence(self) -> str:
        """What the rows resolve, in words."""
        return (f"{self.n_rows} held-out rows resolve a leak to ± {self.half_width:.3f} "
                f"(a shuffled-q control); about {self.rows_to_resolve} would resolve the margin "
                f"{self.margin:g}")

    def unresolved(self, leak: Leak) -> str:
        """Why no model can be shown fair on these rows (when :meth:`resolves` is False)."""
        return (f"the data cannot resolve the margin: {self.n_rows} held-out rows resolve a leak "
                f"only to ± {self.half_width:.3f} (a shuffled-q control), so even a leak-free "
                f"representation's interval would reach {leak.chance + self.half_width:.3f}, "
                f"past {leak.reference_name} + {self.margin:g} = "
                f"{leak.reference + self.margin:.3f}; about {self.rows_to_resolve} held-out rows "
                f"would resolve it")


@dataclass(frozen=True)
class LabelLeak:
    """A fresh probe's balanced accuracy on another label than ``q``."""

    label: str
    value: float
    ci_low: float
    ci_high: float
    chance: float

    def sentence(self) -> str:
        return (f"it also gives away {self.label}: {self.value:.3f} [{self.ci_low:.3f}, "
                f"{self.ci_high:.3f}] balanced accuracy against a chance of {self.chance:.3f} "
                f"(a caveat: the rule is about q)")


def resolution_of(audit: pd.DataFrame) -> Resolution | None:
    """The audit's shuffled-q control, or ``None`` when the audit has none (older tables)."""
    rows = audit[(audit["model"] == "resolution") & (audit["probe"] == "leak_free")]
    values = dict(zip(rows["metric"], rows["value"], strict=True))
    if not {"held_out_rows", "ci_half_width", "rows_to_resolve"} <= values.keys():
        return None
    need = rows[rows["metric"] == "rows_to_resolve"]["chance"]
    margin = float(need.iloc[0]) if len(need) and np.isfinite(need.iloc[0]) else MARGIN
    return Resolution(int(values["held_out_rows"]), float(values["ci_half_width"]),
                      int(values["rows_to_resolve"]), margin)


def other_label_leaks(audit: pd.DataFrame, model: str, margin: float = MARGIN
                      ) -> list[LabelLeak]:
    """Labels other than ``q`` and the control that ``model``'s fresh logistic probe recovers
    with an interval entirely above the label's chance + ``margin``."""
    rows = audit[(audit["model"] == model) & ~audit["target"].isin(["q", "control"])
                 & (audit["probe"] == "logistic") & (audit["metric"] == "balanced_accuracy")]
    out = [LabelLeak(str(r.target), float(r.value), float(r.ci_low), float(r.ci_high),
                     float(r.chance)) for r in rows.itertuples()]
    return [leak for leak in out if leak.ci_low > leak.chance + margin]
