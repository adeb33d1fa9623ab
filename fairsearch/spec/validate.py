"""``fairsearch validate SPEC``: the whole spec, its data and one model, every problem at once.

Beyond :func:`~fairsearch.spec.load_spec` (keys, types, ranges, family parameters, metrics,
probes, constraints, factory import paths), this loads the data (columns, values, splits), lets the
family check it, builds one model from a user factory (it must return a ``torch.nn.Module``) and
checks the requested resources against this machine when no Ray cluster is named, or against the
node types of an autoscaler config (``--cluster cluster.yaml``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from fairsearch.data import split_train_val
from fairsearch.families import TrialSettings
from fairsearch.spec.fields import SpecError
from fairsearch.spec.safe_yaml import read_yaml
from fairsearch.spec.schema import deprecations, dump_spec, load_spec
from fairsearch.spec.validated import Spec

__all__ = ["check_runnable", "cluster_resource_problems", "configure", "main", "preflight"]


def check_runnable(spec: Spec, *, local: bool = True, cluster: str | None = None) -> Any:
    """Load the data and build one model; returns the dataset. ``SpecError`` lists problems.

    ``local``: also check the trial's resources against this machine (no cluster to join);
    ``cluster``: instead, against the node types of this Ray autoscaler config (``cluster.yaml``),
    counting the nodes the autoscaler may add.
    """
    from fairsearch.data import load_from_spec

    problems: list[str] = []
    data = None
    where = f"`data.path` {spec.data['path']!r}" if "path" in spec.data else "`data`"
    try:
        data = load_from_spec(spec.data)
    except (ValueError, OSError) as exc:
        problems.append(f"{where}: {exc}")
    if data is not None:
        try:
            spec.family.check_data(data)
            train, _ = split_train_val(data, spec.search.seed)
            if len(train.X) < spec.trial.batch_size:
                problems.append(
                    f"`trial.batch_size` must be at most the {len(train.X)} training rows of the "
                    f"data, but got {spec.trial.batch_size}"
                )
            if (data.split == "test").sum() == 0:
                problems.append("`data` must have test rows (the audit scores them), but has none")
            problems += _criterion_problems(spec, data)
        except ValueError as exc:
            problems.append(f"`data`: {exc}")
        if spec.model_args.get("factory"):
            problems += _check_factory(spec, data)
    if cluster is not None:
        problems += cluster_resource_problems(spec, cluster)
    elif local:
        problems += local_resource_problems(spec)
    if problems:
        raise SpecError(problems)
    return data


def preflight(spec: Spec, *, address: str | None = None) -> Any:
    """Everything checked before a search starts (``fairsearch run``, ``search``, ``resume``):
    the data, one model and, unless a cluster is joined (``address`` or ``RAY_ADDRESS``), this
    machine's resources. Returns the dataset; ``SpecError`` lists every problem."""
    joined = bool(address or os.environ.get("RAY_ADDRESS"))
    return check_runnable(spec, local=not joined)


def _criterion_problems(spec: Spec, data: Any) -> list[str]:
    """``fairness.criterion`` against the loaded data: its task and number of classes, and the
    metrics it reports for them."""
    import numpy as np

    from fairsearch.measures.fairness import criterion_problem

    n_classes = len(np.unique(data.y)) if data.task == "classification" else None
    problem = criterion_problem(spec.criterion, data.task, n_classes)
    return [problem] if problem else []


def _check_factory(spec: Spec, data: Any) -> list[str]:
    """Build one model from the user's factory with the first value of each searched parameter."""
    first = {p.name: (p.choices[0] if p.type == "categorical" else p.low) for p in spec.space}
    family = spec.family
    try:
        train, _ = split_train_val(data, spec.search.seed)
        settings = TrialSettings(epochs=1, batch_size=spec.trial.batch_size, model=spec.model_args)
        family.build(first, train, settings)
    except ValueError as exc:
        return [str(exc)]
    return []


