"""The run spec: YAML read once at the edge, validated whole, and turned into frozen dataclasses.

``load_spec(path)`` (or ``parse_spec(mapping)``) checks the whole spec before anything runs and
raises one :class:`SpecError` listing *every* problem: each names the key path, the value and
what is allowed (with a close-match suggestion). Family parameters, metrics in objectives and
``subject_to``, probe names and a user factory's import path are checked against the model family.
``Spec.to_dict()`` is the validated spec with every default filled in and the search space
inlined; it is what a run folder's ``spec.yaml`` holds, so a run folder is self-contained.
Here are the whole spec and its run sections (``search``, ``trial``, ``post``); the sections of what
a run trains on are in :mod:`fairsearch.spec.sections`, the dataclasses in
:mod:`fairsearch.spec.validated`, the field checks in :mod:`fairsearch.spec.fields`.
``fairsearch validate SPEC`` is :mod:`fairsearch.spec.validate`; it also loads the data and builds one model.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from fairsearch.families import FAMILIES, get_family
from fairsearch.measures.fairness import criterion_problem
from fairsearch.probes.registry import PROBE_KINDS
from fairsearch.spec.constraints import parse_constraint
from fairsearch.spec.fields import (
    Errors,
    SpecError,
    as_float,
    as_int,
    as_mapping,
    one_of,
    short,
    str_list,
)
from fairsearch.spec.safe_yaml import read_yaml
from fairsearch.spec.sections import (
    check_space_for_family,
    parse_data,
    parse_halving,
    parse_model,
    parse_objectives,
    resolve_space,
)
from fairsearch.spec.space import Space, close_match, parse_space
from fairsearch.spec.validated import (
    ALGORITHMS,
    CRITERIA,
    FRESH_SEEDS,
    FairnessSpec,
    Objective,
    PostSpec,
    SearchSpec,
    Spec,
    TrialSpec,
)

__all__ = ["RUN_SPEC", "deprecations", "dump_spec", "load_run_spec", "load_spec", "metrics_for", "parse_spec"]

_TOP_KEYS = ("name", "data", "model", "objectives", "space", "search", "trial", "post",
             "fairness")
_FAIRNESS_KEYS = ("criterion",)
_SEARCH_KEYS = ("algorithm", "trials", "max_concurrent", "seed", "seeds", "population",
                "executor", "stall_timeout_s", "halving")
EXECUTORS = ("ray", "inprocess")
#: Old names of ``search.executor`` values: still read, with a note (:func:`deprecations`).
OLD_EXECUTORS = {"local": "inprocess"}
_TRIAL_KEYS = (
    "epochs", "batch_size", "workers", "gpus_per_worker", "cpus_per_worker", "max_failures",
)  # fmt: skip
_POST_KEYS = ("select", "top_k", "seeds", "retrain_epochs", "probes")
_SELECT_KEYS = ("maximize", "minimize", "subject_to", "knee")


def metrics_for(model: str, task: str | None = None,
                criterion: str = "independence") -> tuple[str, ...]:  # fmt: skip
    """Metric names a model family reports for a dataset of ``task`` (all, when unknown) under
    ``criterion`` (``fairness.criterion``)."""
    return get_family(model).metrics(task, criterion)


# ----------------------------------------------------------------------------- field checks


# ----------------------------------------------------------------------------- the spec
def parse_spec(raw: Any, *, base: Path | None = None, source: str | None = None) -> Spec:
    """Validate a YAML-loaded spec mapping; raises one :class:`SpecError` with every problem.

    ``base`` is the spec's folder (a relative ``space`` file may sit beside it).
    """
    if not isinstance(raw, Mapping):
        raise SpecError([f"a run spec must be a mapping of sections, but got {short(raw)}"], source)
    if _is_space(raw):
        name = Path(source).name if source else "FILE.yaml"
        raise SpecError([f"{source or 'this mapping'!s} is a search space, not a run spec: name it "
                         f"from a spec as `space: {name}` (`fairsearch init` lists the shipped "
                         f"specs)"], source)  # fmt: skip
    err = Errors()
    err.unknown_keys("", raw, _TOP_KEYS)
    for key in ("name", "data", "model", "objectives", "space"):
        if key not in raw:
            err.add(f"`{key}` is required in a run spec")
    name = raw.get("name", "spec")
    if "name" in raw and (not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name)):
        err.add(f"`name` must be a non-empty string of [A-Za-z0-9_.-], but got {short(name)}")
    family, model_args = err.check(parse_model, raw.get("model", "wrapper"), default=(None, {}))
    data, task = err.check(parse_data, raw.get("data", {"name": "synthetic_regression"}),
                           default=({}, None))  # fmt: skip
    fairness = _parse_fairness(err, raw.get("fairness") or {}, family, task)
    metrics = None
    if family:  # a refused criterion: any the family trains for, so no second error follows
        asked = (fairness.criterion,) if fairness else FAMILIES[family].criteria
        metrics = tuple(dict.fromkeys(m for c in asked for m in FAMILIES[family].metrics(task, c)))
    objectives: tuple[Objective, ...] = ()
    if "objectives" in raw:
        objectives = err.check(parse_objectives, raw["objectives"], metrics, default=())
    space: Space = ()
    if "space" in raw:
        space_raw, where = err.check(resolve_space, raw["space"], base, default=(None, "space"))
        if space_raw is not None:
            space = err.check(parse_space, space_raw, where, default=())
            if family:
                check_space_for_family(err, space, family, model_args, where)
    if family and fairness:
        _check_criterion_choices(err, space, FAMILIES[family], fairness.criterion)
    search = _parse_search(err, raw.get("search") or {})
    trial = _parse_trial(err, raw.get("trial") or {})
    halving_raw = raw.get("search").get("halving") if isinstance(raw.get("search"), Mapping) else None
    search = dataclasses.replace(search, halving=parse_halving(
        err, halving_raw, epochs=trial.epochs, seeds=search.seeds, workers=trial.workers,
        family=family))  # fmt: skip
    post = _parse_post(err, raw.get("post") or {}, metrics)
    _check_repeats(err, post)
    with_confidence = [c for c in post.subject_to if "@" in c]
    if with_confidence and search.seeds < 2:
        err.add(f"`post.select.subject_to` {with_confidence[0]!r} asks for a confidence, which "
                f"needs a seed standard error: set `search.seeds` >= 2, but got {search.seeds}")
    if err.messages:
        raise SpecError(err.messages, source)
    return Spec(name, data, family, objectives, space, search, trial, post, model_args,
                fairness or FairnessSpec())  # fmt: skip


def _is_space(raw: Mapping[str, Any]) -> bool:
    """True for a search space given where a run spec belongs: every value a parameter (a
    mapping with a ``type``). A parameter may share a section's name (the translator's
    ``fairness``), but no section of a spec has a ``type``."""
    return bool(raw) and all(isinstance(v, Mapping) and "type" in v for v in raw.values())


def load_spec(path: str | Path) -> Spec:
    """Read and validate a run spec file (see :func:`parse_spec`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"spec file {str(path)!r} does not exist or is not a file")
    raw = read_yaml(path, "spec file")
    return parse_spec(raw, base=path.parent, source=str(path))


