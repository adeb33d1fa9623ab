"""Does a representation leak a protected attribute? :func:`audit`, and the judgement it shares
with the report.

:func:`audit` runs the audit of :mod:`fairsearch.analysis.audit.representations` (the probe
ladder cross-fitted on every row, the floor when a control label is given, the online code length)
on one array of the user's own and returns a frozen :class:`AuditResult`. The run's audit stage
calls the same :func:`~fairsearch.analysis.audit.representations.audit_representations`, and the report's verdict judges each
model's worst case with the same :func:`headline` and :func:`judge_leak`, so a notebook and a run
folder give the same answer for the same rows. No Ray here.

Judgement (``ref`` = the floor when measured and above chance, else chance; ``MARGIN`` =
0.05):

* **fails**: the worst-case probe's interval lies entirely above ``ref + MARGIN``;
* **borderline**: the interval straddles ``ref + MARGIN``;
* **passes**: the interval stays below ``ref + MARGIN``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairsearch.analysis.audit.given_label import TARGET as GIVEN_LABEL
from fairsearch.analysis.audit.representations import audit_representations, q_kind_of
from fairsearch.analysis.audit.units import LADDER_FOLDS, LADDER_REPEATS
from fairsearch.probes.interval import Interval
from fairsearch.probes.ladder import rows_per_class
from fairsearch.probes.registry import AUDIT_METRICS, PROBE_KINDS, PROBES

__all__ = ["MARGIN", "AuditResult", "Leak", "audit", "floor_of", "headline", "judge_leak",
           "leak_metric", "leak_sentence", "relation"]

#: How far above the floor (or chance) the worst-case probe may reach and still count as fair.
MARGIN = 0.05
LeakStatus = Literal["passes", "borderline", "fails"]
#: The model name :func:`audit` gives the user's representation in its table.
MODEL = "Z"


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return None
    return v if v != "" else None


@dataclass(frozen=True)
class Leak:
    """The audit's headline for one model: the worst case over probes on ``q``."""

    model: str
    metric: str  # balanced_accuracy (categorical q) or r2 (continuous q)
    probe: str  # "worst_case" or, in audits without one, the strongest single probe
    selected: str | None  # the probe the worst case picked, when the audit names it
    value: float
    ci_low: float
    ci_high: float
    chance: float
    floor: float | None

    @property
    def reference(self) -> float:
        """The floor when it was measured and lies above chance, else chance (never below)."""
        return max(self.chance, self.floor) if self.floor is not None else self.chance

    @property
    def reference_name(self) -> str:
        return "floor" if self.floor is not None and self.floor >= self.chance else "chance"


def relation(lo: float, hi: float, level: float) -> str:
    """Where an interval sits against a level: ``above``, ``below`` or ``contains``."""
    if lo > level:
        return "above"
    if hi < level:
        return "below"
    return "contains"


def floor_of(audit: pd.DataFrame, rows: pd.DataFrame | None = None) -> float | None:
    """The floor: the row's own ``floor`` column, else the ``floor`` model's control-label row."""
    if rows is not None and "floor" in rows and rows["floor"].notna().any():
        return float(rows["floor"].dropna().iloc[0])
    fl = audit[(audit["model"] == "floor") & (audit["target"] == "q")
               & (audit["metric"] == "balanced_accuracy")]
    if len(fl):
        pick = fl[fl["probe"] == "control_label"] if (fl["probe"] == "control_label").any() else fl
        return float(pick["value"].iloc[0])
    if "floor" in audit and audit["floor"].notna().any():
        return float(audit["floor"].dropna().iloc[0])
    return None


def leak_metric(audit: pd.DataFrame) -> str:
    """The audit's leak score: balanced accuracy for a categorical q, R² for a continuous one."""
    q = audit[audit["target"] == "q"]
    return "balanced_accuracy" if (q["metric"] == "balanced_accuracy").any() else "r2"


