"""The translator family: frozen embeddings -> fair embeddings, as one configuration of a search.

A configuration trains a :class:`Translator` (or, with ``fairness: leace``, fits the closed-form
LEACE eraser) on the train split. It is scored on another split by its control head and by fresh
probes for ``q`` on that split's translated rows, measured the way the audit measures leakage:
the fairness objective ``adversary_bacc`` is the nested-selection worst case of the audit's probe
ladder (:func:`fairsearch.probes.ladder.fresh.leak_scores`) over :data:`LEAK_PROBES` (a logistic, a
tuned MLP, boosted trees and kNN by default; ``model.leak_probes`` names others), each tuned on
inner folds and cross-fitted over :data:`LEAK_FOLDS` folds of the split's rows. Each family's own score
is kept as ``adversary_bacc_<family>``, so the results show which probe found a leak.

With ``q_input: true`` the translator reads ``q`` to translate: its outputs on a split are computed
with that split's ``q`` (the data owner knows it). With ``quantize: K`` its outputs take at most
``K`` values, and the audit bounds any classifier of them (:mod:`fairsearch.probes.bound`).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fairsearch.families._base import Member, ModelFamily, Outputs, Report, TrialSettings
from fairsearch.families._factory import call_factory
from fairsearch.families._metrics import Metric
from fairsearch.families.translator._objective import (
    LEAK_FOLDS,
    OBJECTIVE_GRIDS,
    given_label_leak,
    leak_engines,
)
from fairsearch.families.translator._options import DEFAULTS as _DEFAULTS
from fairsearch.families.translator._options import FAIRNESS_CHOICES, leace_available
from fairsearch.nets import ACTIVATIONS
from fairsearch.probes.registry import KINDS, PROBE_CHOICES

if TYPE_CHECKING:  # the methods import torch and the models: a spec is checked without them
    import torch

    from fairsearch.families.translator._leace import LeaceTranslator
    from fairsearch.families.translator._train import Translator

__all__ = ["CONFIG_KEYS", "LEAK_FOLDS", "LEAK_PROBES", "LEAK_PROBE_CHOICES", "METRICS",
           "OBJECTIVE_GRIDS", "TranslatorFamily", "leak_engines", "leak_probes"]

#: The fairness losses within each control class: what ``fairness.criterion: separation`` trains.
CONDITIONAL_LOSSES: tuple[str, ...] = ("conditional_mmd", "conditional_sw")


def _with_criterion(family: ModelFamily, config: Mapping[str, Any],
                    criterion: str) -> Mapping[str, Any]:  # fmt: skip
    """``config`` with the criterion's restricted parameters checked, and their defaults set
    where the configuration does not hold them."""
    out = dict(config)
    for key, allowed in family.criterion_choices(criterion).items():
        out.setdefault(key, allowed[0])
        if out[key] not in allowed:
            raise ValueError(f"`{key}` must be one of {', '.join(map(str, allowed))} under "
                             f"`fairness.criterion: {criterion}`, but got {out[key]!r}")
    return out


#: Keys a configuration may hold (``fairness`` may also be ``"leace"``).
CONFIG_KEYS: frozenset[str] = frozenset(set(_DEFAULTS) - {"epochs", "seed", "device"})
#: Probe kinds ``model.leak_probes`` may name: the audit ladder's (``majority`` is always added).
LEAK_PROBE_CHOICES: tuple[str, ...] = PROBE_CHOICES
#: Probe kinds behind ``adversary_bacc`` by default (``model.leak_probes`` names others): the
#: audit's, less the RBF-SVM for its cost (``benchmarks/bench_search_objective.py``).
LEAK_PROBES: tuple[str, ...] = tuple(k for k in LEAK_PROBE_CHOICES if k != "svm")
#: The metrics :meth:`TranslatorFamily.evaluate` may return (``adversary_bacc_<family>`` for
#: each family of the leak probes).
METRICS: tuple[str, ...] = (
    "control_f1", "control_acc", "adversary_f1", "adversary_bacc",
    *(f"adversary_bacc_{f}" for f in LEAK_PROBE_CHOICES), "reconstruction", "cka", "trivial",
)  # fmt: skip
#: The note an audit without the optional concept-erasure package gives.
LEACE_SKIPPED = ("the LEACE baseline is skipped: the optional concept-erasure package is not "
                 "installed (pip install 'fairsearch[leace]')")
#: ``model.batched``: whether :meth:`TranslatorFamily.fit_population` trains members that share
#: a population key as one batched model (:mod:`._population`). ``auto``: on a GPU only. On one
#: CPU thread the main job's spec (``benchmarks/bench_translator_population.py``, 4 seeds)
#: trained batched at 0.84x the configuration-seeds per CPU second of one member after another:
#: 1.29x with a mini-batch CKA term, 0.96x quantized and 0.62x with the linear guard, whose terms
#: run on every training row each step (the matrix products are the same either way, the stacked
#: ones are slower, and the guard's small solves run member by member).
BATCHED_CHOICES: tuple[str, ...] = ("auto", "always", "never")
#: Rows used for the exact CKA metric (a seeded subsample beyond this, to keep trials fast).
CKA_MAX_ROWS = 3000
_CHOICES: dict[str, tuple[Any, ...]] = {
    "fairness": (*FAIRNESS_CHOICES, "leace"),
    "activation": tuple(ACTIVATIONS),
    "adversary_loss": ("negative_ce", "confusion"),
    "lr_schedule": ("constant", "cosine"),
}
_INTEGERS = ("adversary_every", "adversary_width", "adversary_depth", "adversary_steps",
             "adversary_count", "adversary_reset_every", "batch_size", "fair_rows",
             "quantize")  # fmt: skip


def _cka(Z: np.ndarray, q: np.ndarray, seed: int) -> float:
    from fairsearch.measures.dependence import cka_score

    if len(q) > CKA_MAX_ROWS:
        idx = np.random.default_rng(seed).choice(len(q), CKA_MAX_ROWS, replace=False)
        Z, q = Z[idx], q[idx]
    return cka_score(Z, q.astype(np.float64), kernel_y="delta")


class TranslatorFamily(ModelFamily):
    name = "translator"
    usage: ClassVar[str] = "model.transform(X)"
    parameters: ClassVar[Mapping[str, tuple[Any, ...] | None]] = {
        k: _CHOICES.get(k) for k in sorted(CONFIG_KEYS)
    }
    metric_info: ClassVar[Mapping[str, Metric]] = {
        "control_f1": Metric("control F1", "maximize", "utility"),
        "control_acc": Metric("control accuracy", "maximize", "utility"),
        "reconstruction": Metric("reconstruction error", "minimize", "utility"),
        "adversary_f1": Metric("adversary F1", "minimize", "leakage"),
        "adversary_bacc": Metric("adversary balanced accuracy", "minimize", "leakage", True),
        "adversary_bacc_given_y": Metric("adversary balanced accuracy given the label (worst "
                                         "class)", "minimize", "leakage"),
        **{f"adversary_bacc_{f}": Metric(f"adversary balanced accuracy ({KINDS[f].label})",
                                         "minimize", "leakage", True)
           for f in LEAK_PROBE_CHOICES},
        "cka": Metric("CKA(output, q)", "minimize", "leakage"),
        "trivial": Metric("constant prediction (1 = yes)", "minimize", "check"),
        "loss": Metric("total loss", "minimize", "loss"),
        "control_loss": Metric("control loss", "minimize", "loss"),
        "fair_loss": Metric("fairness loss", "minimize", "loss"),
        "reconstruction_loss": Metric("reconstruction loss", "minimize", "loss"),
    }  # fmt: skip
    #: halving compares the validation control F1 and the fresh probe's balanced accuracy of
    #: q, which the translator measures at the rungs (``TrialSettings.rungs``) and the last epoch
    rung_terms: ClassVar[tuple[str, ...]] = ("control_f1", "adversary_bacc")
    baseline_labels: ClassVar[Mapping[str, str]] = {"original": "original", "leace": "LEACE"}
    model_options: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "leak_probes": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"enum": list(LEAK_PROBE_CHOICES)}},
        "batched": {"enum": list(BATCHED_CHOICES)},
    }

    def check_model_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(options)
        if "leak_probes" in out:
            out["leak_probes"] = list(leak_probes(out))
        if out.get("batched", "auto") not in BATCHED_CHOICES:
            raise ValueError(f"`model.batched` must be one of {list(BATCHED_CHOICES)}, but got "
                             f"{out['batched']!r}")  # fmt: skip
        return out

    criteria: ClassVar[tuple[str, ...]] = ("independence", "separation")

    def criterion_choices(self, criterion: str) -> Mapping[str, tuple[Any, ...]]:
        """Separation: the fairness losses that align the groups within each control class."""
        return {"fairness": CONDITIONAL_LOSSES} if criterion == "separation" else {}

    def metrics(self, task: str | None, criterion: str = "independence") -> tuple[str, ...]:
        return METRICS + (("adversary_bacc_given_y",) if criterion == "separation" else ())

    def check_data(self, data: Any) -> None:
        if data.task != "classification":
            raise ValueError(
                f"the translator needs a classification task (the control label), but dataset "
                f"{data.name!r} has task={data.task!r}"
            )
        if data.q_kind != "categorical" or np.asarray(data.q).ndim != 1:
            raise ValueError(
                f"the translator needs one categorical protected attribute, but dataset "
                f"{data.name!r} has q_kind={data.q_kind!r} with shape {np.asarray(data.q).shape}"
            )

    def build(self, config: Mapping[str, Any], train: Any, settings: TrialSettings) -> Any:
        """The user's ``(encoder, decoder)`` pair, or None for the built-in MLPs."""
        build = _autoencoder_builder(config, settings.model)
        return build(int(np.asarray(train.X).shape[1])) if build else None

    def fit(self, config: Mapping[str, Any], train: Any, val: Any, settings: TrialSettings,
            report: Report) -> Translator | LeaceTranslator:  # fmt: skip
        from fairsearch.families.translator._train import Translator

        fitted = self._unfitted(config, train, settings)
        if not isinstance(fitted, Translator):  # closed form: already fitted
            report({"epoch": 0.0})
            return fitted
        fitted.fit(np.asarray(train.X, np.float32), train.y, q=train.q, E_val=val.X, y_val=val.y,
                   q_val=val.q, on_epoch_end=report)  # fmt: skip
        return fitted

    def population_key(self, config: Mapping[str, Any]) -> str:
        """Every parameter but the per-member ones (loss weights, lr and its schedule, weight
        decay, loss bound) is shared by a population."""
        from fairsearch.families.translator._population import PER_MEMBER

        return json.dumps({k: v for k, v in config.items() if k not in PER_MEMBER},
                          sort_keys=True, default=repr)  # fmt: skip

    def fit_population(self, members: Sequence[Member], train: Any, val: Any,
                       settings: TrialSettings,
                       reports: Sequence[Report]) -> list[Any]:  # fmt: skip
        """Members that share a population key train as one batched model (each with its own
        seed, data order, weights, loss weights and Adam state), where ``model.batched`` says so
        (:data:`BATCHED_CHOICES`) and their options batch
        (:func:`~fairsearch.families.translator._population.batchable`); the others, and a key
        with one member, train one after another."""
        from fairsearch.families.translator._population import (
            batchable,
            fit_translator_population,
            population_key,
        )
        from fairsearch.families.translator._train import Translator

        if not _batched(settings):
            return super().fit_population(members, train, val, settings, reports)
        own = [None if m.config.get("fairness") == "leace" else  # closed form: fitted alone
               self._unfitted(m.config, train, dataclasses.replace(settings, seed=m.seed))
               for m in members]  # fmt: skip
        groups: dict[str, list[int]] = {}
        for i, tr in enumerate(own):
            if isinstance(tr, Translator) and batchable(tr):
                groups.setdefault(population_key(tr.params), []).append(i)
        out: list[Any] = [None] * len(members)
        for idx in (g for g in groups.values() if len(g) > 1):
            fitted = fit_translator_population(
                [own[i] for i in idx], np.asarray(train.X, np.float32), train.y, q=train.q,
                E_val=val.X, y_val=val.y, q_val=val.q, reports=[reports[i] for i in idx])
            for i, f in zip(idx, fitted, strict=True):
                out[i] = f
        alone = [i for i in range(len(members)) if out[i] is None]
        lone = super().fit_population([members[i] for i in alone], train, val, settings,
                                      [reports[i] for i in alone])  # fmt: skip
        for i, f in zip(alone, lone, strict=True):
            out[i] = f
        return out

    def _unfitted(self, config: Mapping[str, Any], train: Any,
                  settings: TrialSettings) -> Translator | LeaceTranslator:  # fmt: skip
        """The :class:`Translator` of ``config`` and ``settings`` before ``fit`` (a closed-form
        LEACE eraser: fitted already)."""
        from fairsearch.families.translator._leace import LeaceTranslator
        from fairsearch.families.translator._train import Translator

        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown and not settings.model.get("factory"):
            raise ValueError(
                f"unknown translator config key(s) {unknown}; allowed: {sorted(CONFIG_KEYS)}"
            )
        config = _with_criterion(self, config, settings.criterion)
        probes = leak_probes(settings.model)
        if config.get("fairness") == "leace":  # closed form
            eraser = LeaceTranslator().fit(np.asarray(train.X, np.float32), train.y, q=train.q)
            eraser.leak_probes = probes
            return eraser
        params = {k: v for k, v in config.items() if k in CONFIG_KEYS}
        params.setdefault("batch_size", int(settings.batch_size))
        for key in _INTEGERS:
            if key in params and isinstance(params[key], float) and params[key].is_integer():
                params[key] = int(params[key])
        tr = Translator(**params, epochs=int(settings.epochs), seed=int(settings.seed),
                        device=str(settings.device or "cpu"))  # fmt: skip
        tr.build_autoencoder = _autoencoder_builder(config, settings.model)
        tr.probe_at = tuple(settings.rungs)  # halving reads the fresh probe at its rungs
        tr.leak_probes = probes  # what evaluate measures the leak with
        tr.criterion = settings.criterion  # separation: evaluate measures q given the label too
        return tr

    def evaluate(self, fitted: Translator | LeaceTranslator, part: Any, *, train: Any,
                 seed: int) -> dict[str, float]:  # fmt: skip
        from fairsearch.families.translator._train import Translator
        from fairsearch.probes.ladder.fresh import classification_scores, leak_scores  # sklearn

        Xtr, Xp = np.asarray(train.X, np.float32), np.asarray(part.X, np.float32)
        Zp = _transform(fitted, Xp, part)
        if isinstance(fitted, Translator):
            pred = fitted.predict(Xp, q=part.q)
        else:  # LEACE has no control head: a fresh logistic control probe stands in for it
            pred = _control_probe(_transform(fitted, Xtr, train), train.y, Zp, seed)
        ctrl = classification_scores(part.y, pred)
        leak = leak_scores(Zp, part.q, kinds=_leak_probes(fitted), folds=LEAK_FOLDS, seed=seed,
                           engine=leak_engines(), grids=OBJECTIVE_GRIDS)  # fmt: skip
        mean, scale = Xtr.mean(0), np.maximum(Xtr.std(0), 1e-6)
        given = {}
        if getattr(fitted, "criterion", "independence") == "separation":
            given["adversary_bacc_given_y"] = given_label_leak(Zp, part, _leak_probes(fitted), seed)
        return given | {
            "control_f1": ctrl["f1"], "control_acc": ctrl["acc"],
            "adversary_f1": leak["f1"], "adversary_bacc": leak["bacc"],
            **{f"adversary_bacc_{k}": v for k, v in leak["by_kind"].items()},
            "reconstruction": float(np.mean(((Zp - Xp) / scale) ** 2)),
            "cka": _cka((Zp - mean) / scale, np.unique(part.q, return_inverse=True)[1], seed),
            # 1 when the control prediction is one class for every row: a trivial model
            "trivial": float(len(np.unique(pred)) < 2),
        }  # fmt: skip

    def utility_scores(self, y_true: np.ndarray, y_pred: np.ndarray, *, task: str,
                       n_classes: int) -> dict[str, float]:  # fmt: skip
        from fairsearch.probes.ladder.fresh import classification_scores  # sklearn

        scores = classification_scores(np.asarray(y_true), np.asarray(y_pred))
        return {"control_f1": scores["f1"], "control_acc": scores["acc"]}

    def outputs(self, fitted: Translator | LeaceTranslator, part: Any) -> Outputs:
        from fairsearch.families.translator._train import Translator

        X = np.asarray(part.X, np.float32)
        pred = fitted.predict(X, q=part.q) if isinstance(fitted, Translator) else np.full(len(X), -1)
        return Outputs(representation=_transform(fitted, X, part), prediction=pred)

    def state(self, fitted: Translator | LeaceTranslator) -> tuple[dict[str, torch.Tensor],
                                                                    dict[str, Any]]:  # fmt: skip
        from fairsearch.families.translator._io import translator_state
        from fairsearch.families.translator._leace import LeaceTranslator

        if isinstance(fitted, LeaceTranslator):  # closed form: refitted from the data when needed
            return {}, {"closed_form": "leace"}
        return translator_state(fitted)

    def restore(self, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                record: Mapping[str, Any]) -> Translator:  # fmt: skip
        from fairsearch.families.translator._io import restore_translator

        if meta.get("closed_form"):
            raise ValueError("a closed-form LEACE configuration has no weights: refit it on the data")
        build = _autoencoder_builder(record["config"], record.get("model") or {})
        restored = restore_translator(state, meta, build(int(meta["dim"])) if build else None)
        restored.criterion = record.get("criterion", "independence")
        return restored

    def baselines(self, data: Any) -> dict[str, np.ndarray]:
        """The original test embeddings and LEACE fitted on the train rows; LEACE is skipped,
        with a warning, where the optional concept-erasure package is not installed."""
        from fairsearch.families.translator._leace import LeaceTranslator

        train, test = data.subset("train"), data.subset("test")
        out = {"original": np.asarray(test.X, dtype=np.float32)}
        if not leace_available():
            warnings.warn(LEACE_SKIPPED, UserWarning, stacklevel=2)
            return out
        eraser = LeaceTranslator().fit(np.asarray(train.X, np.float32), train.y, q=train.q)
        out["leace"] = eraser.transform(np.asarray(test.X, np.float32))
        return out

    def transfer(self, data: Any) -> dict[str, np.ndarray]:
        """Unseen labels: a probe fitted on the original train embeddings, scored on translated."""
        split = np.asarray(data.split)
        out = {"transfer_X": np.asarray(data.subset("train").X, dtype=np.float32)}
        for name, values in data.extras.items():
            out[f"extra:{name}"] = np.asarray(values)[split == "test"]
            out[f"transfer:{name}"] = np.asarray(values)[split == "train"]
        return out


