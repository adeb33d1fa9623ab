"""Can the cluster ever place one trial? Checked before the search, with the amounts named.

A trial is one Ray Train run of ``trial.workers`` workers, each asking ``trial.cpus_per_worker``
CPUs and ``trial.gpus_per_worker`` GPUs on a single node. :func:`resource_problems` is a pure
function of the cluster's node types, each a mapping::

    {"name": "ray.worker.gpu", "CPU": 4, "GPU": 1, "count": 0, "max_count": 4}

(``count``: nodes running now; ``max_count``: the most the autoscaler may run). It says which
resource is short, the amount asked and what the largest node has; for the workers of one trial,
how many fit on the whole cluster, counting the nodes the autoscaler may add (each type up to
its ``max_workers``, all worker types together up to the config's ``max_workers``).

The node types come from an autoscaler config (:func:`nodes_from_autoscaler_config`:
``available_node_types``, as in ``cluster.yaml`` and ``jobs/fake_cluster.yaml``) or from a live
Ray (:func:`fairsearch.search.cluster.nodes_from_ray`, ``ray.nodes()``: what runs now). No Ray here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fairsearch.spec.fields import SpecError
from fairsearch.spec.safe_yaml import read_yaml
from fairsearch.spec.validated import Spec, TrialSpec

__all__ = ["check_resources", "nodes_from_autoscaler_config", "resource_problems", "workers_that_fit"]

_EPS = 1e-9


def _fits(have: float, per_worker: float) -> int:
    """Workers of ``per_worker`` that fit in ``have`` (unbounded when none is asked)."""
    if per_worker <= 0:
        return 1 << 30
    return int(math.floor(have / per_worker + _EPS))


def _per_node(node: Mapping[str, Any], trial: TrialSpec) -> int:
    return min(_fits(float(node.get("CPU", 0)), trial.cpus_per_worker),
               _fits(float(node.get("GPU", 0)), trial.gpus_per_worker))  # fmt: skip


def workers_that_fit(nodes: Sequence[Mapping[str, Any]], trial: TrialSpec,
                     max_workers: int | None = None) -> int:  # fmt: skip
    """Most workers of ``trial`` the cluster can hold at once, autoscaled to the limit.

    Nodes with ``head: true`` do not count against ``max_workers`` (the autoscaler's limit on
    worker nodes); the worker types are filled best-first up to it.
    """
    total = 0
    budget = max_workers if max_workers is not None else 1 << 30
    workers: list[tuple[int, int]] = []  # (workers per node, nodes)
    for node in nodes:
        count = int(node.get("max_count", node.get("count", 1)))
        if node.get("head"):
            total += _per_node(node, trial) * count
        else:
            workers.append((_per_node(node, trial), count))
    for per_node, count in sorted(workers, reverse=True):
        take = min(count, budget)
        total += per_node * take
        budget -= take
    return total


def _describe(node: Mapping[str, Any]) -> str:
    return f"{node.get('name', '?')} (CPU {float(node.get('CPU', 0)):g}, GPU {float(node.get('GPU', 0)):g})"


def resource_problems(trial: TrialSpec, nodes: Sequence[Mapping[str, Any]], *,
                      max_workers: int | None = None, where: str = "the cluster") -> list[str]:  # fmt: skip
    """What ``nodes`` can never give one trial, each problem naming the resource and amounts."""
    nodes = [n for n in nodes if int(n.get("max_count", n.get("count", 1))) > 0]
    if not nodes:
        return [f"{where} has no node that can run a trial"]
    out: list[str] = []
    top_cpu = max(nodes, key=lambda n: float(n.get("CPU", 0)))
    top_gpu = max(nodes, key=lambda n: float(n.get("GPU", 0)))
    if float(top_cpu.get("CPU", 0)) + _EPS < trial.cpus_per_worker:
        out.append(f"`trial.cpus_per_worker` asks {trial.cpus_per_worker:g} CPUs per worker, but "
                   f"the largest node of {where} has {float(top_cpu.get('CPU', 0)):g}: "
                   f"{_describe(top_cpu)}")  # fmt: skip
    if float(top_gpu.get("GPU", 0)) + _EPS < trial.gpus_per_worker:
        out.append(f"`trial.gpus_per_worker` asks {trial.gpus_per_worker:g} GPUs per worker, but "
                   f"the largest node of {where} has {float(top_gpu.get('GPU', 0)):g}: "
                   f"{_describe(top_gpu)}; set it to 0 or add GPU nodes")  # fmt: skip
    if out:
        return out
    if not any(_per_node(n, trial) for n in nodes):
        out.append(f"`trial`: no node of {where} has both {trial.cpus_per_worker:g} CPUs and "
                   f"{trial.gpus_per_worker:g} GPUs for one worker; its nodes are "
                   f"{', '.join(map(_describe, nodes))}")  # fmt: skip
        return out
    fit = workers_that_fit(nodes, trial, max_workers)
    if fit < trial.workers:
        gpu = f" + {trial.gpus_per_worker:g} GPUs" if trial.gpus_per_worker else ""
        out.append(f"`trial.workers` asks {trial.workers} workers of {trial.cpus_per_worker:g} "
                   f"CPUs{gpu} each for one trial, but {where} fits at most {fit} "
                   f"(counting nodes the autoscaler may add up to max_workers); nodes: "
                   f"{', '.join(map(_describe, nodes))}")  # fmt: skip
    return out


def check_resources(spec: Spec, cluster: Sequence[Mapping[str, Any]] | Mapping[str, Any], *,
                    where: str = "the cluster") -> None:  # fmt: skip
    """``SpecError`` listing what ``cluster`` can never give one trial of ``spec``.

    ``cluster`` is a list of node-type mappings (see the module doc), or an autoscaler config
    mapping (with ``available_node_types``).
    """
    max_workers = None
    if isinstance(cluster, Mapping):
        max_workers = cluster.get("max_workers")
        cluster = nodes_from_autoscaler_config(cluster)
    problems = resource_problems(spec.trial, cluster, max_workers=max_workers, where=where)
    if problems:
        raise SpecError(problems)


def nodes_from_autoscaler_config(config: Mapping[str, Any] | str | Path) -> list[dict[str, Any]]:
    """Node types of a Ray autoscaler config (a mapping or a YAML file).

    The head type runs once; a worker type runs up to its ``max_workers``. A type whose
    ``resources`` are left empty (detected from the instance type by the cloud provider) is
    counted as having none, so a check against it errs on the side of refusing.
    """
    if not isinstance(config, Mapping):
        config = read_yaml(Path(config), "autoscaler config")
    types = config.get("available_node_types") if isinstance(config, Mapping) else None
    if not isinstance(types, Mapping) or not types:
        raise ValueError("an autoscaler config must have `available_node_types` (a mapping of "
                         f"node types), but got {type(types).__name__}")  # fmt: skip
    head = config.get("head_node_type")
    out = []
    for name, spec in types.items():
        resources = (spec or {}).get("resources") or {}
        is_head = name == head
        out.append({
            "name": str(name), "CPU": float(resources.get("CPU", 0)),
            "GPU": float(resources.get("GPU", 0)), "head": is_head,
            "count": 1 if is_head else int((spec or {}).get("min_workers", 0)),
            "max_count": 1 if is_head else int((spec or {}).get("max_workers", 0)),
        })  # fmt: skip
    return out
