"""The data card (what q and the control label are, their classes and balance, split sizes) and
the glossary (each probe, metric and term in a line or two)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fairsearch.probes.registry import AUDIT_METRICS, PROBES

__all__ = ["GLOSSARY", "data_card", "glossary_entries"]

GLOSSARY: dict[str, str] = {
    "q": "The protected attribute (e.g. race, sex): what the representation should not reveal.",
    "control label": "The task to keep (the target y): the representation must still predict it.",
    "#N": "A configuration, named by its Optuna trial number everywhere (tables, plots, folders "
          "retrain/trial-N/seed-S).",
    "seed mean ± std": "Each chosen configuration is retrained with several seeds; ± is the "
                       "standard deviation over seeds (ddof = 0).",
    "robust front": "The configurations not dominated on their seed means (the search front "
                    "uses single runs).",
    "unstable": "A configuration whose objective varies over seeds by more than 25% of its range "
                "in the search, whose seeds fail differently, or whose rule holds for some seeds "
                "only.",
    "chance": "The score of a trivial guess: balanced accuracy 1/K for K classes of q.",
    "floor": "Balanced accuracy of q predicted from the control label alone: a representation "
             "that keeps the control task must leak at least this much.",
    "worst case": "The highest leak over probes, the probe chosen on separate rows so "
                  "the pick does not inflate the score (no winner's curse); the audit's headline.",
    "LEACE": "Closed-form erasure of all linear information about q (a strong baseline).",
    "original": "The untouched features or embeddings: the leak before any treatment.",
    "hypervolume": "The area (volume) of objective space dominated by the front and bounded by "
                   "the reference point; it grows as the front improves.",
    "reference point": "The corner that bounds the hypervolume: by default the worst observed "
                       "value of each objective moved 10% of its range further away.",
    "95% CI": "Percentile bootstrap interval over held-out rows; an interval that contains "
              "chance is not evidence of a leak.",
}


def glossary_entries(present: set[str]) -> list[tuple[str, str]]:
    """The always-relevant terms, then the probes and audit metrics that occur in this run (by
    their labels, explained where :mod:`fairsearch.probes.registry` defines them), then the
    other terms that occur."""
    always = ["q", "control label", "#N", "seed mean ± std", "robust front", "unstable",
              "chance", "floor", "worst case", "95% CI", "hypervolume", "reference point"]
    out = [(k, GLOSSARY[k]) for k in always]
    seen = {label for label, _ in out}
    for terms in (PROBES, AUDIT_METRICS):
        for name, term in terms.items():
            if name in present and term.description and term.label not in seen:
                out.append((term.label, term.description))
                seen.add(term.label)
    out += [(k, GLOSSARY[k]) for k in GLOSSARY if k not in seen and k in present]
    return out


def _balance(values: np.ndarray, split: np.ndarray, names: tuple[str, ...] | None) -> list[str]:
    v = np.asarray(values).reshape(len(split), -1)
    if v.shape[1] > 1 or (v.dtype.kind == "f" and len(np.unique(v)) > 10):
        return [f"continuous ({v.shape[1]} column{'s' if v.shape[1] > 1 else ''}): mean "
                f"{float(v.mean()):.3g}, std {float(v.std()):.3g}"]
    codes = v.ravel()
    out = []
    for c in np.unique(codes):
        name = names[int(c)] if names and int(c) < len(names) else str(c)
        counts = {p: int(((codes == c) & (split == p)).sum()) for p in ("train", "val", "test")}
        share = float((codes == c).mean())
        out.append(f"{name}: {share:.1%} (train {counts['train']}, val {counts['val']}, "
                   f"test {counts['test']})")
    return out


def data_card(data: Any) -> list[tuple[str, str]]:
    """(field, value) rows describing a ``Dataset``."""
    split = np.asarray(data.split).astype(str)
    sizes = data.split_counts()
    val = (f"{sizes['val']}" if sizes["val"] else
           "0 (a seeded 25% of the train rows is held out for validation)")
    rows = [("dataset", str(data.name)), ("task", str(data.task)),
            ("rows", f"{data.n} × {data.d} features"),
            ("split sizes", f"train {sizes['train']}, validation {val}, test {sizes['test']}")]
    rows += [("control label classes" if data.task == "classification" else "control label",
              "; ".join(_balance(data.y, split, data.classes.get("y"))))]
    rows += [(f"q ({data.q_kind})", "; ".join(_balance(data.q, split, data.classes.get("q"))))]
    for name, values in data.extras.items():
        rows.append((f"extra label {name}", "; ".join(_balance(values, split,
                                                               data.classes.get(name)))))
    return rows
