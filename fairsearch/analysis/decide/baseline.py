"""The baselines a recommended wrapper classifier must beat: the unconstrained model (``mu = 0``)
and fairlearn's per-group thresholds fitted on it.

Post-processing is the cheapest fairness intervention a deployer has: take the model trained
without a penalty and choose one decision threshold per group (fairlearn's
``ThresholdOptimizer``, fitted on the validation split under the constraint of the run's
criterion: demographic parity, equalized odds for ``separation``, true-positive-rate parity for
``opportunity``). The decision
judges it on the test split by the run's own rule and says whether the recommended
configuration beats it on the rule's objective. Trained here, in the decide stage's process:
one small model, the configuration's own parameters with ``mu = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from fairsearch.runfolder.names import metric_label
from fairsearch.spec.constraints import parse_constraint

__all__ = ["THRESHOLD_CONSTRAINTS", "ThresholdBaseline", "threshold_baseline"]

#: fairlearn ``ThresholdOptimizer`` constraint of each ``fairness.criterion``.
THRESHOLD_CONSTRAINTS = {"independence": "demographic_parity", "separation": "equalized_odds",
                         "opportunity": "true_positive_rate_parity"}  # fmt: skip


@dataclass(frozen=True)
class ThresholdBaseline:
    """Test-split metrics of the unconstrained model and of its per-group thresholds."""

    seed: int
    unconstrained: Mapping[str, float]
    thresholds: Mapping[str, float]
    rule_holds: bool | None  # the run's rule on the thresholds' test metrics (None: not measurable)
    constraint: str = "demographic_parity"  # the ThresholdOptimizer's, from the criterion

    def sentences(self, target: str | None, direction: str, recommended: Mapping[str, float],
                  subject_to: Sequence[str], objectives: Sequence[str] = ()
                  ) -> tuple[str, str]:  # fmt: skip
        """(cost against the unconstrained model, standing against the thresholds). The
        thresholds' test metrics shown are the rule's, or the run's ``objectives`` for a rule
        without a target or constraint (the knee)."""
        shown = [m for m in (target, *(parse_constraint(c).metric for c in subject_to))
                 if m and m in self.thresholds]  # fmt: skip
        shown = shown or [m for m in objectives if m in self.thresholds]

        def line(values: Mapping[str, float]) -> str:
            return ", ".join(f"{metric_label(m)} {values[m]:.3f}" for m in dict.fromkeys(shown))

        cost = ""
        if target and target in self.unconstrained and recommended.get(target) is not None:
            a, b = self.unconstrained[target], float(recommended[target])
            cost = (f"test {metric_label(target)} {b:.3f} against {a:.3f} for the unconstrained "
                    f"model (mu = 0, seed {self.seed}), a cost of {abs(a - b):.3f}"
                    + ("" if (b <= a) == (direction == "maximize") else " (a gain)"))
        rule = ("" if self.rule_holds is None else
                "; the rule holds for it" if self.rule_holds else "; the rule fails for it")
        text = (f"per-group thresholds on the unconstrained model (fairlearn ThresholdOptimizer, "
                f"{self.constraint.replace('_', ' ')}, fitted on validation), on test: "
                f"{line(self.thresholds)}{rule}")
        if target and target in self.thresholds and recommended.get(target) is not None:
            mine, theirs = float(recommended[target]), self.thresholds[target]
            better = mine > theirs if direction == "maximize" else mine < theirs
            if self.rule_holds is False:
                text += "; the recommendation meets the rule it misses"
            else:
                text += (f"; the recommendation {'beats' if better else 'does not beat'} it on "
                         f"{metric_label(target)} ({mine:.3f} against {theirs:.3f})")
        return cost, text


class _Scores(ClassifierMixin, BaseEstimator):
    """A fitted estimator whose input is already the model's score for class 1."""

    def __init__(self) -> None:
        self.fitted_ = True
        self.classes_ = np.array([0, 1])

    def fit(self, X: Any, y: Any) -> _Scores:  # noqa: ARG002 - prefit: nothing to learn
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.asarray(X, dtype=np.float64).reshape(-1)
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        return (np.asarray(X).reshape(-1) >= 0.5).astype(int)