def leak_probes(model: Mapping[str, Any]) -> tuple[str, ...]:
    """The probe families of the leak objective: the spec's ``model.leak_probes``, checked, or
    :data:`LEAK_PROBES`. ``ValueError`` naming the key, the value and the choices otherwise."""
    raw = model.get("leak_probes")
    if raw is None:
        return LEAK_PROBES
    if (not isinstance(raw, list | tuple) or not raw
            or not all(isinstance(n, str) and n in LEAK_PROBE_CHOICES for n in raw)
            or len(set(raw)) != len(raw)):
        raise ValueError(f"`model.leak_probes` must be a non-empty list of distinct probe families "
                         f"from {list(LEAK_PROBE_CHOICES)}, but got {raw!r}")  # fmt: skip
    return tuple(raw)


def _batched(settings: TrialSettings) -> bool:
    """Whether ``model.batched`` (``auto``: on a GPU) and the lane allow batched populations."""
    from fairsearch.nets import resolve_device

    mode = settings.model.get("batched", "auto")
    if mode not in BATCHED_CHOICES:
        raise ValueError(f"`model.batched` must be one of {list(BATCHED_CHOICES)}, but got {mode!r}")
    on_gpu = resolve_device(settings.device or "cpu").type == "cuda"
    return settings.world_size == 1 and (mode == "always" or (mode == "auto" and on_gpu))