def headline(audit: pd.DataFrame, model: str) -> Leak | None:
    """The worst-case row of ``model`` on ``q`` (balanced accuracy, or R² for a continuous q);
    without one, the strongest single probe (an optimistic pick, named as such by its probe).
    In the audit of a run whose criterion conditions on the label (rows of ``q_given_y``), the
    worst class of the label instead, judged against chance (no floor: the label is given)."""
    given = audit[(audit["model"] == model) & (audit["target"] == GIVEN_LABEL)
                  & (audit["probe"] == "worst_class")]
    if len(given):
        r = given.iloc[0]
        return Leak(model, "balanced_accuracy", "worst_class", _plain(r["selected"]),
                    float(r["value"]), float(r["ci_low"]), float(r["ci_high"]), float(r["chance"]),
                    None)  # fmt: skip
    metric = leak_metric(audit)
    rows = audit[(audit["model"] == model) & (audit["target"] == "q")
                 & (audit["metric"] == metric)]
    if not len(rows):
        return None
    worst = rows[rows["probe"] == "worst_case"]
    r = worst.iloc[0] if len(worst) else rows.sort_values("value").iloc[-1]
    selected = _plain(r["selected"]) if "selected" in r.index else None
    return Leak(model, metric, str(r["probe"]), selected, float(r["value"]), float(r["ci_low"]),
                float(r["ci_high"]), float(r["chance"]), floor_of(audit, rows))


def probe_name(leak: Leak) -> str:
    if leak.probe == "worst_class":
        return f"the worst-case probe within the label's worst class ({leak.selected})"
    return "the worst-case probe" if leak.probe == "worst_case" else (
        f"the strongest probe ({leak.probe})")


def judge_leak(leak: Leak) -> tuple[LeakStatus, str]:
    """``fails`` / ``borderline`` / ``passes`` for ``leak`` against its reference + MARGIN, and
    the sentence that says why."""
    bound, ref = leak.reference + MARGIN, leak.reference_name
    where = relation(leak.ci_low, leak.ci_high, bound)
    ci = f"[{leak.ci_low:.3f}, {leak.ci_high:.3f}]"
    if where == "above":
        return "fails", (f"{probe_name(leak)} recovers q: its interval {ci} lies above {ref} + "
                         f"{MARGIN:g} = {bound:.3f}")
    if where == "contains":
        return "borderline", (f"the interval of {probe_name(leak)} {ci} straddles {ref} + "
                              f"{MARGIN:g} = {bound:.3f}")
    return "passes", f"the interval of {probe_name(leak)} stays below {ref} + {MARGIN:g} = {bound:.3f}"


def leak_sentence(leak: Leak) -> str:
    """The headline probe against chance and the floor, in words the interval allows."""
    given = leak.probe == "worst_class"
    name = "worst case over probes" if leak.probe == "worst_case" else (
        f"worst case over probes within each class of the label; worst class {leak.selected}"
        if given else f"strongest single probe ({leak.probe}; no worst-case row in this audit)")
    if leak.selected and not given:
        name += f", selected probe {_label(leak.selected)}"
    label = AUDIT_METRICS[leak.metric].label if leak.metric in AUDIT_METRICS else leak.metric
    on = "on q given the label" if given else "on q"
    parts = [f"{leak.value:.3f} [{leak.ci_low:.3f}, {leak.ci_high:.3f}] {label} {on} ({name})"]
    parts.append(f"interval {relation(leak.ci_low, leak.ci_high, leak.chance)} chance "
                 f"{leak.chance:.3f}")
    if leak.floor is not None:
        parts.append(f"interval {relation(leak.ci_low, leak.ci_high, leak.floor)} the floor "
                     f"{leak.floor:.3f}")
    else:
        parts.append("the label given, no floor" if given else "no floor measured")
    return "; ".join(parts)


