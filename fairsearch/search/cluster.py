"""The Ray cluster this process joined, checked before the search: can it place one trial?

The pure check is :mod:`fairsearch.spec.resources`; here are the live nodes (``ray.nodes()``) and
the autoscaler config a joined cluster may have left on its head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fairsearch.spec.resources import check_resources, resource_problems
from fairsearch.spec.safe_yaml import read_yaml
from fairsearch.spec.validated import Spec

__all__ = ["BOOTSTRAP_CONFIG", "CONFIG_ENV", "check_joined_cluster", "nodes_from_ray"]


def nodes_from_ray() -> list[dict[str, Any]]:
    """The alive nodes of the Ray this process is connected to (what runs now, no autoscaling)."""
    import ray

    out = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources") or {}
        out.append({"name": node.get("NodeManagerHostname") or node.get("NodeID"),
                    "CPU": float(res.get("CPU", 0)), "GPU": float(res.get("GPU", 0)),
                    "count": 1, "max_count": 1, "head": True})  # fmt: skip
    return out


#: Where `ray up` leaves the cluster's autoscaler config on the head node.
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")
CONFIG_ENV = "FAIRSEARCH_CLUSTER_CONFIG"


def check_joined_cluster(spec: Spec, *, config: str | Path | None = None) -> None:
    """Check ``spec`` against a Ray cluster this process joined.

    With an autoscaler config (``config``, else ``$FAIRSEARCH_CLUSTER_CONFIG``, else the
    ``~/ray_bootstrap_config.yaml`` that ``ray up`` leaves on the head) the check counts every node
    the autoscaler may add and fails with a ``SpecError``. Without one only the live nodes are
    known, and an autoscaler may still add what is missing, so a shortfall is a warning line.
    """
    import os
    import sys

    path = config or os.environ.get(CONFIG_ENV)
    if not path and BOOTSTRAP_CONFIG.expanduser().is_file():
        path = BOOTSTRAP_CONFIG.expanduser()
    if path:
        check_resources(spec, read_yaml(Path(path), "autoscaler config"),
                        where=f"the cluster of {str(path)!r}")  # fmt: skip
        return
    for problem in resource_problems(spec.trial, nodes_from_ray(), where="the live Ray nodes"):
        print(f"warning: {problem} (an autoscaler may add nodes: set {CONFIG_ENV} to its config "
              "to check against it)", file=sys.stderr)  # fmt: skip