def threshold_baseline(run_dir: Path, params: Mapping[str, Any],
                       subject_to: Sequence[str]) -> ThresholdBaseline | None:  # fmt: skip
    """Train ``params`` with ``mu = 0`` on the run's data (its first retrain seed) and fit
    per-group thresholds on it. None unless the run is a wrapper classifier with a binary task
    and a categorical protected attribute."""
    from fairlearn.postprocessing import ThresholdOptimizer

    from fairsearch.data import load_from_spec, split_train_val
    from fairsearch.families import TrialSettings, get_family
    from fairsearch.families.wrapper.model import FairModelWrapper
    from fairsearch.spec.schema import load_spec

    spec = load_spec(run_dir / "spec.yaml")
    family = get_family(spec.model)
    config = family.unconstrained(params)
    if config is None:
        return None
    data = load_from_spec(spec.data)
    if data.task != "classification" or data.q_kind != "categorical" or len(np.unique(data.y)) != 2:
        return None
    train, val = split_train_val(data, spec.search.seed)
    test = data.subset("test")
    seed = int(spec.retrain_seeds[0])
    settings = TrialSettings(epochs=spec.post.retrain_epochs or spec.trial.epochs,
                             batch_size=spec.trial.batch_size, seed=seed,
                             model=dict(spec.model_args), split_seed=spec.search.seed,
                             criterion=spec.criterion)
    fitted: FairModelWrapper = family.fit(config, train, val, settings, lambda _row: None)
    unconstrained = family.evaluate(fitted, test, train=train, seed=seed)
    constraint = THRESHOLD_CONSTRAINTS[spec.criterion]
    post = ThresholdOptimizer(estimator=_Scores(), constraints=constraint,
                              objective="accuracy_score", prefit=True,
                              predict_method="predict_proba")  # fmt: skip
    score = lambda part: fitted.predict_proba(part.X)[:, 1:2]  # noqa: E731
    post.fit(score(val), np.asarray(val.y), sensitive_features=np.asarray(val.q))
    decided = post.predict(score(test), sensitive_features=np.asarray(test.q), random_state=seed)
    thresholds = _decision_metrics(family, np.asarray(test.y), np.asarray(decided),
                                   np.asarray(test.q), criterion=spec.criterion)  # fmt: skip
    holds = _rule(thresholds, subject_to)
    return ThresholdBaseline(seed, unconstrained, thresholds, holds, constraint)


def _decision_metrics(family: Any, y: np.ndarray, decided: np.ndarray, q: np.ndarray, *,
                      criterion: str = "independence") -> dict[str, float]:  # fmt: skip
    """The wrapper's classification metrics of hard decisions (one-hot as its probabilities)."""
    from fairsearch.measures.dependence import cka_score
    from fairsearch.measures.fairness import (
        demographic_parity_gap,
        equal_opportunity_gap,
        equalized_odds_gap,
    )

    out = dict(family.utility_scores(y, decided, task="classification", n_classes=2))
    onehot = np.eye(2)[decided.astype(int)]
    out["cka"] = float(cka_score(onehot, q, sigma_x=1.0, sigma_y=1.0, kernel_y="delta"))
    out["dp_gap"] = float(demographic_parity_gap(decided, q, n_classes=2))
    if criterion != "independence":
        out["eo_gap"] = float(equalized_odds_gap(y, decided, q, n_classes=2))
        out["eopp_gap"] = float(equal_opportunity_gap(y, decided, q, n_classes=2))
    return out


def _rule(metrics: Mapping[str, float], subject_to: Sequence[str]) -> bool | None:
    holds = True
    for text in subject_to:
        c = parse_constraint(text).plain()
        value = metrics.get(c.metric)
        if value is None or not math.isfinite(value):
            return None
        holds &= bool(c.holds(np.array([value]))[0])
    return holds
