"""The run spec: YAML read once at the edge, validated, and turned into frozen dataclasses.

``load_spec(path)`` (or ``parse_spec(mapping)``) fails with a ``ValueError`` naming the key path,
the value and what is allowed, before anything runs. ``Spec.to_dict()`` is the validated spec
with every default filled in and the search space inlined; it is what a run folder's
``spec.yaml`` holds, so a run folder is self-contained. ``fairsearch validate SPEC`` is
:func:`main`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fairsearch.space import Param, Space, check_keys, close_match, parse_space

Model = Literal["wrapper", "translator"]
Direction = Literal["minimize", "maximize"]
Algorithm = Literal["nsga2", "tpe", "random"]

__all__ = [
    "Objective",
    "PostSpec",
    "SearchSpec",
    "Spec",
    "TrialSpec",
    "load_spec",
    "metrics_for",
    "parse_spec",
]

#: Final metrics each model family reports (evaluated on the validation split).
WRAPPER_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("mse", "cka", "cka_median", "hsic"),
    "classification": ("accuracy", "f1", "cka", "dp_gap"),
}
TRANSLATOR_METRICS = ("control_f1", "adversary_f1", "adversary_bacc", "reconstruction", "cka")
#: Loss names a space may offer as choices of these parameters.
DEPENDENCES = ("cka", "debiased_cka", "linear_cka", "hsic", "mmd")
FAIRNESS_LOSSES = (
    "none", "adversarial", "gradient_reversal", "negative_ce", "cka", "hsic", "linear_cka",
    "linear_guard", "mmd", "conditional_mmd", "leace",
)  # fmt: skip
LOSS_PARAMS = {"wrapper": {"dependence": DEPENDENCES}, "translator": {"fairness": FAIRNESS_LOSSES}}
#: Parameters the wrapper trial understands (the translator's are its own business).
WRAPPER_PARAMS = (
    "mu", "sigma_f", "sigma_q", "lr", "weight_decay", "dependence", "hidden", "activation",
    "batch_size",
)  # fmt: skip
ACTIVATIONS = ("relu", "tanh", "gelu", "silu", "elu")
BUILTIN_DATA = {
    "synthetic_regression": "regression",
    "synthetic_embeddings": "classification",
    "adult": "classification",
    "adult_embeddings": "classification",
    "names_minilm": "classification",
}

_TOP_KEYS = ("name", "data", "model", "objectives", "space", "search", "trial", "post")
_SEARCH_KEYS = ("algorithm", "trials", "max_concurrent", "seed", "configs_per_run")
_TRIAL_KEYS = (
    "epochs", "batch_size", "workers", "gpus_per_worker", "cpus_per_worker", "max_failures",
)  # fmt: skip
_POST_KEYS = ("select", "top_k", "seeds", "retrain_epochs", "probes")
_SELECT_KEYS = ("maximize", "minimize", "subject_to", "knee")
_CONSTRAINT = re.compile(r"^\s*[A-Za-z_][\w.]*\s*(<=|>=|<|>)\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction


@dataclass(frozen=True)
class SearchSpec:
    algorithm: Algorithm = "nsga2"
    trials: int = 20
    max_concurrent: int = 2
    seed: int = 0
    #: configurations trained one after another by one Ray Train run; "auto" packs small
    #: single-worker trials (see docs/schemas.md), 1 gives one Train run per configuration.
    configs_per_run: int | Literal["auto"] = "auto"


@dataclass(frozen=True)
class TrialSpec:
    epochs: int = 30
    batch_size: int = 128
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    max_failures: int = 1  # Ray Train restarts of a run after a worker failure


@dataclass(frozen=True)
class PostSpec:
    select_maximize: str | None = None
    select_minimize: str | None = None
    subject_to: tuple[str, ...] = ()
    knee: bool = False
    top_k: int = 3
    seeds: tuple[int, ...] = (0, 1, 2)
    retrain_epochs: int | None = None
    probes: tuple[str, ...] = ("logistic", "mlp", "gbt", "knn")


@dataclass(frozen=True)
class Spec:
    name: str
    data: Mapping[str, Any]
    model: Model
    objectives: tuple[Objective, ...]
    space: Space
    search: SearchSpec = field(default_factory=SearchSpec)
    trial: TrialSpec = field(default_factory=TrialSpec)
    post: PostSpec = field(default_factory=PostSpec)

    def to_dict(self) -> dict[str, Any]:
        """The validated spec, defaults filled in and the space inlined (YAML-ready)."""
        post = self.post
        select: dict[str, Any] = {}
        if post.select_maximize is not None:
            select["maximize"] = post.select_maximize
        if post.select_minimize is not None:
            select["minimize"] = post.select_minimize
        if post.subject_to:
            select["subject_to"] = list(post.subject_to)
        if post.knee:
            select["knee"] = True
        return {
            "name": self.name,
            "data": dict(self.data),
            "model": self.model,
            "objectives": [asdict(o) for o in self.objectives],
            "space": {p.name: _param_dict(p) for p in self.space},
            "search": asdict(self.search),
            "trial": asdict(self.trial),
            "post": {
                "select": select or None,
                "top_k": post.top_k,
                "seeds": list(post.seeds),
                "retrain_epochs": post.retrain_epochs,
                "probes": list(post.probes),
            },
        }


def _param_dict(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.type}
    if p.type == "categorical":
        out["choices"] = list(p.choices)
    else:
        out.update(low=p.low, high=p.high)
        if p.log:
            out["log"] = True
        if p.step is not None:
            out["step"] = p.step
    if p.when:
        out["when"] = {k: list(v) for k, v in p.when}
    return out


def metrics_for(model: str, task: str | None = None) -> tuple[str, ...]:
    """Metric names a model family reports; for the wrapper, per task (both when unknown)."""
    if model == "translator":
        return TRANSLATOR_METRICS
    if task in WRAPPER_METRICS:
        return WRAPPER_METRICS[task]
    return tuple(dict.fromkeys(WRAPPER_METRICS["regression"] + WRAPPER_METRICS["classification"]))


# ----------------------------------------------------------------------------- parsing helpers
def _mapping(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"`{path}` must be a mapping, but got {value!r}")
    return value


def _int(path: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{path}` must be an integer >= {minimum}, but got {value!r}")
    return value


def _float(path: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise ValueError(f"`{path}` must be a number >= {minimum}, but got {value!r}")
    return float(value)


def _choice(path: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(
            f"`{path}` must be one of {', '.join(allowed)}, but got {value!r}"
            f"{close_match(str(value), allowed)}"
        )
    return value


def _str_list(path: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"`{path}` must be a list of strings, but got {value!r}")
    return tuple(value)


def _resolve_space(value: Any, base: Path | None) -> tuple[Any, str]:
    if isinstance(value, Mapping):
        return value, "space"
    if not isinstance(value, str):
        raise ValueError(
            f"`space` must be a file under search_spaces/ or an inline mapping, but got {value!r}"
        )
    candidates = [Path(value)]
    if base is not None:
        candidates.insert(0, base / value)
    candidates += [SPACES_DIR / value, SPACES_DIR / f"{value}.yaml", SPACES_DIR / Path(value).name]
    for path in candidates:
        if path.is_file():
            with open(path) as fh:
                return yaml.safe_load(fh), f"space ({value})"
    shipped = sorted(p.name for p in SPACES_DIR.glob("*.yaml")) if SPACES_DIR.is_dir() else []
    raise ValueError(
        f"`space` names a file that does not exist, got {value!r}; shipped spaces are "
        f"{', '.join(shipped)}{close_match(Path(value).name, shipped)}"
    )


# ----------------------------------------------------------------------------- the spec
def parse_spec(raw: Any, *, base: Path | None = None) -> Spec:
    """Validate a YAML-loaded spec mapping; ``base`` resolves a relative ``space`` file."""
    raw = _mapping("<spec>", raw)
    check_keys("", raw, _TOP_KEYS)
    for key in ("name", "data", "model", "objectives", "space"):
        if key not in raw:
            raise ValueError(f"`{key}` is required in a run spec")
    name = raw["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"`name` must be a non-empty string of [A-Za-z0-9_.-], but got {name!r}")
    model = _choice("model", raw["model"], ("wrapper", "translator"))
    data, task = _parse_data(raw["data"])
    objectives = _parse_objectives(raw["objectives"], model, task)
    space_raw, where = _resolve_space(raw["space"], base)
    space = parse_space(space_raw, where)
    _check_space_for_model(space, model, where)
    search = _parse_search(raw.get("search") or {})
    trial = _parse_trial(raw.get("trial") or {})
    post = _parse_post(raw.get("post") or {})
    return Spec(name, data, model, objectives, space, search, trial, post)


def load_spec(path: str | Path) -> Spec:
    """Read and validate a run spec file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"spec file {str(path)!r} does not exist")
    with open(path) as fh:
        try:
            raw = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ValueError(f"spec file {str(path)!r} is not valid YAML: {exc}") from None
    return parse_spec(raw, base=path.parent)