#: The spec a run folder holds (``Spec.to_dict()``, written when its search starts).
RUN_SPEC = "spec.yaml"


def load_run_spec(run_dir: str | Path) -> Spec:
    """The spec of the run folder ``run_dir``: its ``spec.yaml`` read and validated as a
    :class:`Spec`, every default filled in (the one way a stage reads a run's spec)."""
    path = Path(run_dir) / RUN_SPEC
    if not path.is_file():
        raise ValueError(f"RUN_DIR {str(run_dir)!r} has no {RUN_SPEC}; run the search stage first")
    return load_spec(path)


def _check_repeats(err: Errors, post: Any) -> None:
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


def _parse_fairness(err: Errors, raw: Any, family: str | None,
                    task: str | None) -> FairnessSpec | None:  # fmt: skip
    """``fairness.criterion``: one of :data:`CRITERIA` that the model family trains for
    (its ``criteria``) and that suits the task, where the task is known before the data loads;
    None when refused."""
    d = FairnessSpec()
    raw = err.check(as_mapping, "fairness", raw, default={})
    err.unknown_keys("fairness", raw, _FAIRNESS_KEYS)
    criterion = err.check(one_of, "fairness.criterion", raw.get("criterion", d.criterion),
                          CRITERIA, default=None)  # fmt: skip
    takes = FAMILIES[family].criteria if family else CRITERIA
    if criterion is None:
        return None
    if criterion not in takes:
        err.add(f"`fairness.criterion` must be one of {', '.join(takes)}: the {family} family "
                f"trains for no other, but got {criterion!r}")  # fmt: skip
        return None
    problem = criterion_problem(criterion, task)
    if problem:
        err.add(problem)
        return None
    return FairnessSpec(criterion=criterion)