def cluster_resource_problems(spec: Spec, cluster: str) -> list[str]:
    """What the node types of the autoscaler config ``cluster`` can never give one trial."""
    from fairsearch.spec.resources import nodes_from_autoscaler_config, resource_problems

    path = Path(cluster)
    if not path.is_file():
        raise ValueError(f"--cluster must name a Ray autoscaler config (cluster.yaml), but "
                         f"{cluster!r} is not a file")
    raw = read_yaml(path, "autoscaler config")
    try:
        nodes = nodes_from_autoscaler_config(raw)
    except ValueError as exc:
        raise ValueError(f"--cluster {cluster!r}: {exc}") from None
    max_workers = raw.get("max_workers") if isinstance(raw, dict) else None
    return resource_problems(spec.trial, nodes, max_workers=max_workers,
                             where=f"the cluster of {path.name}")


def local_resource_problems(spec: Spec) -> list[str]:
    """What this machine can never give one trial (GPUs, CPUs), named with the amounts."""
    trial = spec.trial
    out = []
    cpus = os.cpu_count() or 1
    need_cpu = trial.cpus_per_worker * trial.workers
    if need_cpu > cpus:
        out.append(
            f"`trial`: {trial.workers} worker(s) x {trial.cpus_per_worker:g} CPUs = {need_cpu:g} "
            f"CPUs per trial, but this machine has {cpus}; lower them or join a cluster (--address)"
        )
    if trial.gpus_per_worker > 0:
        import torch

        have = torch.cuda.device_count()
        need = trial.gpus_per_worker * trial.workers
        if need > have:
            out.append(
                f"`trial.gpus_per_worker`: {trial.workers} worker(s) x {trial.gpus_per_worker:g} "
                f"GPUs = {need:g} GPUs per trial, but this machine has {have}; set it to 0 or "
                f"join a cluster with GPU nodes (--address)"
            )
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", nargs="?", help="run spec (YAML)")
    parser.add_argument("--json-schema", action="store_true",
                        help="print the run spec's JSON Schema (for editors) and exit")  # fmt: skip
    parser.add_argument("--show", action="store_true", help="print the spec with defaults")
    parser.add_argument("--no-data", action="store_true",
                        help="check the spec file only: do not load the data or build a model")  # fmt: skip
    parser.add_argument("--cluster", metavar="CLUSTER_YAML", default=None,
                        help="check the trial's resources against the node types of this Ray "
                             "autoscaler config instead of this machine")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    try:
        return _validate(args)
    except KeyboardInterrupt as exc:  # the CLI's line says what was kept: nothing is written
        exc.note = "validate writes nothing (built data it had finished stays cached); re-run it"  # type: ignore[attr-defined]
        raise


def _validate(args: argparse.Namespace) -> int:
    if args.json_schema:
        import json

        from fairsearch.spec.json_schema import spec_json_schema

        print(json.dumps(spec_json_schema(), indent=2))
        return 0
    if args.spec is None:
        raise ValueError("SPEC is required (a run spec YAML file), unless --json-schema is given")
    spec = load_spec(args.spec)
    for note in deprecations(read_yaml(Path(args.spec), "spec file")):
        print(f"note: {note}", file=sys.stderr)
    if args.cluster is not None:
        if args.no_data:
            problems = cluster_resource_problems(spec, args.cluster)
            if problems:
                raise SpecError(problems)
        else:
            check_runnable(spec, cluster=args.cluster)
    elif not args.no_data:
        preflight(spec)
    if args.show:
        sys.stdout.write(dump_spec(spec))
    objectives = ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives)
    factory = f" ({spec.model_args['factory']})" if spec.model_args.get("factory") else ""
    criterion = f", criterion {spec.criterion}" if spec.criterion != "independence" else ""
    print(
        f"ok: {spec.name}: model={spec.model}{factory}{criterion}, {len(spec.space)} parameters, "
        f"{objectives}, {spec.search.algorithm} x {spec.search.trials} trials"
    )
    return 0
