"""The audit probe ladder: could any network recover a protected attribute ``q`` from ``Z``?

``Z`` is a representation of held-out rows (translated embeddings, or a model's predictions) and
``q`` holds integer class codes of a protected attribute (``K >= 2`` classes, possibly
imbalanced). The metric is balanced accuracy, whose chance level is ``1/K``.

* **Probe kinds** (:data:`fairsearch.probes.registry.PROBE_KINDS`, built only by
  :func:`make_probe`): majority, logistic, mlp, gbt, knn and svm. Every probe is a :class:`~sklearn.model_selection.GridSearchCV`
  over a small grid with a seeded stratified inner CV (``TUNE_FOLDS`` folds) scored by balanced
  accuracy, so every fitted probe carries its *inner-CV* score (``best_score_``) computed on its
  own training rows only. Imbalance: logistic and svm use ``class_weight="balanced"``, mlp
  class-balanced sample weights (so its early stopping tracks balanced accuracy); gbt and knn
  predict ``argmax_k p(k|z) / p(k)``, the balanced-accuracy Bayes rule.
  The svm fits on a stratified subsample of at most ``SVM_MAX_ROWS`` rows (exact RBF kernel, no
  Nystroem approximation); it is scored on every held-out row.
* **Cross-fitting** (:func:`cross_fit`): stratified K-fold over all held-out rows; every row is
  scored exactly once by a probe fitted on the other ``(k-1)/k`` of the rows.
* **Worst case** (:func:`worst_case`): nested selection. In each outer fold the kind with the
  best inner-CV score on that fold's training rows is selected, and its predictions on the outer
  fold (never seen by the selection) are kept. The headline is the balanced accuracy of these
  stitched predictions, so picking the luckiest kind on the scored rows (the winner's curse of
  "max over kinds") cannot inflate it.
* **Intervals** (:func:`bootstrap_ci`): see its docstring (row bootstrap pooled over fold seeds).
* **Floor** (:func:`floor_from_labels`): cross-fitted balanced accuracy of predicting ``q`` from a
  categorical control label (or a model's control prediction) alone. Leakage is judged against
  this floor, not against chance.
* **MDL** (:func:`online_code_length`): online (prequential) code length of ``q`` given ``Z``.
* **Engines**: ``engine="sklearn"`` is the reference: every probe fitted on its own with
  scikit-learn. ``engine="batched"`` fits the logistic, mlp and knn kinds with every fold
  seed x outer fold x inner fold x grid point as one torch model
  (:mod:`fairsearch.probes.batched`); ``engine="auto"`` (the default) batches the
  kinds whose batched form is the faster on the device (:func:`batched_kinds`: all three
  on a GPU, none on a CPU, where scikit-learn is the faster), the others stay scikit-learn.
  Majority, gbt and svm are scikit-learn everywhere; gbt always boosts its ``GBT_ROUNDS``
  rounds (its own early stopping, tried, stopped a weakly leaking representation's gbt about
  0.02 balanced accuracy short of the full 60 rounds). Folds, grids, selection and every
  statistic are the same in all engines.
"""

from __future__ import annotations

from fairsearch.probes.ladder._crossfit import (
    CrossFit,
    batched_kinds,
    cross_fit,
    fit_kinds,
    outer_folds,
)
from fairsearch.probes.ladder._factory import (
    GBT_ROUNDS,
    SVM_MAX_ROWS,
    TUNE_FOLDS,
    kind_grid,
    make_probe,
    rows_per_class,
)
from fairsearch.probes.ladder._floor import floor_from_labels
from fairsearch.probes.ladder._inputs import ENGINES, Engine, validate_inputs
from fairsearch.probes.ladder._mdl import MDL_BLOCKS, MDLResult, online_code_length
from fairsearch.probes.ladder._result import COLUMNS, LadderResult, ladder_result, run_ladder
from fairsearch.probes.ladder._scoring import balanced_accuracy, bootstrap_ci
from fairsearch.probes.ladder._selection import (
    WorstCase,
    nested_selection,
    refined_kinds,
    select_worst,
    worst_case,
)

__all__ = [
    "COLUMNS", "ENGINES", "GBT_ROUNDS", "MDL_BLOCKS", "SVM_MAX_ROWS", "TUNE_FOLDS", "CrossFit",
    "Engine", "LadderResult", "MDLResult", "WorstCase", "balanced_accuracy",
    "batched_kinds", "bootstrap_ci", "cross_fit", "fit_kinds", "floor_from_labels", "kind_grid",
    "ladder_result", "make_probe", "nested_selection", "online_code_length", "outer_folds",
    "refined_kinds", "rows_per_class", "run_ladder", "select_worst", "validate_inputs", "worst_case",
]
