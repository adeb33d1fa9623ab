"""The embedding translator family: frozen embeddings -> fair embeddings.

* :class:`Translator` — auto-encoder with a control head and a fairness loss (adversarial,
  gradient reversal, negative cross-entropy, CKA, HSIC, linear CKA, ``linear_guard``: the
  whitened cross-covariance with ``q``, zero when the output is linearly guarded; ``mmd`` /
  ``conditional_mmd``: multi-bandwidth RBF MMD between the groups, overall or within each
  control class; ``conditional_sw``: sliced Wasserstein within each control class);
  options ``quantize: K`` (the output is one of ``K`` decoded codebook cells, the groups balanced
  within each cell and control class, so the audit can bound any classifier) and ``q_input``
  (the encoder reads ``q``: needs ``q`` at encoding time);
  :class:`TranslatorFamily` is its :class:`~fairsearch.families.ModelFamily`;
  :func:`save_translator` / :func:`load_translator` persist a fitted one.
* :class:`LeaceTranslator` — the closed-form LEACE baseline with the same interface.
"""

from __future__ import annotations

from fairsearch.families.translator._group import conditional_sw, sliced_wasserstein
from fairsearch.families.translator._io import load_translator, save_translator
from fairsearch.families.translator._leace import LeaceTranslator
from fairsearch.families.translator._losses import (
    FAIRNESS_CHOICES,
    conditional_mmd,
    fairness_term,
    linear_guard,
    mmd_rbf,
    reconstruction_loss,
)
from fairsearch.families.translator._model import TranslatorNet, grad_reverse, parse_bottleneck
from fairsearch.families.translator._quantize import Codebook, cell_balance
from fairsearch.families.translator._train import Translator
from fairsearch.families.translator.family import CONFIG_KEYS, METRICS, TranslatorFamily

__all__ = [
    "CONFIG_KEYS",
    "Codebook",
    "FAIRNESS_CHOICES",
    "METRICS",
    "LeaceTranslator",
    "Translator",
    "TranslatorNet",
    "cell_balance",
    "conditional_mmd",
    "conditional_sw",
    "fairness_term",
    "grad_reverse",
    "linear_guard",
    "load_translator",
    "mmd_rbf",
    "parse_bottleneck",
    "reconstruction_loss",
    "save_translator",
    "sliced_wasserstein",
    "TranslatorFamily",
]
