"""The search engine's entry point for the translator family: one config -> validation metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fairsearch.dependence import cka_score
from fairsearch.translator._leace import LeaceTranslator
from fairsearch.translator._probes import probe_scores
from fairsearch.translator._train import _DEFAULTS, Translator

__all__ = ["CONFIG_KEYS", "METRICS", "fit_translator", "train_and_evaluate"]

#: Keys a trial config may hold (``fairness`` may also be ``"leace"``).
CONFIG_KEYS: frozenset[str] = frozenset(set(_DEFAULTS) - {"epochs", "seed", "device"})
#: The metrics ``train_and_evaluate`` returns (all on the validation split).
METRICS: tuple[str, ...] = (
    "control_f1", "control_acc", "adversary_f1", "adversary_bacc", "reconstruction", "cka",
)  # fmt: skip
#: Rows used for the exact CKA metric (a seeded subsample beyond this, to keep trials fast).
CKA_MAX_ROWS = 3000


def _split(data: Any, seed: int) -> tuple[Any, Any]:
    from fairsearch.trial import split_train_val

    return split_train_val(data, seed)


def _check_data(data: Any) -> None:
    if data.task != "classification":
        raise ValueError(
            f"the translator needs a classification task (the control label), but dataset "
            f"{data.name!r} has task={data.task!r}"
        )
    if data.q_kind != "categorical" or np.asarray(data.q).ndim != 1:
        raise ValueError(
            f"the translator needs one categorical protected attribute, but dataset {data.name!r} "
            f"has q_kind={data.q_kind!r} with shape {np.asarray(data.q).shape}"
        )


def _cka(Z: np.ndarray, q: np.ndarray, seed: int) -> float:
    if len(q) > CKA_MAX_ROWS:
        idx = np.random.default_rng(seed).choice(len(q), CKA_MAX_ROWS, replace=False)
        Z, q = Z[idx], q[idx]
    return cka_score(Z, q.astype(np.float64), kernel_y="delta")


def train_and_evaluate(
    model: str,
    config: dict[str, Any],
    data: Any,
    settings: Any,
    report: Callable[[dict[str, float]], None],
) -> dict[str, float]:
    """Train one translator config on ``data``'s train split, return validation metrics.

    ``settings`` gives ``epochs``, ``batch_size``, ``seed`` (and optionally ``device``); a
    ``batch_size`` in ``config`` overrides it. ``report`` gets each epoch's history row. Returns
    :data:`METRICS`: control F1/accuracy of the control head, F1 / balanced accuracy of a fresh
    logistic probe for ``q``, reconstruction MSE (standardised units) and ``cka_score`` of the
    translated validation embeddings vs ``q`` (delta kernel). Raises ``DivergenceError`` when
    training diverges.
    """
    if model != "translator":
        raise ValueError(f"model must be 'translator', but got {model!r}")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown translator config key(s) {unknown}; allowed: {sorted(CONFIG_KEYS)}")
    _check_data(data)
    seed = int(settings.seed)
    train, val = _split(data, seed)
    if config.get("fairness") == "leace":
        return _leace_trial(train, val, seed, report)
    return fit_translator(config, train, val, settings, report)[1]


def fit_translator(
    config: dict[str, Any],
    train: Any,
    val: Any,
    settings: Any,
    report: Callable[[dict[str, float]], None],
) -> tuple[Translator, dict[str, float]]:
    """Train the translator of ``config`` on ``train``; returns it and its :data:`METRICS` on ``val``."""
    seed = int(settings.seed)
    params = {k: v for k, v in config.items() if k in CONFIG_KEYS}
    params.setdefault("batch_size", int(settings.batch_size))
    for key in ("adversary_every", "adversary_width", "adversary_depth", "batch_size", "fair_rows",
                "adversary_steps", "adversary_count", "adversary_reset_every"):
        if key in params and isinstance(params[key], float) and params[key].is_integer():
            params[key] = int(params[key])
    tr = Translator(
        **params,
        epochs=int(settings.epochs),
        seed=seed,
        device=str(getattr(settings, "device", "cpu") or "cpu"),
    )
    tr.fit(train.X, train.y, q=train.q, E_val=val.X, y_val=val.y, q_val=val.q, on_epoch_end=report)
    last = tr.history_[-1]
    _, qv = np.unique(val.q, return_inverse=True)
    Zv = tr._translate_std(np.asarray(val.X, dtype=np.float32))
    out = {k: float(last[k]) for k in METRICS if k != "cka"}
    out["cka"] = _cka(Zv, qv, seed)
    return tr, out


def _leace_trial(train: Any, val: Any, seed: int, report: Callable[[dict[str, float]], None]) -> dict[str, float]:
    Xt, Xv = np.asarray(train.X, np.float32), np.asarray(val.X, np.float32)
    er = LeaceTranslator().fit(Xt, train.y, q=train.q)
    Zt, Zv = er.transform(Xt), er.transform(Xv)
    mean, scale = Xt.mean(0), np.maximum(Xt.std(0), 1e-6)
    ctrl = probe_scores(Zt, train.y, Zv, val.y, seed=seed)
    adv = probe_scores(Zt, train.q, Zv, val.q, seed=seed)
    out = {
        "control_f1": ctrl["f1"],
        "control_acc": ctrl["acc"],
        "adversary_f1": adv["f1"],
        "adversary_bacc": adv["bacc"],
        "reconstruction": float(np.mean(((Zv - Xv) / scale) ** 2)),
        "cka": _cka((Zv - mean) / scale, np.unique(val.q, return_inverse=True)[1], seed),
    }
    report({"epoch": 0.0, **out})
    return out
