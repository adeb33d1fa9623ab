"""Batched probes: every independent fit of a ladder kind trained as one torch model.

The ladder (:mod:`fairsearch.probes.ladder`) fits, for one representation ``Z``, each kind once
per fold seed ``r`` x outer fold ``j`` x inner fold (or refit) x grid point. Those fits are
independent of one another, so :func:`batched_cross_fits` stacks them as *members* of one model
(:class:`BatchMember`): weights ``[M, in, out]``, one forward pass over the stack, every member's
parameters, gradients, optimizer state, random stream, rows and class weights its own. A
member's result does not depend on which other members share its batch. The scikit-learn probes
stay the reference: the same grids (read from :func:`~fairsearch.probes.ladder.kind_grid`), the
same stratified inner folds, the same selection rule (first best mean inner-CV balanced
accuracy, as ``GridSearchCV``), the same class balancing:

* ``logistic`` (:mod:`._logistic`): standardised inputs (per member, on its own training rows),
  L2-penalised logistic regression with balanced class weights (binary: one logit, else
  softmax), the objective of scikit-learn's ``LogisticRegression(C=...)`` solved to convergence
  by Newton-CG in float64, with a per-member Armijo line search.
* ``mlp`` (:mod:`._mlp`): the ladder's ``MLPClassifier``, its random numbers too (each member
  replays ``RandomState(random_state)`` in float64), so a member ends where its scikit-learn
  twin ends, up to rounding.
* ``knn`` (:mod:`._knn`): standardised distances computed in batches, uniform votes over the
  ``n_neighbors`` nearest training rows, prediction ``argmax p(k|z) / p(k)`` (the ladder's prior
  correction).

Fitting runs in two phases, as ``GridSearchCV`` does (:mod:`._members`): the inner-fold members
of every grid point, then, per outer fold, one refit of the grid point the inner folds chose.
Everything runs on ``device`` (a GPU when there is one).
"""

from __future__ import annotations

from fairsearch.probes.batched._members import (
    BATCHED_KINDS,
    BatchedFit,
    BatchMember,
    batched_cross_fits,
    fit_members,
)
from fairsearch.probes.batched._tensors import default_device

__all__ = ["BATCHED_KINDS", "BatchMember", "BatchedFit", "batched_cross_fits", "default_device",
           "fit_members"]