def _check_criterion_choices(err: Errors, space: Space, family: Any, criterion: str) -> None:
    """Each searched parameter the criterion restricts (the family's ``criterion_choices``)
    offers only values the criterion allows."""
    for key, allowed in family.criterion_choices(criterion).items():
        for p in space:
            if p.name != key:
                continue
            bad = [c for c in (p.choices if p.type == "categorical" else ()) if c not in allowed]
            if p.type != "categorical" or bad:
                got = bad[0] if bad else p.type
                err.add(f"`space.{key}.choices` must be among {', '.join(map(str, allowed))} "
                        f"under `fairness.criterion: {criterion}`, but got {got!r}")  # fmt: skip


def _parse_search(err: Errors, raw: Any) -> SearchSpec:
    d = SearchSpec()
    raw = err.check(as_mapping, "search", raw, default={})
    if "configs_per_run" in raw:
        err.add("`search.configs_per_run` is gone: the search now runs lanes that each pull one "
                "configuration at a time (docs/architecture.md); delete the key")  # fmt: skip
    err.unknown_keys("search", {k: v for k, v in raw.items() if k != "configs_per_run"},
                     _SEARCH_KEYS)  # fmt: skip
    return SearchSpec(
        algorithm=err.check(one_of, "search.algorithm", raw.get("algorithm", d.algorithm),
                            ALGORITHMS, default=d.algorithm),
        trials=err.check(as_int, "search.trials", raw.get("trials", d.trials), 1, default=d.trials),
        max_concurrent=err.check(as_int, "search.max_concurrent",
                                 raw.get("max_concurrent", d.max_concurrent), 1,
                                 default=d.max_concurrent),
        seed=err.check(as_int, "search.seed", raw.get("seed", d.seed), 0, default=d.seed),
        seeds=err.check(as_int, "search.seeds", raw.get("seeds", d.seeds), 1, default=d.seeds),
        population=err.check(as_int, "search.population", raw.get("population", d.population), 1,
                             default=d.population),
        executor=err.check(one_of, "search.executor", _executor(raw.get("executor", d.executor)),
                           EXECUTORS, default=d.executor),
        stall_timeout_s=err.check(as_float, "search.stall_timeout_s",
                                  raw.get("stall_timeout_s", d.stall_timeout_s), 0.0,
                                  default=d.stall_timeout_s),
    )  # fmt: skip


def _executor(value: Any) -> Any:
    """``search.executor`` with an old name (:data:`OLD_EXECUTORS`) read as its new one."""
    return OLD_EXECUTORS.get(value, value) if isinstance(value, str) else value


def deprecations(raw: Any) -> list[str]:
    """Notes on old names a spec mapping still uses (read as their new ones, not errors)."""
    search = raw.get("search") if isinstance(raw, Mapping) else None
    executor = search.get("executor") if isinstance(search, Mapping) else None
    if isinstance(executor, str) and executor in OLD_EXECUTORS:
        new = OLD_EXECUTORS[executor]
        return [f"`search.executor: {executor}` is deprecated and read as `{new}` (this process, "
                f"no Ray); write `executor: {new}`"]
    return []


def _gpus(value: Any) -> float:
    gpus = as_float("trial.gpus_per_worker", value, 0.0)
    if gpus > 1 and gpus != int(gpus):
        raise ValueError(
            f"`trial.gpus_per_worker` must be a fraction <= 1 or a whole number, but got {gpus}"
        )
    return gpus