# ---------------------------------------------------------------------------- the result
@dataclass(frozen=True, eq=False, repr=False)
class AuditResult:
    """What :func:`audit` found. ``str()`` gives a summary to read in a notebook.

    ``table``: one tidy row per number (``model`` = ``"Z"`` for the representation, ``"floor"``
    for the label-only rows), columns as in ``audit.parquet``. ``worst_case``: the headline, the
    probe it selected, its interval, chance and floor. ``floor``: the balanced accuracy of
    ``q`` from ``y`` alone (``None`` without ``y``). ``mdl_bits`` / ``uniform_bits``: the online
    code length of ``q`` given ``Z`` and of the uniform code (categorical ``q``). ``status`` and
    ``reasons``: the judgement against the floor (or chance) + :data:`MARGIN`.
    """

    table: pd.DataFrame
    worst_case: Leak
    floor: Interval | None
    mdl_bits: float | None
    uniform_bits: float | None
    status: LeakStatus
    reasons: tuple[str, ...]
    n_rows: int
    n_classes: int | None

    @property
    def selected(self) -> str | None:
        """The probe the worst case selected most often."""
        return self.worst_case.selected

    @property
    def probes(self) -> pd.DataFrame:
        """Each probe's value and interval on ``q`` (the leak metric), worst case last."""
        t = self.table
        rows = t[(t["model"] == MODEL) & (t["target"] == "q")
                 & (t["metric"] == self.worst_case.metric)]
        return rows[["probe", "value", "ci_low", "ci_high", "chance"]].reset_index(drop=True)

    def __str__(self) -> str:
        w = self.worst_case
        classes = f"q with {self.n_classes} classes" if self.n_classes else "a continuous q"
        label = AUDIT_METRICS[w.metric].label if w.metric in AUDIT_METRICS else w.metric
        picked = f" (selected probe: {_label(w.selected)})" if w.selected else ""
        lines = [f"fairsearch audit: {self.status.upper()} — {self.n_rows} rows, {classes}",
                 f"  worst case   {w.value:.3f} [{w.ci_low:.3f}, {w.ci_high:.3f}] {label} "
                 f"of q{picked}",
                 f"  chance       {w.chance:.3f}  ({_where(w.ci_low, w.ci_high, w.chance)})"]
        if self.floor is not None:
            f = self.floor
            lines.append(f"  floor        {f.value:.3f} [{f.ci_low:.3f}, {f.ci_high:.3f}] q from y "
                         f"alone  ({_where(w.ci_low, w.ci_high, f.value)})")
        if self.mdl_bits is not None and self.uniform_bits is not None:
            lines.append(f"  online code  {self.mdl_bits:.1f} bits for q given Z (uniform code "
                         f"{self.uniform_bits:.1f} bits)")
        lines.append("  probes       " + " · ".join(
            f"{_label(r.probe)} {r.value:.3f}" for r in self.probes.itertuples()))
        lines += [f"  why          {r}" for r in self.reasons]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def _label(probe: str | None) -> str:
    return PROBES[probe].label if probe in PROBES else str(probe)


def _where(lo: float, hi: float, level: float) -> str:
    """Where the worst case's interval ``[lo, hi]`` lies relative to ``level``, as a clause."""
    return {"above": "the interval is above it", "below": "the interval is below it",
            "contains": "the interval contains it"}[relation(lo, hi, level)]


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, but got {value!r}")
    return int(value)


def _fold_seeds(fold_seeds: Any, seeds: Any) -> int:
    """The checked fold seed count, from ``seeds`` (its deprecated name) when that is given."""
    if seeds is None:
        return _check_int("fold_seeds", fold_seeds, 1)
    warnings.warn("`seeds` of fairsearch.audit is deprecated: it counts fold seeds; pass "
                  "`fold_seeds=` instead", DeprecationWarning, stacklevel=3)
    return _check_int("seeds", seeds, 1)


def _check_class_rows(q: np.ndarray, probes: Sequence[str]) -> None:
    """``ValueError`` naming the rows per class the ladder needs, when a class of a categorical
    ``q`` has fewer (instead of scikit-learn's failed fits deep in the cross-fitting)."""
    if q_kind_of(q) != "categorical":
        return
    classes, counts = np.unique(q, return_counts=True)
    need = rows_per_class(probes, LADDER_FOLDS)
    if counts.min() < need:
        small = ", ".join(f"{c!r}: {n}" for c, n in zip(classes.tolist(), counts.tolist(), strict=True)
                          if n < need)  # fmt: skip
        raise ValueError(
            f"every class of `q` needs at least {need} rows for probes {list(probes)} "
            f"({LADDER_FOLDS} outer folds, each probe tuned on inner folds), but got {len(q)} rows "
            f"with too few in class(es) {{{small}}}; pass more rows, or probes without 'mlp' "
            f"(they need {rows_per_class(('logistic',), LADDER_FOLDS)} rows a class)")


