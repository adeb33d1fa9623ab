"""Every probe the audit knows, and what its probes and metrics are called where a person reads
them: the one place a probe name, label, description or cost is written.

A probe *kind* is one rung of the audit ladder (:mod:`fairsearch.probes.ladder`): its name, the
label people read, a line on what it catches, and the relative cost of cross-fitting it.
:data:`PROBE_KINDS` lists them weakest first; the spec's ``post.probes``, the translator's
``model.leak_probes``, the report's column order and the audit all read it. :data:`PROBES` adds
the other values of an audit table's ``probe`` column (the worst case, the floor, MDL...);
:data:`AUDIT_METRICS` gives its ``metric`` column. The metrics a model family reports are declared
by the family itself (:attr:`fairsearch.families.ModelFamily.metric_info`). The report reads both;
it keeps no names of its own.

Importable without torch or scikit-learn: the spec checks ``post.probes`` with it before anything
is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AUDIT_METRICS", "BASELINE_KIND", "KINDS", "PROBES", "PROBE_CHOICES", "PROBE_KINDS",
           "ProbeKind", "Term", "by_cost"]


@dataclass(frozen=True)
class Term:
    """A name as a person reads it, and a line or two on what it means."""

    label: str
    description: str = ""


@dataclass(frozen=True)
class ProbeKind(Term):
    """A kind of probe the ladder fits. ``cost``: how costly one cross-fit of it is, relative
    to the others (0 the cheapest); ``batched``: whether it has a batched torch form
    (:mod:`fairsearch.probes.batched`)."""

    cost: int = 0
    batched: bool = False


#: The probe kinds of the ladder, weakest first (ties in the nested selection go to the earlier
#: kind). Costs of one unit on the main job, one thread: gbt 14 s, mlp 5 s, knn and logistic
#: 0.5 s; the svm grows with the rows.
KINDS: dict[str, ProbeKind] = {
    "majority": ProbeKind("majority", "Probe that always predicts the most frequent class of q "
                          "(a sanity check)."),
    "logistic": ProbeKind("logistic", "Logistic regression on standardised features; catches "
                          "linear leakage.", batched=True),
    "mlp": ProbeKind("MLP", "A small neural network (one or two hidden layers), tuned by inner "
                     "cross-validation; non-linear leakage.", cost=1, batched=True),
    "gbt": ProbeKind("boosted trees", "Histogram gradient-boosted trees; non-linear leakage in "
                     "few features.", cost=3),
    "knn": ProbeKind("kNN", "k-nearest-neighbour classifier; local structure that reveals q.",
                     batched=True),
    "svm": ProbeKind("RBF-SVM", "RBF-kernel support vector machine; smooth non-linear leakage.",
                     cost=2),
}
#: The names of :data:`KINDS`, weakest first.
PROBE_KINDS: tuple[str, ...] = tuple(KINDS)
#: The kind every worst case includes, whatever a spec names (a sanity check).
BASELINE_KIND = "majority"
#: The kinds a spec chooses among (``post.probes``, ``model.leak_probes``): all but the baseline.
PROBE_CHOICES: tuple[str, ...] = tuple(k for k in PROBE_KINDS if k != BASELINE_KIND)


def by_cost(kind: str) -> int:
    """Sort key putting the costliest kinds first (stable among equal costs; a name that is no
    kind sorts with the cheapest, to be refused where it is fitted)."""
    return -KINDS[kind].cost if kind in KINDS else 0


#: The probes of an audit table's ``probe`` column: the kinds, then what else the audit writes.
PROBES: dict[str, Term] = {
    **{name: Term(kind.label, kind.description) for name, kind in KINDS.items()},
    "worst_case": Term("worst case", "The highest leak over probes, the probe chosen on "
                       "separate rows so the pick does not inflate the score (no winner's "
                       "curse); the audit's headline."),
    "certified_bound": Term("certified bound", "Upper bound on the balanced accuracy of any "
                            "classifier predicting q from a discrete (quantized) "
                            "representation, holding with probability 0.95 over the held-out "
                            "rows; absent where the representation is not discrete."),
    "mdl": Term("online code", "Online (prequential) code length in bits of q given the "
                "representation; fewer bits than the uniform code means q is extractable."),
    "knn_mix": Term("kNN mix", "Fraction of each point's nearest neighbours sharing its q, "
                    "against the base rate of random neighbours."),
    "control_label": Term("from control label", "q predicted from the control label alone "
                          "(the floor)."),
    "control_prediction": Term("from control prediction", "q predicted from the original "
                               "representation's control prediction alone."),
    "kernel": Term("kernel", "Kernel dependence (CKA, HSIC) between the representation and a "
                   "continuous q, against a permutation baseline."),
    "ridge": Term("ridge", "Ridge regression of a continuous q."),
    "transfer_logistic": Term("transfer (logistic)", "A logistic probe fitted on the original "
                              "train embeddings, scored on the representation."),
    "model": Term("model's own prediction"),
    "leak_free": Term("leak-free control", "The worst-case probe on the same rows with q "
                      "shuffled: the smallest leak these rows can resolve."),
}

#: The metrics of an audit table's ``metric`` column.
AUDIT_METRICS: dict[str, Term] = {
    "balanced_accuracy": Term("balanced accuracy", "Mean per-class recall of q; chance is 1/K "
                              "whatever the class balance."),
    "f1": Term("F1", "F1 of class 1 (binary) or macro F1; chance is the F1 of always guessing "
               "class 1."),
    "roc_auc": Term("ROC-AUC", "Area under the ROC curve of the probe's scores; chance 0.5."),
    "r2": Term("R²", "Coefficient of determination of a continuous q; chance 0."),
    "same_q_fraction": Term("same-q neighbour fraction"),
    "mdl_bits": Term("online code length (bits)"),
    "compression": Term("compression (uniform bits / online bits)", "1 means the code learns "
                        "nothing about q from the representation."),
    "cka": Term("CKA(output, q)"),
    "hsic": Term("HSIC(output, q)"),
    "demographic_parity_difference": Term("demographic-parity difference", "Largest gap between "
                                          "groups of q in the rate of positive control "
                                          "predictions (0 = equal rates)."),
    "equalized_odds_difference": Term("equalized-odds difference", "Largest gap between groups "
                                      "of q in true- or false-positive rate of the control "
                                      "predictions."),
    "held_out_rows": Term("held-out rows"),
    "ci_half_width": Term("interval half-width of a leak-free representation"),
    "rows_to_resolve": Term("held-out rows to resolve the margin"),
    "fold_seeds": Term("fold seeds cross-fitted", "Fewer than the audit's when successive "
                       "halving stopped refining a probe kind far below the worst case."),
    "accuracy": Term("accuracy"),
    "mse": Term("MSE"),
}