def _parse_trial(err: Errors, raw: Any) -> TrialSpec:
    d = TrialSpec()
    raw = err.check(as_mapping, "trial", raw, default={})
    err.unknown_keys("trial", raw, _TRIAL_KEYS)

    def get(key: str, fn: Callable[..., Any], *args: Any) -> Any:
        return err.check(fn, f"trial.{key}", raw.get(key, getattr(d, key)), *args,
                         default=getattr(d, key))  # fmt: skip

    cpus = get("cpus_per_worker", as_float, 0.0)
    if cpus == 0:
        err.add("`trial.cpus_per_worker` must be a number > 0 (a worker needs some CPU), but got 0")
    return TrialSpec(
        epochs=get("epochs", as_int, 1), batch_size=get("batch_size", as_int, 1),
        workers=get("workers", as_int, 1),
        gpus_per_worker=err.check(_gpus, raw.get("gpus_per_worker", d.gpus_per_worker),
                                  default=d.gpus_per_worker),
        cpus_per_worker=cpus or d.cpus_per_worker, max_failures=get("max_failures", as_int, 0),
    )  # fmt: skip


def _parse_post(err: Errors, raw: Any, metrics: tuple[str, ...] | None) -> PostSpec:
    d = PostSpec()
    raw = err.check(as_mapping, "post", raw, default={})
    err.unknown_keys("post", raw, _POST_KEYS)
    select = err.check(as_mapping, "post.select", raw.get("select") or {}, default={})
    err.unknown_keys("post.select", select, _SELECT_KEYS)
    if "maximize" in select and "minimize" in select:
        err.add(f"`post.select` takes one of `maximize` or `minimize`, but got both "
                f"(maximize={select['maximize']!r}, minimize={select['minimize']!r})")  # fmt: skip
    for key in ("maximize", "minimize"):
        if key in select:
            allowed = metrics or (str(select[key]),)
            err.check(one_of, f"post.select.{key}", select[key], allowed, default=None)
    subject_to = err.check(str_list, "post.select.subject_to", select.get("subject_to", []),
                           default=())  # fmt: skip
    for i, text in enumerate(subject_to):
        con = err.check(parse_constraint, text, default=None)
        if con is not None and metrics is not None and con.metric not in metrics:
            err.add(f"`post.select.subject_to[{i}]` names metric {con.metric!r}"
                    f"{close_match(con.metric, metrics)}, which this model does not report; "
                    f"metrics are {', '.join(metrics)}")  # fmt: skip
    knee = select.get("knee", False)
    if not isinstance(knee, bool):
        err.add(f"`post.select.knee` must be true or false, but got {short(knee)}")
    elif knee and ("maximize" in select or "minimize" in select):
        err.add("`post.select` takes either `knee: true` or `maximize`/`minimize`, not both")
    seeds, fresh = raw.get("seeds"), FRESH_SEEDS
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        seeds, fresh = None, seeds
    elif seeds is not None and (not isinstance(seeds, list) or not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    )):  # fmt: skip
        err.add("`post.seeds` must be a count of fresh seeds (an integer >= 1) or a non-empty "
                f"list of integers >= 0, but got {short(seeds)}")  # fmt: skip
        seeds = None
    retrain = raw.get("retrain_epochs", d.retrain_epochs)
    if retrain is not None:
        retrain = err.check(as_int, "post.retrain_epochs", retrain, 1, default=None)
    probes = err.check(str_list, "post.probes", raw.get("probes", list(d.probes)),
                       default=d.probes)  # fmt: skip
    for i, name in enumerate(probes):
        err.check(one_of, f"post.probes[{i}]", name, PROBE_KINDS, default=None)
    return PostSpec(
        select_maximize=select.get("maximize"), select_minimize=select.get("minimize"),
        subject_to=tuple(subject_to), knee=knee is True,
        top_k=err.check(as_int, "post.top_k", raw.get("top_k", d.top_k), 1, default=d.top_k),
        seeds=None if seeds is None else tuple(seeds), fresh_seeds=fresh,
        retrain_epochs=retrain, probes=tuple(probes),
    )  # fmt: skip


def dump_spec(spec: Spec) -> str:
    return yaml.safe_dump(spec.to_dict(), sort_keys=False)