def audit(
    Z: Any,
    q: Any,
    *,
    y: Any = None,
    probes: Sequence[str] = PROBE_KINDS,
    fold_seeds: int = LADDER_REPEATS,
    n_boot: int = 1000,
    random_state: int = 0,
    seeds: int | None = None,
) -> AuditResult:
    """Audit a representation ``Z`` (n × d) for what it reveals about ``q`` (n,).

    Every probe of ``probes`` (default: majority, logistic, MLP, boosted trees, kNN,
    RBF-SVM) is cross-fitted over all rows, once per fold seed (``fold_seeds`` of them, from
    ``random_state``; ``seeds``, its former name, still works with a ``DeprecationWarning``); the worst case over them is chosen on inner folds (no winner's curse) and
    has a bootstrap interval of ``n_boot`` resamples that includes the probe-fit variance.
    With the control labels ``y`` (categorical) the floor, what ``y`` itself says about ``q``, is
    the reference instead of chance. A continuous ``q`` gets kernel dependence and regression
    probes (R²). Keyword arguments only after ``Z`` and ``q``, as in fairlearn.
    """
    fold_seeds = _fold_seeds(fold_seeds, seeds)
    n_boot = _check_int("n_boot", n_boot, 1)
    _check_int("random_state", random_state, 0)
    if isinstance(probes, str):
        raise ValueError(f"`probes` must be a list of names from {list(PROBE_KINDS)}, "
                         f"but got the string {probes!r}")
    unknown = [p for p in probes if p not in PROBE_KINDS]
    if unknown:
        raise ValueError(f"`probes` must name probes from {list(PROBE_KINDS)}, but got {unknown}")
    Z = np.asarray(Z)
    q = np.asarray(q)
    if Z.ndim == 1:
        Z = Z.reshape(-1, 1)
    if Z.ndim != 2 or Z.dtype.kind not in "iufb":
        raise ValueError(f"`Z` must be a numeric 2-D array (n rows × d features), but got shape "
                         f"{Z.shape} of dtype {Z.dtype}")
    if q.shape[0] != Z.shape[0] or (y is not None and len(y) != Z.shape[0]):
        raise ValueError(f"`Z`, `q` and `y` must have one row each per sample, but got "
                         f"{Z.shape[0]}, {q.shape[0]} and {None if y is None else len(y)} rows")
    _check_class_rows(q, probes)
    table = audit_representations({MODEL: Z}, q, y=y, probes=tuple(probes), n_boot=n_boot,
                                  seed=random_state, repeats=fold_seeds)
    leak = headline(table, MODEL)
    assert leak is not None  # the audit always scores q
    status, why = judge_leak(leak)
    reasons = [why]
    half = (leak.ci_high - leak.ci_low) / 2
    if half > MARGIN:
        reasons.append(f"{len(q)} rows resolve a leak only to ± {half:.3f}, coarser than the "
                       f"margin {MARGIN:g}: more rows would sharpen the judgement")
    floor = None
    fl = table[(table["model"] == "floor") & (table["probe"] == "control_label")]
    if len(fl):
        r = fl.iloc[0]
        floor = Interval(float(r["value"]), float(r["ci_low"]), float(r["ci_high"]))
    mdl = table[(table["model"] == MODEL) & (table["metric"] == "mdl_bits")]
    mdl_bits = float(mdl["value"].iloc[0]) if len(mdl) else None
    uniform = float(mdl["chance"].iloc[0]) if len(mdl) else None
    n_classes = round(1 / leak.chance) if leak.metric == "balanced_accuracy" else None
    return AuditResult(table, leak, floor, mdl_bits, uniform, status, tuple(reasons), len(q),
                       n_classes)
