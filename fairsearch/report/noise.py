"""Seed noise against configuration spread, from a search's own trials (no Ray).

For an objective, the *seed noise* is the typical standard deviation of one configuration over
its seeds (the median over configurations of ``se * sqrt(S)``), and the *configuration spread*
is the standard deviation of the seed means across configurations. When the noise is not well
below the spread, a single-seed search ranks seed luck; the seed mean's standard error
(``noise / sqrt(S)``) is what the search decides on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SeedNoise", "seed_noise"]


@dataclass(frozen=True)
class SeedNoise:
    metric: str
    seed_std: float  # median over configurations of the std over seeds
    config_spread: float  # std of the seed means across configurations
    seeds: int  # seeds per configuration (the most common count)
    configurations: int

    @property
    def standard_error(self) -> float:
        return self.seed_std / math.sqrt(self.seeds) if self.seeds else math.nan

    def sentence(self, label: str | None = None) -> str:
        name = label or self.metric
        return (f"seed noise vs configuration spread, {name}: std over seeds {self.seed_std:.3f} "
                f"(median of {self.configurations} configurations, {self.seeds} seeds each; "
                f"standard error of a seed mean {self.standard_error:.3f}) against "
                f"{self.config_spread:.3f} across configurations")  # fmt: skip


def seed_noise(trials: pd.DataFrame, metric: str) -> SeedNoise | None:
    """The two spreads of ``metric`` over the completed trials with at least two seeds."""
    col = next((c for c in (f"objective.{metric}", f"metric.{metric}") if c in trials), None)
    se_col = f"se.{metric}"
    if col is None or se_col not in trials or "n_seeds" not in trials:
        return None
    done = trials
    if "status" in trials:
        done = trials[trials["status"] == "completed"]
    if "same_as" in done:
        done = done[done["same_as"].isna()]  # a repeat is the same configuration again
    n = done["n_seeds"].to_numpy(np.float64, na_value=np.nan)
    se = done[se_col].to_numpy(np.float64, na_value=np.nan)
    mean = done[col].to_numpy(np.float64, na_value=np.nan)
    ok = np.isfinite(n) & (n >= 2) & np.isfinite(se) & np.isfinite(mean)
    if ok.sum() < 2:
        return None
    std = se[ok] * np.sqrt(n[ok])
    counts = pd.Series(n[ok].astype(int)).mode()
    return SeedNoise(metric, float(np.median(std)), float(np.std(mean[ok], ddof=1)),
                     int(counts.iloc[0]), int(ok.sum()))  # fmt: skip
