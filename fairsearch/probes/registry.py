"""What the audit's probes and metrics are called where a person reads them.

The audit (:mod:`fairsearch.analysis.audit.stage`, :mod:`fairsearch.probes.ladder`) names each row
by a ``probe`` and a ``metric``; this module gives each name its label and a line of
explanation. The metrics a model family reports are declared by the family itself
(:attr:`fairsearch.families.ModelFamily.metric_info`). The report reads both; it keeps no names
of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AUDIT_METRICS", "PROBES", "Term"]


@dataclass(frozen=True)
class Term:
    """A name as a person reads it, and a line or two on what it means."""

    label: str
    description: str = ""


#: The probes of an audit table's ``probe`` column.
PROBES: dict[str, Term] = {
    "majority": Term("majority", "Probe that always predicts the most frequent class of q "
                     "(a sanity check)."),
    "logistic": Term("logistic", "Logistic regression on standardised features; catches linear "
                     "leakage."),
    "mlp": Term("MLP", "A small neural network (one or two hidden layers), tuned by inner "
                "cross-validation; non-linear leakage."),
    "gbt": Term("boosted trees", "Histogram gradient-boosted trees; non-linear leakage in few "
                "features."),
    "knn": Term("kNN", "k-nearest-neighbour classifier; local structure that reveals q."),
    "svm": Term("RBF-SVM", "RBF-kernel support vector machine; smooth non-linear leakage."),
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
    "floor_y": Term("from control label", "q predicted from the control label alone."),
    "floor_y_pred": Term("from control prediction", "q predicted from a model's control "
                         "prediction alone."),
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
                       "halving stopped refining a family far below the worst case."),
    "accuracy": Term("accuracy"),
    "mse": Term("MSE"),
}
