"""The run spec: YAML read once at the edge, validated whole, and turned into frozen dataclasses.

``load_spec(path)`` (or ``parse_spec(mapping)``) checks the whole spec before anything runs and
raises one :class:`SpecError` listing *every* problem: each names the key path, the value and
what is allowed (with a close-match suggestion). Family parameters, metrics in objectives and
``subject_to``, probe names and a user factory's import path are checked against the model family.
``Spec.to_dict()`` is the validated spec with every default filled in and the search space
inlined; it is what a run folder's ``spec.yaml`` holds, so a run folder is self-contained.
``fairsearch validate SPEC`` is :func:`main`; it also loads the data and builds one model.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from fairsearch.families import FAMILIES, get_family
from fairsearch.families._factory import ANY, accepted_parameters, resolve_factory
from fairsearch.nets import parse_layers
from fairsearch.plugins import resolve_import
from fairsearch.probes.registry import PROBE_CHOICES, PROBE_KINDS
from fairsearch.spec.constraints import parse_constraint
from fairsearch.spec.space import Param, Space, close_match, parse_space

Direction = Literal["minimize", "maximize"]
Algorithm = Literal["nsga2", "tpe", "random", "gp"]
ALGORITHMS: tuple[str, ...] = ("nsga2", "tpe", "random", "gp")

__all__ = [
    "ALGORITHMS", "Objective", "PostSpec", "SearchSpec", "Spec", "SpecError", "TrialSpec",
    "load_spec", "metrics_for", "parse_spec",
]  # fmt: skip

BUILTIN_DATA = {
    "synthetic_regression": "regression",
    "synthetic_embeddings": "classification",
    "adult": "classification",
    "adult_embeddings": "classification",
    "names_minilm": "classification",
}
_TOP_KEYS = ("name", "data", "model", "objectives", "space", "search", "trial", "post")
_MODEL_KEYS = ("family", "factory", "factory_args")
_SEARCH_KEYS = ("algorithm", "trials", "max_concurrent", "seed", "seeds", "population",
                "executor", "stall_timeout_s")
EXECUTORS = ("ray", "local")
_TRIAL_KEYS = (
    "epochs", "batch_size", "workers", "gpus_per_worker", "cpus_per_worker", "max_failures",
)  # fmt: skip
_POST_KEYS = ("select", "top_k", "seeds", "retrain_epochs", "probes")
#: Family parameters whose values are layer lists (``"256-60"``), each choice checked at validate.
LAYER_PARAMS = ("hidden", "bottleneck")
_SELECT_KEYS = ("maximize", "minimize", "subject_to", "knee")
#: The shipped example specs and search spaces (package data; in a checkout, search_spaces/).
SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"
#: Largest spec or space file read, in bytes (a guard against hostile files).
MAX_YAML_BYTES = 1_000_000
T = TypeVar("T")


class SpecError(ValueError):
    """Every problem of one spec, each naming the key, the value and what is allowed."""

    def __init__(self, errors: list[str], source: str | None = None) -> None:
        self.errors = list(errors)
        where = f"spec {source!r}" if source else "the spec"
        if len(errors) == 1:
            text = errors[0]
        else:
            text = f"{where} has {len(errors)} problems:\n" + "\n".join(f"  - {e}" for e in errors)
        super().__init__(text)


class _Errors:
    """Collects ``ValueError`` messages so that every problem is reported at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def check(self, fn: Callable[..., T], *args: Any, default: T) -> T:
        try:
            return fn(*args)
        except SpecError as exc:
            self.messages.extend(exc.errors)
        except ValueError as exc:
            self.messages.append(str(exc))
        return default

    def unknown_keys(self, where: str, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in given:
            if key not in allowed:
                path = f"{where}.{key}" if where else str(key)
                self.add(f"unknown key `{path}`{close_match(str(key), allowed)}; allowed keys are "
                         f"{', '.join(allowed)}")  # fmt: skip


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
    #: seeds every configuration trains with, as one population; objectives are seed means
    seeds: int = 4
    #: at most this many configurations of one shape a free lane trains together
    population: int = 1
    #: ``ray``: lanes on Ray (the default, the only way onto a cluster); ``local``: this process
    executor: Literal["ray", "local"] = "ray"
    #: seconds without any configuration finishing before the search says why (0: never)
    stall_timeout_s: float = 600.0

    @property
    def training_seeds(self) -> tuple[int, ...]:
        """The seeds of every search trial: ``seed, seed + 1, ...`` (``seeds`` of them)."""
        return tuple(range(self.seed, self.seed + self.seeds))


@dataclass(frozen=True)
class TrialSpec:
    epochs: int = 30
    batch_size: int = 128
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    max_failures: int = 1  # Ray Train restarts of a run after a worker failure


#: Retrain seeds when ``post.seeds`` is not given (or is a count): fresh ones.
FRESH_SEEDS = 3


@dataclass(frozen=True)
class PostSpec:
    select_maximize: str | None = None
    select_minimize: str | None = None
    subject_to: tuple[str, ...] = ()
    knee: bool = False
    top_k: int = 3
    #: retrain seeds: explicit, or ``None`` for :data:`FRESH_SEEDS` seeds no search trial used
    seeds: tuple[int, ...] | None = None
    fresh_seeds: int = FRESH_SEEDS
    retrain_epochs: int | None = None
    #: audit probe ladder kinds (majority is always added)
    probes: tuple[str, ...] = PROBE_CHOICES

    @property
    def constraints(self) -> tuple[Any, ...]:
        """``subject_to`` parsed (see :mod:`fairsearch.spec.constraints`)."""
        return tuple(parse_constraint(c) for c in self.subject_to)


@dataclass(frozen=True)
class Spec:
    name: str
    data: Mapping[str, Any]
    model: str  # the family name
    objectives: tuple[Objective, ...]
    space: Space
    search: SearchSpec = field(default_factory=SearchSpec)
    trial: TrialSpec = field(default_factory=TrialSpec)
    post: PostSpec = field(default_factory=PostSpec)
    #: the model section beyond the family: ``factory`` and ``factory_args`` of a user's module
    model_args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> Any:
        """The :class:`~fairsearch.families.ModelFamily` of this spec."""
        return get_family(self.model)

    @property
    def retrain_seeds(self) -> tuple[int, ...]:
        """``post.seeds``, or :data:`FRESH_SEEDS` seeds right after the search's own: a retrain
        seed is then never one the search selected on, so its check is out of sample."""
        if self.post.seeds is not None:
            return self.post.seeds
        start = self.search.seed + self.search.seeds
        return tuple(range(start, start + self.post.fresh_seeds))

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
            "model": {"family": self.model, **self.model_args} if self.model_args else self.model,
            "objectives": [asdict(o) for o in self.objectives],
            "space": {p.name: _param_dict(p) for p in self.space},
            "search": asdict(self.search),
            "trial": asdict(self.trial),
            "post": {
                "select": select or None,
                "top_k": post.top_k,
                "seeds": list(post.seeds) if post.seeds is not None else post.fresh_seeds,
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
    """Metric names a model family reports for a dataset of ``task`` (all, when unknown)."""
    return get_family(model).metrics(task)




# ----------------------------------------------------------------------------- field checks
def _mapping(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"`{path}` must be a mapping, but got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _int(path: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{path}` must be an integer >= {minimum}, but got {_short(value)}")
    return value


def _float(path: str, value: Any, minimum: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not value >= minimum:
        raise ValueError(f"`{path}` must be a finite number >= {minimum}, but got {_short(value)}")
    return float(value)


def _choice(path: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    if not isinstance(value, str | int | float | bool | None) or value not in allowed:
        raise ValueError(
            f"`{path}` must be one of {', '.join(map(str, allowed))}, but got {_short(value)}"
            f"{close_match(str(value), tuple(map(str, allowed)))}"
        )
    return value


def _str_list(path: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"`{path}` must be a list of strings, but got {_short(value)}")
    return tuple(value)


def read_yaml(path: Path, what: str) -> Any:
    """``yaml.safe_load`` of a file of at most :data:`MAX_YAML_BYTES`, aliases limited."""
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ValueError(f"{what} {str(path)!r} must be at most {MAX_YAML_BYTES} bytes, but has {size}")
    text = path.read_text(errors="replace")
    try:
        return yaml.load(text, Loader=_LimitedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
        raise ValueError(f"{what} {str(path)!r} is not valid YAML{where}: {problem}") from None


class _LimitedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses more than a few alias expansions and documents whose nodes,
    every alias expanded, exceed :attr:`MAX_NODES` (a billion-laughs guard: a few nested aliases
    make a small file expand to millions of nodes, which anything walking it then pays for).
    The expanded size is counted once per distinct node, so the count itself costs no more than
    the file; a node that contains itself is refused too."""

    MAX_ALIASES = 100
    MAX_NODES = 200_000

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, self.MAX_NODES)
        return node

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen = getattr(self, "aliases_seen", 0) + 1
            if self.aliases_seen > self.MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"more than {self.MAX_ALIASES} YAML aliases (at line {mark.line + 1}): "
                    "refused as a possible alias bomb"
                )
        return super().compose_node(parent, index)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of ``root`` with every alias expanded; ``YAMLError`` above ``limit`` or on a cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > limit:
                mark = node.start_mark
                raise yaml.YAMLError(
                    f"more than {limit} YAML nodes once aliases are expanded (at line "
                    f"{mark.line + 1}): refused as a possible alias bomb"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise yaml.YAMLError(f"a YAML alias that contains itself (at line "
                                 f"{node.start_mark.line + 1}): refused")  # fmt: skip
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _resolve_space(value: Any, base: Path | None) -> tuple[Any, str]:
    """An inline space, or a file from search_spaces/ or beside the spec (no ``..``)."""
    if isinstance(value, Mapping):
        return value, "space"
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"`space` must be a file under search_spaces/ or an inline mapping, but got "
            f"{_short(value)}"
        )
    rel = Path(value)
    if rel.is_absolute() or ".." in rel.parts or rel.suffix not in ("", ".yaml", ".yml"):
        raise ValueError(
            f"`space` must name a .yaml file in search_spaces/ or beside the spec, without '..' "
            f"or an absolute path, but got {value!r}"
        )
    roots = ([base] if base is not None else []) + [SPACES_DIR]
    for root in roots:
        for cand in (root / rel, root / f"{value}.yaml", root / rel.name):
            if cand.suffix in (".yaml", ".yml") and cand.is_file():
                return read_yaml(cand, "space file"), f"space ({value})"
    shipped = sorted(p.name for p in SPACES_DIR.glob("*.yaml")) if SPACES_DIR.is_dir() else []
    raise ValueError(
        f"`space` names a file that does not exist, got {value!r}; shipped spaces are "
        f"{', '.join(shipped)}{close_match(rel.name, shipped)}"
    )


# ----------------------------------------------------------------------------- the spec
def parse_spec(raw: Any, *, base: Path | None = None, source: str | None = None) -> Spec:
    """Validate a YAML-loaded spec mapping; raises one :class:`SpecError` with every problem.

    ``base`` is the spec's folder (a relative ``space`` file may sit beside it).
    """
    if not isinstance(raw, Mapping):
        raise SpecError([f"a run spec must be a mapping of sections, but got {_short(raw)}"], source)
    err = _Errors()
    err.unknown_keys("", raw, _TOP_KEYS)
    for key in ("name", "data", "model", "objectives", "space"):
        if key not in raw:
            err.add(f"`{key}` is required in a run spec")
    name = raw.get("name", "spec")
    if "name" in raw and (not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name)):
        err.add(f"`name` must be a non-empty string of [A-Za-z0-9_.-], but got {_short(name)}")
    family, model_args = err.check(_parse_model, raw.get("model", "wrapper"), default=(None, {}))
    data, task = err.check(_parse_data, raw.get("data", {"name": "synthetic_regression"}),
                           default=({}, None))  # fmt: skip
    metrics = FAMILIES[family].metrics(task) if family else None
    objectives: tuple[Objective, ...] = ()
    if "objectives" in raw:
        objectives = err.check(_parse_objectives, raw["objectives"], metrics, default=())
    space: Space = ()
    if "space" in raw:
        space_raw, where = err.check(_resolve_space, raw["space"], base, default=(None, "space"))
        if space_raw is not None:
            space = err.check(parse_space, space_raw, where, default=())
            if family:
                _check_space_for_family(err, space, family, model_args, where)
    search = _parse_search(err, raw.get("search") or {})
    trial = _parse_trial(err, raw.get("trial") or {})
    post = _parse_post(err, raw.get("post") or {}, metrics)
    _check_repeats(err, post)
    with_confidence = [c for c in post.subject_to if "@" in c]
    if with_confidence and search.seeds < 2:
        err.add(f"`post.select.subject_to` {with_confidence[0]!r} asks for a confidence, which "
                f"needs a seed standard error: set `search.seeds` >= 2, but got {search.seeds}")
    if err.messages:
        raise SpecError(err.messages, source)
    return Spec(name, data, family, objectives, space, search, trial, post, model_args)


def load_spec(path: str | Path) -> Spec:
    """Read and validate a run spec file (see :func:`parse_spec`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"spec file {str(path)!r} does not exist or is not a file")
    raw = read_yaml(path, "spec file")
    return parse_spec(raw, base=path.parent, source=str(path))


def _parse_model(raw: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(raw, str):
        return _choice("model", raw, tuple(FAMILIES)), {}
    raw = _mapping("model", raw)
    named = FAMILIES.get(raw.get("family")) if isinstance(raw.get("family"), str) else None
    own = tuple(named.model_options) if named else ()
    allowed = (*_MODEL_KEYS, *own)
    bad = [k for k in raw if k not in allowed]
    if bad:
        raise ValueError(f"unknown key `model.{bad[0]}`{close_match(str(bad[0]), allowed)}; "
                         f"allowed keys are {', '.join(allowed)}")  # fmt: skip
    family = _choice("model.family", raw.get("family"), tuple(FAMILIES))
    args: dict[str, Any] = {}
    if any(k in raw for k in own):
        args.update(FAMILIES[family].check_model_options({k: raw[k] for k in own if k in raw}))
    if raw.get("factory") is not None:
        resolve_factory(raw["factory"])
        args["factory"] = raw["factory"]
        args["factory_args"] = dict(_mapping("model.factory_args", raw.get("factory_args") or {}))
    elif raw.get("factory_args"):
        raise ValueError("`model.factory_args` needs `model.factory`, but no factory is named")
    return family, args


def _parse_data(raw: Any) -> tuple[dict[str, Any], str | None]:
    data = dict(_mapping("data", raw))
    if ("name" in data) == ("path" in data) == ("loader" in data) or \
            sum(k in data for k in ("name", "path", "loader")) != 1:  # fmt: skip
        raise ValueError(
            f"`data` must have exactly one of `name` (a built-in dataset), `path` (Parquet) or "
            f"`loader` (an import path 'pkg.module:function' returning a Dataset), but got keys "
            f"{sorted(data)}"
        )
    if "name" in data:
        task = BUILTIN_DATA[_choice("data.name", data["name"], tuple(BUILTIN_DATA))]
        from fairsearch.data import BUILTIN

        _check_data_keys(data, "name", BUILTIN[data["name"]])
        return data, task
    if "loader" in data:
        _check_data_keys(data, "loader", resolve_import(data["loader"], "data.loader"))
    elif not isinstance(data["path"], str):
        raise ValueError(f"`data.path` must be a file path, but got {_short(data['path'])}")
    else:
        from fairsearch.data import load_parquet

        _check_data_keys(data, "path", load_parquet, skip_first=True)
    task = data.get("task")
    if task is not None:
        _choice("data.task", task, ("regression", "classification"))
    return data, task


def _check_data_keys(data: Mapping[str, Any], source: str, fn: Callable[..., Any], *,
                     skip_first: bool = False) -> None:  # fmt: skip
    """Every key of ``data`` besides ``source`` must be a keyword argument of its loader ``fn``."""
    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return  # a loader taking **kwargs accepts any key
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    allowed = (source, *(p.name for p in params[int(skip_first):] if p.kind in kinds))
    errors = [
        f"unknown key `data.{key}`{close_match(str(key), allowed)}; allowed keys with "
        f"`data.{source}` are {', '.join(allowed)}"
        for key in data if key not in allowed
    ]  # fmt: skip
    if errors:
        raise SpecError(errors)


def _parse_objectives(raw: Any, metrics: tuple[str, ...] | None) -> tuple[Objective, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"`objectives` must be a non-empty list, but got {_short(raw)}")
    err, out = _Errors(), []
    for i, item in enumerate(raw):
        path = f"objectives[{i}]"
        if not isinstance(item, Mapping):
            err.add(f"`{path}` must be a mapping with `metric` and `direction`, but got "
                    f"{_short(item)}")  # fmt: skip
            continue
        err.unknown_keys(path, item, ("metric", "direction"))
        metric = item.get("metric")
        if metrics is not None:
            metric = err.check(_choice, f"{path}.metric", metric, metrics, default=None)
        direction = err.check(_choice, f"{path}.direction", item.get("direction"),
                              ("minimize", "maximize"), default=None)  # fmt: skip
        if metric is not None and direction is not None:
            out.append(Objective(metric, direction))
    names = [o.metric for o in out]
    if len(set(names)) != len(names):
        err.add(f"`objectives` must name each metric once, but got {names}")
    if err.messages:
        raise SpecError(err.messages)
    return tuple(out)


def _check_repeats(err: _Errors, post: Any) -> None:
    """Semantic duplicates (repeated objectives are refused with the objectives): a repeated
    retrain seed repeats its result (two seeds with a std of 0 look stable), a repeated probe
    counts one family twice."""
    seeds = list(post.seeds or ())
    if len(set(seeds)) != len(seeds):
        err.add(f"`post.seeds` must not repeat a seed (a repeat only repeats its result, a false "
                f"spread of 0), but got {seeds}")  # fmt: skip
    probes = list(post.probes or ())
    if len(set(probes)) != len(probes):
        err.add(f"`post.probes` must not repeat a probe, but got {probes}")


def _layers(value: Any, what: str) -> tuple[int, ...]:
    """A layer list such as ``"256-60"`` or ``60`` (:func:`fairsearch.nets.parse_layers`)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"{what} must be positive layer sizes such as '60' or '256-60', but "
                         f"got {value!r}")  # fmt: skip
    return parse_layers(value, what)


def _check_space_for_family(err: _Errors, space: Space, family: str,
                            model_args: Mapping[str, Any], where: str) -> None:  # fmt: skip
    fam = FAMILIES[family]
    takes: frozenset[str] = frozenset()
    if model_args.get("factory"):
        takes = err.check(accepted_parameters, model_args["factory"], default=frozenset())
    known = tuple(fam.parameters)
    for p in space:
        if p.name not in fam.parameters:
            if p.name in takes or ANY in takes:
                continue
            extra = f", or the factory's own arguments {sorted(takes - {ANY})}" if takes else ""
            err.add(f"unknown parameter `{where}.{p.name}`{close_match(p.name, known)}; the "
                    f"{family} family takes {', '.join(known)}{extra}")  # fmt: skip
            continue
        if p.name in LAYER_PARAMS and p.type == "categorical":
            for c in p.choices:  # each choice must be a layer list the family can build
                err.check(_layers, c, f"`{where}.{p.name}.choices`", default=None)
        allowed = fam.parameters[p.name]
        if allowed is None:
            continue
        if p.type != "categorical":
            err.add(f"`{where}.{p.name}` must be categorical (choices among "
                    f"{', '.join(map(str, allowed))}), but got type {p.type!r}")  # fmt: skip
            continue
        for c in p.choices:
            err.check(_choice, f"{where}.{p.name}.choices", c, allowed, default=None)


def _parse_search(err: _Errors, raw: Any) -> SearchSpec:
    d = SearchSpec()
    raw = err.check(_mapping, "search", raw, default={})
    if "configs_per_run" in raw:
        err.add("`search.configs_per_run` is gone: the search now runs lanes that each pull one "
                "configuration at a time (docs/architecture.md); delete the key")  # fmt: skip
    err.unknown_keys("search", {k: v for k, v in raw.items() if k != "configs_per_run"},
                     _SEARCH_KEYS)  # fmt: skip
    return SearchSpec(
        algorithm=err.check(_choice, "search.algorithm", raw.get("algorithm", d.algorithm),
                            ALGORITHMS, default=d.algorithm),
        trials=err.check(_int, "search.trials", raw.get("trials", d.trials), 1, default=d.trials),
        max_concurrent=err.check(_int, "search.max_concurrent",
                                 raw.get("max_concurrent", d.max_concurrent), 1,
                                 default=d.max_concurrent),
        seed=err.check(_int, "search.seed", raw.get("seed", d.seed), 0, default=d.seed),
        seeds=err.check(_int, "search.seeds", raw.get("seeds", d.seeds), 1, default=d.seeds),
        population=err.check(_int, "search.population", raw.get("population", d.population), 1,
                             default=d.population),
        executor=err.check(_choice, "search.executor", raw.get("executor", d.executor),
                           EXECUTORS, default=d.executor),
        stall_timeout_s=err.check(_float, "search.stall_timeout_s",
                                  raw.get("stall_timeout_s", d.stall_timeout_s), 0.0,
                                  default=d.stall_timeout_s),
    )  # fmt: skip


def _gpus(value: Any) -> float:
    gpus = _float("trial.gpus_per_worker", value, 0.0)
    if gpus > 1 and gpus != int(gpus):
        raise ValueError(
            f"`trial.gpus_per_worker` must be a fraction <= 1 or a whole number, but got {gpus}"
        )
    return gpus


def _parse_trial(err: _Errors, raw: Any) -> TrialSpec:
    d = TrialSpec()
    raw = err.check(_mapping, "trial", raw, default={})
    err.unknown_keys("trial", raw, _TRIAL_KEYS)

    def get(key: str, fn: Callable[..., Any], *args: Any) -> Any:
        return err.check(fn, f"trial.{key}", raw.get(key, getattr(d, key)), *args,
                         default=getattr(d, key))  # fmt: skip

    cpus = get("cpus_per_worker", _float, 0.0)
    if cpus == 0:
        err.add("`trial.cpus_per_worker` must be a number > 0 (a worker needs some CPU), but got 0")
    return TrialSpec(
        epochs=get("epochs", _int, 1), batch_size=get("batch_size", _int, 1),
        workers=get("workers", _int, 1),
        gpus_per_worker=err.check(_gpus, raw.get("gpus_per_worker", d.gpus_per_worker),
                                  default=d.gpus_per_worker),
        cpus_per_worker=cpus or d.cpus_per_worker, max_failures=get("max_failures", _int, 0),
    )  # fmt: skip


def _parse_post(err: _Errors, raw: Any, metrics: tuple[str, ...] | None) -> PostSpec:
    d = PostSpec()
    raw = err.check(_mapping, "post", raw, default={})
    err.unknown_keys("post", raw, _POST_KEYS)
    select = err.check(_mapping, "post.select", raw.get("select") or {}, default={})
    err.unknown_keys("post.select", select, _SELECT_KEYS)
    if "maximize" in select and "minimize" in select:
        err.add(f"`post.select` takes one of `maximize` or `minimize`, but got both "
                f"(maximize={select['maximize']!r}, minimize={select['minimize']!r})")  # fmt: skip
    for key in ("maximize", "minimize"):
        if key in select:
            allowed = metrics or (str(select[key]),)
            err.check(_choice, f"post.select.{key}", select[key], allowed, default=None)
    subject_to = err.check(_str_list, "post.select.subject_to", select.get("subject_to", []),
                           default=())  # fmt: skip
    for i, text in enumerate(subject_to):
        con = err.check(parse_constraint, text, default=None)
        if con is not None and metrics is not None and con.metric not in metrics:
            err.add(f"`post.select.subject_to[{i}]` names metric {con.metric!r}"
                    f"{close_match(con.metric, metrics)}, which this model does not report; "
                    f"metrics are {', '.join(metrics)}")  # fmt: skip
    knee = select.get("knee", False)
    if not isinstance(knee, bool):
        err.add(f"`post.select.knee` must be true or false, but got {_short(knee)}")
    elif knee and ("maximize" in select or "minimize" in select):
        err.add("`post.select` takes either `knee: true` or `maximize`/`minimize`, not both")
    seeds, fresh = raw.get("seeds"), FRESH_SEEDS
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        seeds, fresh = None, seeds
    elif seeds is not None and (not isinstance(seeds, list) or not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    )):  # fmt: skip
        err.add("`post.seeds` must be a count of fresh seeds (an integer >= 1) or a non-empty "
                f"list of integers >= 0, but got {_short(seeds)}")  # fmt: skip
        seeds = None
    retrain = raw.get("retrain_epochs", d.retrain_epochs)
    if retrain is not None:
        retrain = err.check(_int, "post.retrain_epochs", retrain, 1, default=None)
    probes = err.check(_str_list, "post.probes", raw.get("probes", list(d.probes)),
                       default=d.probes)  # fmt: skip
    for i, name in enumerate(probes):
        err.check(_choice, f"post.probes[{i}]", name, PROBE_KINDS, default=None)
    return PostSpec(
        select_maximize=select.get("maximize"), select_minimize=select.get("minimize"),
        subject_to=tuple(subject_to), knee=knee is True,
        top_k=err.check(_int, "post.top_k", raw.get("top_k", d.top_k), 1, default=d.top_k),
        seeds=None if seeds is None else tuple(seeds), fresh_seeds=fresh,
        retrain_epochs=retrain, probes=tuple(probes),
    )  # fmt: skip


def dump_spec(spec: Spec) -> str:
    return yaml.safe_dump(spec.to_dict(), sort_keys=False)