def _leak_probes(fitted: Any) -> tuple[str, ...]:
    """The leak probes ``fit`` chose (a restored model: the defaults)."""
    return tuple(getattr(fitted, "leak_probes", LEAK_PROBES))


def _transform(fitted: Translator | LeaceTranslator, X: np.ndarray, part: Any) -> np.ndarray:
    """Translated rows of ``part``; a translator that reads ``q`` (``q_input``) gets its ``q``."""
    from fairsearch.families.translator._train import Translator

    return fitted.transform(X, q=part.q) if isinstance(fitted, Translator) else fitted.transform(X)


def _autoencoder_builder(config: Mapping[str, Any], model: Mapping[str, Any]) -> Any:
    """``d -> (encoder, decoder)`` from the spec's ``model.factory``, or None (built-in MLPs).

    The factory gets ``input_dim`` (the embedding size) when its signature names it, the spec's
    ``factory_args`` and the searched parameters that are not the translator's own; it returns
    an ``(encoder, decoder)`` pair mapping ``input_dim -> k -> input_dim``.
    """
    if not model.get("factory"):
        return None
    searched = {k: v for k, v in config.items() if k not in CONFIG_KEYS}

    def build(d: int) -> tuple[torch.nn.Module, torch.nn.Module]:
        import torch

        pair = call_factory(model["factory"], model.get("factory_args") or {}, searched,
                            input_dim=d, output_dim=d)  # fmt: skip
        if not (isinstance(pair, tuple) and len(pair) == 2
                and all(isinstance(m, torch.nn.Module) for m in pair)):
            raise ValueError(f"`model.factory` {model['factory']!r} must return an (encoder, "
                             f"decoder) pair of torch.nn.Module for the translator, but returned "
                             f"{type(pair).__name__}")  # fmt: skip
        return pair

    return build


def _control_probe(Ztr: np.ndarray, ytr: np.ndarray, Z: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    return probe.fit(Ztr, ytr).predict(Z)
