"""The embedding translator family: frozen embeddings -> fair embeddings.

* :class:`Translator` — auto-encoder with a control head and a fairness loss (adversarial,
  gradient reversal, negative cross-entropy, CKA, HSIC, linear CKA, ``linear_guard``: the
  whitened cross-covariance with ``q``, zero when the output is linearly guarded; ``mmd`` /
  ``conditional_mmd``: multi-bandwidth RBF MMD between the groups, overall or within each
  control class);
  :func:`train_and_evaluate` is the search engine's entry point; :func:`save_translator` / :func:`load_translator` persist a fitted one.
* :class:`LeaceTranslator` — the closed-form LEACE baseline with the same interface.
* :func:`probe_scores` — fresh evaluation probes (logistic, MLP, gradient boosting);
  :func:`control_floor` — how much of ``q`` the control label alone predicts.
* :mod:`fairsearch.translator.base_network` — unfair embeddings from a base network on Adult;
  :mod:`fairsearch.translator.names` — first-name embeddings from a frozen sentence encoder.
"""

from __future__ import annotations

from fairsearch.translator._io import load_translator, save_translator
from fairsearch.translator._leace import LeaceTranslator
from fairsearch.translator._losses import (
    FAIRNESS_CHOICES,
    conditional_mmd,
    fairness_term,
    linear_guard,
    mmd_rbf,
    reconstruction_loss,
)
from fairsearch.translator._model import TranslatorNet, grad_reverse, parse_bottleneck
from fairsearch.translator._probes import (
    PROBE_KINDS,
    classification_scores,
    control_floor,
    probe_scores,
)
from fairsearch.translator._train import Translator
from fairsearch.translator._trial import CONFIG_KEYS, METRICS, train_and_evaluate

__all__ = [
    "CONFIG_KEYS",
    "FAIRNESS_CHOICES",
    "METRICS",
    "PROBE_KINDS",
    "LeaceTranslator",
    "Translator",
    "TranslatorNet",
    "classification_scores",
    "conditional_mmd",
    "control_floor",
    "fairness_term",
    "grad_reverse",
    "linear_guard",
    "load_translator",
    "mmd_rbf",
    "parse_bottleneck",
    "probe_scores",
    "reconstruction_loss",
    "save_translator",
    "train_and_evaluate",
]