def _parse_data(raw: Any) -> tuple[dict[str, Any], str | None]:
    data = dict(_mapping("data", raw))
    if ("name" in data) == ("path" in data):
        raise ValueError(
            f"`data` must have exactly one of `name` (a built-in dataset) or `path` (Parquet), "
            f"but got keys {sorted(data)}"
        )
    if "name" in data:
        return data, BUILTIN_DATA[_choice("data.name", data["name"], tuple(BUILTIN_DATA))]
    if not isinstance(data["path"], str):
        raise ValueError(f"`data.path` must be a file path, but got {data['path']!r}")
    task = data.get("task")
    if task is not None:
        _choice("data.task", task, ("regression", "classification"))
    return data, task


def _parse_objectives(raw: Any, model: str, task: str | None) -> tuple[Objective, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"`objectives` must be a non-empty list, but got {raw!r}")
    allowed = metrics_for(model, task)
    out = []
    for i, item in enumerate(raw):
        path = f"objectives[{i}]"
        item = _mapping(path, item)
        check_keys(path, item, ("metric", "direction"))
        metric = _choice(f"{path}.metric", item.get("metric"), allowed)
        direction = _choice(f"{path}.direction", item.get("direction"), ("minimize", "maximize"))
        out.append(Objective(metric, direction))
    metrics = [o.metric for o in out]
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"`objectives` must name each metric once, but got {metrics}")
    return tuple(out)


