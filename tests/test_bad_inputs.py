"""The bad-input suite: malformed specs and data files, each refused cleanly before anything runs.

Every case runs the CLI (``fairsearch validate``, and for a subset ``fairsearch run`` with
``--storage tmp/runs``; a handful in a real subprocess) and checks: exit code 2; the message names
the key or column, the value (where there is one) and what is allowed (regexes per case); no
traceback; no run folder left behind; Ray never started (validation fails first). A path case
must not print the file it was pointed at.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from fairsearch import cli

ROOT = Path(__file__).resolve().parents[1]
CORES = os.cpu_count() or 1

BASE: dict[str, Any] = {
    "name": "bad",
    "data": {"name": "synthetic_regression", "n": 300, "n_train": 200, "seed": 0},
    "model": "wrapper",
    "objectives": [{"metric": "mse", "direction": "minimize"},
                   {"metric": "cka", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0.0, "high": 10.0},
              "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    "search": {"algorithm": "random", "trials": 2, "max_concurrent": 1, "seed": 0},
    "trial": {"epochs": 1, "batch_size": 32},
}  # fmt: skip


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() + 1  # always more than this machine has


# ----------------------------------------------------------------------------- Parquet files
def _table(n: int = 120, **over: Any) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    cols: dict[str, Any] = {
        "emb": [list(map(float, r)) for r in rng.normal(size=(n, 4))],
        "y": rng.integers(0, 2, n).tolist(),
        "q": rng.integers(0, 2, n).tolist(),
        "split": (["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - n // 2 - n // 4)),
    }
    cols.update(over)
    return {k: v for k, v in cols.items() if v is not None}


def _parquet(tmp: Path, name: str = "data.parquet", **over: Any) -> Path:
    path = tmp / name
    pq.write_table(pa.table(_table(**over)), path)
    return path


def _pq_data(path: Path, **extra: Any) -> dict[str, Any]:
    return {"path": str(path), "features": "emb", "target": "y", "protected": "q",
            "split": "split", **extra}  # fmt: skip


def _classification(raw: dict[str, Any]) -> dict[str, Any]:
    raw["objectives"] = [{"metric": "accuracy", "direction": "maximize"},
                         {"metric": "cka", "direction": "minimize"}]  # fmt: skip
    return raw


# ----------------------------------------------------------------------------- cases
@dataclass
class Case:
    id: str
    #: builds the spec file in a folder; returns its path
    make: Callable[[Path], Path]
    patterns: list[str]
    run: bool = False  #: also through `fairsearch run`
    subprocess: bool = False  #: also in a real subprocess
    forbidden: list[str] = field(default_factory=list)  #: must not appear in the output


def spec(*, run: bool = False, sub: bool = False, forbid: tuple[str, ...] = (),
         **changes: Any) -> Callable[..., Case]:  # fmt: skip
    """A case from BASE with ``changes`` (``a__b=v`` sets raw[a][b]; ``a__b=DELETE`` deletes)."""

    def build(id: str, *patterns: str) -> Case:
        def make(tmp: Path) -> Path:
            raw = copy.deepcopy(BASE)
            for path, value in changes.items():
                node, keys = raw, path.split("__")
                for k in keys[:-1]:
                    node = node.setdefault(k, {})
                if value is DELETE:
                    node.pop(keys[-1], None)
                else:
                    node[keys[-1]] = value(tmp) if callable(value) else value
            out = tmp / "spec.yaml"
            out.write_text(yaml.safe_dump(raw, sort_keys=False))
            return out

        return Case(id, make, list(patterns), run, sub, list(forbid))

    return build


def text(body: str | bytes | Callable[[Path], str], *, run: bool = False,
         sub: bool = False) -> Callable[..., Case]:  # fmt: skip
    """A case whose spec file holds ``body`` as it is."""

    def build(id: str, *patterns: str) -> Case:
        def make(tmp: Path) -> Path:
            out = tmp / "spec.yaml"
            content = body(tmp) if callable(body) else body
            if isinstance(content, bytes):
                out.write_bytes(content)
            else:
                out.write_text(content)
            return out

        return Case(id, make, list(patterns), run, sub)

    return build


DELETE = object()
GOOD = yaml.safe_dump(BASE, sort_keys=False)
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefghijklm", "bcdefghijklmn", strict=True)
) + "name: bomb\n"
SPACE_FILE = "mu: {type: float, low: 0, high: [1\n"


def _space_beside(tmp: Path) -> str:
    (tmp / "myspace.yaml").write_text(SPACE_FILE)
    return "myspace.yaml"


CASES: list[Case] = [
    # --- YAML --------------------------------------------------------------------------------
    text("name: bad\ndata: {name: [unclosed\n", sub=True)(
        "yaml-syntax", r"spec file '.*spec.yaml' is not valid YAML at line \d+"),
    text(GOOD.replace("  name: synthetic_regression", "\tname: synthetic_regression"))(
        "yaml-tab", r"is not valid YAML at line 3, column 1", r"found character '\\t'"),
    text(BOMB, sub=True)(
        "yaml-alias-bomb", r"more than 100 YAML aliases", r"refused as a possible alias bomb"),
    text(GOOD + "# " + "x" * 1_100_000 + "\n")(
        "yaml-over-1MB", r"spec file '.*' must be at most 1000000 bytes, but has 1\d{6}"),
    text("- name: bad\n- data: x\n")(
        "yaml-a-list", r"a run spec must be a mapping of sections, but got \[\{'name': 'bad'\}"),
    text("")("yaml-empty-file", r"a run spec must be a mapping of sections, but got None"),
    text("just a sentence\n")(
        "yaml-a-scalar", r"a run spec must be a mapping of sections, but got 'just a sentence'"),
    text(b"\x00\x01\x02binary\xff")("yaml-binary", r"is not valid YAML"),
    text(GOOD + "space: *nowhere\n")("yaml-unknown-alias", r"is not valid YAML at line \d+"),
    # --- top level, types ----------------------------------------------------------------------
    spec(serch={})("unknown-top-key", r"unknown key `serch` \(did you mean 'search'\?\)",
                   r"allowed keys are name, data, model"),
    spec(objectives=DELETE)("missing-objectives", r"`objectives` is required in a run spec"),
    spec(name="my run")("name-with-space", r"`name` must be a non-empty string of "
                        r"\[A-Za-z0-9_.-\], but got 'my run'"),
    spec(model="wraper", run=True)("model-typo", r"`model` must be one of wrapper, translator, "
                                   r"but got 'wraper' \(did you mean 'wrapper'\?\)"),
    spec(model={"family": "wrapper", "factory": "no_such_pkg.nets:build"})(
        "factory-not-importable", r"`model.factory` 'no_such_pkg.nets:build' cannot be imported",
        r"ModuleNotFoundError"),
    spec(model={"family": "wrapper", "factory_args": {"width": 3}})(
        "factory-args-without-factory", r"`model.factory_args` needs `model.factory`"),
    spec(model={"family": "wrapper", "fatcory": "x:y"})(
        "model-key-typo", r"unknown key `model.fatcory` \(did you mean 'factory'\?\)"),
    spec(objectives="mse")("objectives-not-a-list",
                           r"`objectives` must be a non-empty list, but got 'mse'"),
    spec(objectives=[{"metric": "mse2", "direction": "minimize"}])(
        "objective-metric-unknown", r"`objectives\[0\].metric` must be one of .*mse.*cka.*, "
        r"but got 'mse2' \(did you mean 'mse'\?\)"),
    spec(objectives=[{"metric": "mse", "direction": "minimise"}])(
        "objective-direction-typo", r"`objectives\[0\].direction` must be one of minimize, "
        r"maximize, but got 'minimise' \(did you mean 'minimize'\?\)"),
    spec(objectives=[{"metric": "mse", "direction": "minimize"}] * 2)(
        "objective-twice", r"`objectives` must name each metric once, but got \['mse', 'mse'\]"),
    spec(search__trials="many", run=True)(
        "trials-not-int", r"`search.trials` must be an integer >= 1, but got 'many'"),
    spec(search__trials=0)("trials-zero", r"`search.trials` must be an integer >= 1, but got 0"),
    spec(search__algorithm="cmaes")(
        "algorithm-unknown", r"`search.algorithm` must be one of nsga2, tpe, random, gp, but "
        r"got 'cmaes'"),
    spec(search__max_concurrent=-1)(
        "concurrency-negative", r"`search.max_concurrent` must be an integer >= 1, but got -1"),
    spec(search__seed=-3)("seed-negative", r"`search.seed` must be an integer >= 0, but got -3"),
    spec(search__stall_timeout_s=float("nan"))(
        "stall-timeout-nan", r"`search.stall_timeout_s` must be a finite number >= 0.0, but "
        r"got nan"),
    spec(search__configs_per_run=4)(
        "configs-per-run-gone", r"`search.configs_per_run` is gone", r"delete the key"),
    spec(search=["random"])("search-a-list", r"`search` must be a mapping, but got \['random'\]"),
    spec(trial__epochs=0, run=True)(
        "epochs-zero", r"`trial.epochs` must be an integer >= 1, but got 0"),
    spec(trial__batch_size=2.5)(
        "batch-size-float", r"`trial.batch_size` must be an integer >= 1, but got 2.5"),
    spec(trial__epochs=True)("epochs-bool", r"`trial.epochs` must be an integer >= 1, but got True"),
    spec(trial__worker=2)("trial-key-typo", r"unknown key `trial.worker` \(did you mean "
                          r"'workers'\?\); allowed keys are epochs, batch_size, workers"),
    # --- resources -------------------------------------------------------------------------------
    spec(trial__gpus_per_worker=1.5)(
        "gpus-fraction-above-1", r"`trial.gpus_per_worker` must be a fraction <= 1 or a whole "
        r"number, but got 1.5"),
    spec(trial__gpus_per_worker=-1)(
        "gpus-negative", r"`trial.gpus_per_worker` must be a finite number >= 0.0, but got -1"),
    spec(trial__cpus_per_worker=0)(
        "cpus-zero", r"`trial.cpus_per_worker` must be a number > 0 .*, but got 0"),
    spec(trial__cpus_per_worker=float("inf"), run=True)(
        "cpus-inf", r"`trial.cpus_per_worker` must be a finite number >= 0.0, but got inf"),
    spec(trial__gpus_per_worker=lambda tmp: _gpus(), run=True, sub=True)(
        "gpus-on-a-cpu-machine", r"`trial.gpus_per_worker`: 1 worker\(s\) x \d+ GPUs = \d+ GPUs "
        r"per trial, but this machine has \d+", r"set it to 0 or join a cluster"),
    spec(trial__cpus_per_worker=max(64, 4 * CORES), run=True)(
        "cpus-per-worker-64", rf"`trial`: 1 worker\(s\) x {max(64, 4 * CORES)} CPUs = "
        rf"{max(64, 4 * CORES)} CPUs per trial, but this machine has {CORES}"),
    spec(trial__workers=max(8, 4 * CORES), run=True)(
        "workers-8", rf"`trial`: {max(8, 4 * CORES)} worker\(s\) x 1 CPUs = .* CPUs per trial, "
        rf"but this machine has {CORES}", r"join a cluster \(--address\)"),
    # --- post, constraints -----------------------------------------------------------------------
    spec(post={"seeds": []})("seeds-empty", r"`post.seeds` must be a count of fresh seeds "
                             r"\(an integer >= 1\) or a non-empty list of integers >= 0, but "
                             r"got \[\]"),
    spec(post={"seeds": 0})("seeds-zero-count", r"`post.seeds` must be a count .* but got 0"),
    spec(search={"seeds": 0})("search-seeds-zero", r"`search.seeds` must be an integer >= 1, "
                              r"but got 0"),
    spec(search={"seeds": 1}, post={"select": {"maximize": "accuracy", "subject_to": [
        "dp_gap <= 0.05 @ 0.9"]}})("confidence-one-seed", r"asks for a confidence, which needs "
                                   r"a seed standard error: set `search.seeds` >= 2, but got 1"),
    spec(post={"select": {"maximize": "accuracy", "subject_to": ["dp_gap <= 0.05 @ 1.5"]}})(
        "confidence-out-of-range", r"confidence must lie strictly between 0.5 and 1, but got 1.5"),
    spec(post={"seeds": [-1]})("seeds-negative", r"`post.seeds` must be .* but got \[-1\]"),
    spec(post={"top_k": 0})("top-k-zero", r"`post.top_k` must be an integer >= 1, but got 0"),
    spec(post={"probes": ["xgboost"]})(
        "probe-unknown", r"`post.probes\[0\]` must be one of .*logistic.*, but got 'xgboost'"),
    spec(post={"select": {"maximize": "mse", "minimize": "cka"}})(
        "select-both", r"`post.select` takes one of `maximize` or `minimize`, but got both "
        r"\(maximize='mse', minimize='cka'\)"),
    spec(post={"select": {"knee": "yes"}})(
        "knee-not-bool", r"`post.select.knee` must be true or false, but got 'yes'"),
    spec(post={"retrain_epochs": 0})(
        "retrain-epochs-zero", r"`post.retrain_epochs` must be an integer >= 1, but got 0"),
    spec(post={"select": {"subject_to": ["cka < = 0.1"]}}, run=True)(
        "constraint-grammar", r"subject_to entries must read '<metric> <op> <number>'",
        r"but got 'cka < = 0.1'"),
    spec(post={"select": {"subject_to": ["accuracy <= 0.1"]}})(
        "constraint-unknown-metric", r"`post.select.subject_to\[0\]` names metric 'accuracy'",
        r"metrics are .*mse"),
    spec(post={"select": {"subject_to": "cka <= 0.1"}})(
        "constraint-not-a-list", r"`post.select.subject_to` must be a list of strings, but got "
        r"'cka <= 0.1'"),
    spec(post={"select": {"subject_to": ["__import__('os').system('id') <= 1"]}})(
        "constraint-code", r"subject_to entries must read '<metric> <op> <number>'"),
    spec(post={"slect": {}})("post-key-typo", r"unknown key `post.slect` \(did you mean "
                             r"'select'\?\)"),
    # --- space: paths --------------------------------------------------------------------------
    spec(space="/etc/passwd", run=True, sub=True, forbid=("root:", "nologin"))(
        "space-absolute-path", r"`space` must name a .yaml file in search_spaces/ or beside the "
        r"spec, without '\.\.' or an absolute path, but got '/etc/passwd'"),
    spec(space="../x.yaml", forbid=("root:",))(
        "space-dotdot", r"`space` must name a .yaml file .* but got '\.\./x.yaml'"),
    spec(space="search_spaces/../../../etc/passwd", forbid=("root:",))(
        "space-dotdot-inside", r"`space` must name a .yaml file .* but got "
        r"'search_spaces/\.\./\.\./\.\./etc/passwd'"),
    spec(space="no_such_space.yaml")(
        "space-missing-file", r"`space` names a file that does not exist, got "
        r"'no_such_space.yaml'; shipped spaces are .*wrapper_mlp.yaml"),
    spec(space=_space_beside)("space-file-bad-yaml", r"space file '.*myspace.yaml' is not "
                              r"valid YAML at line \d+"),
    # --- space: types, ranges, conditions ------------------------------------------------------
    spec(space={})("space-empty", r"`space` must be a non-empty mapping of parameters, but got {}"),
    spec(space__mu={"type": "floot", "low": 0, "high": 1})(
        "param-type-typo", r"`space.mu.type` must be one of float, int, categorical, but got "
        r"'floot' \(did you mean 'float'\?\)"),
    spec(space__mu={"type": "float", "low": 5, "high": 1})(
        "param-low-above-high", r"`space.mu`: `low <= high` must hold, but got \(low=5.0, "
        r"high=1.0\)"),
    spec(space__lr={"type": "float", "low": 0, "high": 1, "log": True})(
        "param-log-from-zero", r"`space.lr.low` must be > 0 when `log` is true, but got "
        r"\(low=0.0, log=True\)"),
    spec(space__mu={"type": "float", "low": 0, "high": 1, "step": -0.5})(
        "param-step-negative", r"`space.mu.step` must be > 0, but got -0.5"),
    spec(space__lr={"type": "float", "low": 1e-4, "high": 1, "log": True, "step": 0.1})(
        "param-step-and-log", r"`space.lr`: `step` and `log` cannot be used together"),
    spec(space__dependence={"type": "categorical", "choices": []})(
        "choices-empty", r"`space.dependence.choices` must be a non-empty list, but got \[\]"),
    spec(space__dependence={"type": "categorical", "choices": ["cka", "cka"]})(
        "choices-repeated", r"`space.dependence.choices` must not repeat a value, but got "
        r"\['cka', 'cka'\]"),
    spec(space__dependence={"type": "categorical", "choices": ["cka", "pearson"]})(
        "choice-not-allowed", r"`space.dependence.choices` must be one of .*cka.*hsic.*, but "
        r"got 'pearson'"),
    spec(space__mu={"type": "float", "low": 0, "hihg": 1})(
        "param-key-typo", r"unknown key `space.mu.hihg` \(did you mean 'high'\?\)"),
    spec(space__mu={"type": "float", "low": 0, "high": 1, "when": {"loss": "adv"}}, run=True)(
        "when-unknown-param", r"`space.mu.when.loss`: a condition must name a parameter of the "
        r"space, but got 'loss'"),
    spec(space__mu={"type": "float", "low": 0, "high": 1, "when": {"mu": 1}})(
        "when-on-itself", r"`space.mu.when.mu`: a parameter cannot be conditional on itself"),
    spec(space={"dependence": {"type": "categorical", "choices": ["cka", "hsic"],
                               "when": {"sigma_f": 1.0}},
                "sigma_f": {"type": "float", "low": 0.2, "high": 5,
                            "when": {"dependence": "cka"}}})(
        "when-cycle", r"`space`: conditions must not form a cycle, but got "
        r"(dependence -> sigma_f -> dependence|sigma_f -> dependence -> sigma_f)"),
    spec(space__dependence={"type": "categorical", "choices": ["cka"]},
         space__sigma_f={"type": "float", "low": 0.2, "high": 5, "when": {"dependence": "mmd"}})(
        "when-value-not-a-choice", r"`space.sigma_f.when.dependence`: condition values must be "
        r"among \['cka'\], but got \['mmd'\]"),
    spec(space__alpha={"type": "float", "low": 0, "high": 1})(
        "param-not-of-the-family", r"unknown parameter `space.alpha`; the wrapper family takes"),
    spec(space__width={"type": "int", "low": 0.5, "high": 8})(
        "int-param-fraction", r"`space.width.low` must be an integer, but got 0.5"),
    spec(space__mu=[0, 10])("param-not-a-mapping", r"`space.mu` must be a mapping with a `type` "
                            r"\(float, int or categorical\), but got \[0, 10\]"),
    # --- data section ------------------------------------------------------------------------
    spec(data={"name": "adulte"})("data-name-typo", r"`data.name` must be one of .*, but got "
                                  r"'adulte' \(did you mean 'adult'\?\)"),
    spec(data={"name": "adult", "path": "x.parquet"})(
        "data-name-and-path", r"`data` must have exactly one of `name` .*, `path` .* or "
        r"`loader` .*, but got keys \['name', 'path'\]"),
    spec(data={"name": "synthetic_regression", "nn": 300}, run=True)(
        "data-builtin-key-typo", r"unknown key `data.nn` \(did you mean 'n'\?\); allowed keys "
        r"with `data.name` are name, n, noise"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp), protectd="q"), sub=True)(
        "data-path-key-typo", r"unknown key `data.protectd` \(did you mean 'protected'\?\); "
        r"allowed keys with `data.path` are path, features, target, protected"),
    spec(data={"loader": "no_such_pkg:load"})(
        "data-loader-missing", r"`data.loader` 'no_such_pkg:load' cannot be imported"),
    spec(data={"loader": "not an import path"})(
        "data-loader-malformed", r"`data.loader` must be an import path "
        r"'package.module:function', but got 'not an import path'"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp), task="regresion"))(
        "data-task-typo", r"`data.task` must be one of regression, classification, but got "
        r"'regresion' \(did you mean 'regression'\?\)"),
    spec(data={"path": 42})("data-path-not-a-string", r"`data.path` must be a file path, but "
                            r"got 42"),
    # --- data columns and values (Parquet) ------------------------------------------------------
    spec(data=lambda tmp: _pq_data(tmp / "nowhere.parquet"), run=True)(
        "parquet-missing-file", r"`data.path` '.*nowhere.parquet': .*No such file or directory"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp), protected="gender"), run=True)(
        "parquet-missing-column", r"the protected column must exist in data.parquet, but "
        r"'gender' does not; available columns: \['emb', 'y', 'q', 'split'\]"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp, emb=[[float("nan")] * 4] + [[0.0] * 4] * 119)))(
        "parquet-nan-feature", r"features .*'emb'.* must hold only finite values .*, but 1 of 120 "
        r"rows do \(first at row 0\)"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp, q=[1] * 120)), run=True)(
        "parquet-one-class-q", r"protected.*'q'.* must take at least 2 distinct values, but has "
        r"the single value '1'"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp, emb=[[0.0] * 4] * 60 + [[0.0] * 3] * 60)))(
        "parquet-length-mismatch", r"'emb'.* must hold lists of one length, but row 0 has 4 "
        r"values and row 60 has 3 \(lengths seen: \[3, 4\]\)"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp, y=[None] + [1] * 119)))(
        "parquet-null-target", r"target column 'y' must hold only finite values .* 1 of 120 rows"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp, split=["train"] * 100 + ["dev"] * 20)))(
        "parquet-unknown-split", r"split.* values must be one of \['train', 'val', 'test'\], but "
        r"got 'dev' \(20 rows\)"),
    spec(data=lambda tmp: _pq_data(_write(tmp / "fake.parquet", b"PAR1 not really")), run=True)(
        "parquet-not-parquet", r"`data.path` '.*fake.parquet': .*(magic|footer|not a parquet)"),
    spec(data=lambda tmp: _pq_data(_write(tmp / "empty.parquet", b"")))(
        "parquet-empty-file", r"`data.path` '.*empty.parquet': .*(size is 0|empty)"),
    # --- values and sizes ------------------------------------------------------------------------
    spec(trial__batch_size=10_000, run=True, sub=True)(
        "batch-bigger-than-data", r"`trial.batch_size` must be at most the \d+ training rows of "
        r"the data, but got 10000"),
    spec(data=lambda tmp: _pq_data(_parquet(tmp, split=["train"] * 90 + ["val"] * 30)), run=True)(
        "no-test-split", r"`data` must have test rows \(the audit scores them\), but has none"),
    spec(data={"name": "synthetic_regression", "n": 100, "n_train": 600}, run=True)(
        "synthetic-n-train-above-n", r"n_train \+ n_val <= n must hold, but got \(n_train=600, "
        r"n_val=0, n=100\)"),
]


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _classification_case(case: Case) -> Case:
    """Parquet cases carry a classification target: their objectives are accuracy and cka."""
    make = case.make

    def wrapped(tmp: Path) -> Path:
        path = make(tmp)
        if case.id.startswith("yaml-"):
            return path
        raw = yaml.safe_load(path.read_text())
        if isinstance(raw, dict) and isinstance(raw.get("data"), dict) and "path" in raw["data"]:
            path.write_text(yaml.safe_dump(_classification(raw), sort_keys=False))
        return path

    return Case(case.id, wrapped, case.patterns, case.run, case.subprocess, case.forbidden)


CASES = [_classification_case(c) for c in CASES]
BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES), "case ids must be unique"


def _check(case: Case, code: int, out: str, err: str, tmp: Path) -> None:
    text = out + err
    assert code == 2, f"{case.id}: exit {code}\n{text}"
    assert "Traceback" not in text, text
    assert err.startswith("fairsearch "), err
    for pattern in case.patterns:
        assert re.search(pattern, err), f"{case.id}: {pattern!r} not in:\n{err}"
    for word in case.forbidden:
        assert word not in text, f"{case.id}: {word!r} printed"
    runs = tmp / "runs"
    assert not runs.exists() or not any(runs.iterdir()), f"{case.id}: a run folder was left"


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("FAIRSEARCH_DEBUG", raising=False)
    monkeypatch.setenv("FAIRSEARCH_STAGING", str(tmp_path / "staging"))
    return tmp_path


def _ray_started() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_refuses(case: Case, workdir: Path, capsys) -> None:
    path = case.make(workdir)
    code = cli.main(["validate", str(path)])
    out, err = capsys.readouterr()
    _check(case, code, out, err, workdir)


RUN_CASES = [c for c in CASES if c.run]


@pytest.mark.ray  # `run` starts Ray while it checks the data, model and resources
@pytest.mark.parametrize("case", RUN_CASES, ids=[c.id for c in RUN_CASES])
def test_run_refuses_before_anything_runs(case: Case, workdir: Path, capsys) -> None:
    path = case.make(workdir)
    code = cli.main(["run", str(path), "--storage", str(workdir / "runs"), "--quiet"])
    out, err = capsys.readouterr()
    _check(case, code, out, err, workdir)
    assert not _ray_started(), f"{case.id}: Ray started before validation failed"
    assert not (workdir / "staging").exists()


SUB_CASES = [c for c in CASES if c.subprocess]


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.ray) if c.run else c
                                  for c in SUB_CASES], ids=[c.id for c in SUB_CASES])
def test_a_real_subprocess_refuses(case: Case, workdir: Path) -> None:
    path = case.make(workdir)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "FAIRSEARCH_DEBUG")}
    cmd = "run" if case.run else "validate"
    extra = ["--storage", str(workdir / "runs"), "--quiet"] if case.run else []
    proc = subprocess.run([sys.executable, "-m", "fairsearch.cli", cmd, str(path), *extra],
                          capture_output=True, text=True, cwd=workdir, timeout=120,
                          env={**env, "PYTHONPATH": str(ROOT)})  # fmt: skip
    _check(case, proc.returncode, proc.stdout, proc.stderr, workdir)


def test_the_suite_is_big_enough() -> None:
    assert len(CASES) >= 60
    assert len(SUB_CASES) >= 5 and len(RUN_CASES) >= 15


@pytest.mark.ray
def test_storage_that_is_a_file_is_refused(workdir: Path, capsys) -> None:
    spec_path = workdir / "spec.yaml"
    spec_path.write_text(GOOD)
    (workdir / "runs").write_text("I am a file")
    assert cli.main(["run", str(spec_path), "--storage", str(workdir / "runs")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"`--storage` must be a folder \(the parent of run folders\) or a URI, but "
                     r"'.*runs' is an existing file", err), err
    assert "Traceback" not in err and not _ray_started()


def test_five_mistakes_in_five_sections_are_listed_at_once(workdir: Path, capsys) -> None:
    raw = copy.deepcopy(BASE)
    raw["objectives"][0]["direction"] = "up"  # objectives
    raw["space"]["mu"]["low"] = 20.0  # space (low > high)
    raw["search"]["trials"] = 0  # search
    raw["trial"]["epochs"] = -1  # trial
    raw["post"] = {"top_k": 0}  # post
    path = workdir / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"spec '.*spec.yaml' has 5 problems:", err), err
    for pattern in (r"`objectives\[0\].direction` must be one of minimize, maximize, but got 'up'",
                    r"`space.mu`: `low <= high` must hold, but got \(low=20.0, high=10.0\)",
                    r"`search.trials` must be an integer >= 1, but got 0",
                    r"`trial.epochs` must be an integer >= 1, but got -1",
                    r"`post.top_k` must be an integer >= 1, but got 0"):  # fmt: skip
        assert re.search(r"\n  - " + pattern, err), pattern
    assert "Traceback" not in err


@pytest.mark.ray
def test_search_command_checks_data_before_the_engine(workdir: Path, capsys) -> None:
    path = BY_ID["batch-bigger-than-data"].make(workdir)
    assert cli.main(["search", str(path), "--storage", str(workdir / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fairsearch search: error: `trial.batch_size` must be at most the" in err
    assert not (workdir / "runs").exists() and not _ray_started()


@pytest.mark.parametrize("command", ["resume", "run"])
def test_resume_of_a_corrupt_study_names_the_repair_command(workdir: Path, capsys,
                                                            command: str) -> None:  # fmt: skip
    run = workdir / "runs" / "bad-1"
    run.mkdir(parents=True)
    (run / "spec.yaml").write_text(GOOD)
    (run / "study.journal").write_bytes(b"not a journal at all\n" * 10)
    assert cli.main([command, str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"study.journal in '{run}' is corrupt \(.*\): run `fairsearch repair {run}`", err)
    assert not _ray_started() and not (run / "run.lock").exists()
