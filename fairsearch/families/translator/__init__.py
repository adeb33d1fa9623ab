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

from typing import TYPE_CHECKING

from fairsearch._lazy import lazy_exports

if TYPE_CHECKING:
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

#: Imported on first use: the spec reads the family's options (``family``) without torch.
_T = "fairsearch.families.translator."
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("conditional_sw", "sliced_wasserstein"), _T + "_group"),
    **dict.fromkeys(("load_translator", "save_translator"), _T + "_io"),
    "LeaceTranslator": _T + "_leace",
    **dict.fromkeys(("FAIRNESS_CHOICES", "conditional_mmd", "fairness_term", "linear_guard",
                     "mmd_rbf", "reconstruction_loss"), _T + "_losses"),
    **dict.fromkeys(("TranslatorNet", "grad_reverse", "parse_bottleneck"), _T + "_model"),
    **dict.fromkeys(("Codebook", "cell_balance"), _T + "_quantize"),
    "Translator": _T + "_train",
    **dict.fromkeys(("CONFIG_KEYS", "METRICS", "TranslatorFamily"), _T + "family"),
})  # fmt: skip