def _check_space_for_model(space: Space, model: str, where: str) -> None:
    names = tuple(p.name for p in space)
    if model == "wrapper":
        for n in names:
            if n not in WRAPPER_PARAMS:
                raise ValueError(
                    f"unknown key `{where}.{n}`{close_match(n, WRAPPER_PARAMS)}; the wrapper "
                    f"understands {', '.join(WRAPPER_PARAMS)}"
                )
    checks = dict(LOSS_PARAMS[model])
    if model == "wrapper":
        checks["activation"] = ACTIVATIONS
    for p in space:
        allowed = checks.get(p.name)
        if allowed is None:
            continue
        if p.type != "categorical":
            raise ValueError(f"`{where}.{p.name}` must be categorical, but got type {p.type!r}")
        for c in p.choices:
            _choice(f"{where}.{p.name}.choices", c, allowed)
    for p in space:
        if p.name in ("hidden",) and p.type == "categorical":
            for c in p.choices:
                if not re.fullmatch(r"\d+(-\d+)*", str(c)):
                    raise ValueError(
                        f"`{where}.hidden.choices` must be layer sizes like '32-32', but got {c!r}"
                    )


def _parse_search(raw: Any) -> SearchSpec:
    raw = _mapping("search", raw)
    check_keys("search", raw, _SEARCH_KEYS)
    d = SearchSpec()
    cpr = raw.get("configs_per_run", d.configs_per_run)
    if cpr != "auto":
        cpr = _int("search.configs_per_run", cpr, 1)
    return SearchSpec(
        algorithm=_choice("search.algorithm", raw.get("algorithm", d.algorithm),
                          ("nsga2", "tpe", "random")),
        trials=_int("search.trials", raw.get("trials", d.trials), 1),
        max_concurrent=_int("search.max_concurrent", raw.get("max_concurrent", d.max_concurrent), 1),
        seed=_int("search.seed", raw.get("seed", d.seed), 0),
        configs_per_run=cpr,
    )  # fmt: skip


def _parse_trial(raw: Any) -> TrialSpec:
    raw = _mapping("trial", raw)
    check_keys("trial", raw, _TRIAL_KEYS)
    d = TrialSpec()
    gpus = _float("trial.gpus_per_worker", raw.get("gpus_per_worker", d.gpus_per_worker), 0.0)
    if gpus > 1 and gpus != int(gpus):
        raise ValueError(
            f"`trial.gpus_per_worker` must be a fraction <= 1 or a whole number, but got {gpus}"
        )
    return TrialSpec(
        epochs=_int("trial.epochs", raw.get("epochs", d.epochs), 1),
        batch_size=_int("trial.batch_size", raw.get("batch_size", d.batch_size), 1),
        workers=_int("trial.workers", raw.get("workers", d.workers), 1),
        gpus_per_worker=gpus,
        cpus_per_worker=_float("trial.cpus_per_worker", raw.get("cpus_per_worker", d.cpus_per_worker), 0.0),
        max_failures=_int("trial.max_failures", raw.get("max_failures", d.max_failures), 0),
    )  # fmt: skip


def _parse_post(raw: Any) -> PostSpec:
    raw = _mapping("post", raw)
    check_keys("post", raw, _POST_KEYS)
    d = PostSpec()
    select = raw.get("select") or {}
    select = _mapping("post.select", select)
    check_keys("post.select", select, _SELECT_KEYS)
    if "maximize" in select and "minimize" in select:
        raise ValueError(
            f"`post.select` takes one of `maximize` or `minimize`, but got both "
            f"(maximize={select['maximize']!r}, minimize={select['minimize']!r})"
        )
    for key in ("maximize", "minimize"):
        if key in select and not isinstance(select[key], str):
            raise ValueError(f"`post.select.{key}` must be a metric name, but got {select[key]!r}")
    subject_to = _str_list("post.select.subject_to", select.get("subject_to", []))
    for i, c in enumerate(subject_to):
        if not _CONSTRAINT.match(c):
            raise ValueError(
                f"`post.select.subject_to[{i}]` must read 'metric <= number' (or >=, <, >), "
                f"but got {c!r}"
            )
    knee = select.get("knee", False)
    if not isinstance(knee, bool):
        raise ValueError(f"`post.select.knee` must be true or false, but got {knee!r}")
    if knee and ("maximize" in select or "minimize" in select):
        raise ValueError("`post.select` takes either `knee: true` or `maximize`/`minimize`, not both")
    seeds = raw.get("seeds", list(d.seeds))
    if not isinstance(seeds, list) or not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        raise ValueError(f"`post.seeds` must be a non-empty list of integers >= 0, but got {seeds!r}")
    retrain = raw.get("retrain_epochs", d.retrain_epochs)
    if retrain is not None:
        retrain = _int("post.retrain_epochs", retrain, 1)
    return PostSpec(
        select_maximize=select.get("maximize"),
        select_minimize=select.get("minimize"),
        subject_to=subject_to,
        knee=knee,
        top_k=_int("post.top_k", raw.get("top_k", d.top_k), 1),
        seeds=tuple(seeds),
        retrain_epochs=retrain,
        probes=_str_list("post.probes", raw.get("probes", list(d.probes))),
    )


def dump_spec(spec: Spec) -> str:
    return yaml.safe_dump(spec.to_dict(), sort_keys=False)


# ----------------------------------------------------------------------------- CLI
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="run spec (YAML)")
    parser.add_argument("--show", action="store_true", help="print the spec with defaults")


def main(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    if args.show:
        print(dump_spec(spec), end="")
    objectives = ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives)
    print(
        f"ok: {spec.name}: model={spec.model}, {len(spec.space)} parameters, {objectives}, "
        f"{spec.search.algorithm} x {spec.search.trials} trials"
    )
    return 0
