"""Lanes on a joined multi-node cluster: the fake autoscaling cluster of jobs/fake_cluster.yaml.

The head has no CPUs, so no lane can run there: the fake autoscaler must start worker nodes
(raylets on this machine) for the lanes, as a real cluster's autoscaler would. A search is run
through the real :func:`~fairsearch.search.engine.run_search`, joined to that head by its
address, in a driver process of its own (the head's token, the package from this checkout).

Why the fake provider rather than ``ray.cluster_utils.Cluster``: the fake cluster runs under
tests/_ray_cluster.py's private head (token auth, every port chosen free, a temp dir and a
session of its own, stopped alone, as the other cluster tests), and it adds worker nodes through
the autoscaler, the path a real cluster takes. ``Cluster`` writes its address to the machine-wide
Ray address file (what a bare ``ray.init()`` of anyone else on this machine would then join) and
has no token. Measured here on 2 cores loaded by other work: 2.3-3 minutes, most of it the
head and the first worker nodes starting.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _ray_cluster import FAKE_CLUSTER_YAML, private_head

from fairsearch.search.study import load_run_study

ROOT = Path(__file__).resolve().parents[1]

# The driver: run_search joined to the cluster, then what it saw of the cluster, as one line.
DRIVER = """
import json, sys
import ray
from fairsearch.search.engine import run_search
from fairsearch.spec.schema import load_spec

run_dir = run_search(load_spec(sys.argv[1]), storage=sys.argv[2], address=sys.argv[3], quiet=True)
nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes()}
print("CLUSTER", json.dumps({"run_dir": str(run_dir), "nodes": nodes,
                             "driver_node": ray.get_runtime_context().get_node_id()}))
ray.shutdown()
"""


def _spec(trials: int, lanes: int, workers: int) -> dict:
    raw = yaml.safe_load((ROOT / "jobs" / "smoke_wrapper.yaml").read_text())
    raw["name"] = "multinode"
    raw["search"].update(trials=trials, max_concurrent=lanes, algorithm="random")
    raw["trial"].update(epochs=2, workers=workers, cpus_per_worker=1)
    raw.pop("post", None)
    return raw


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and setsid")
@pytest.mark.parametrize(("trials", "lanes", "workers"), [(4, 2, 1), (2, 1, 2)],
                         ids=["two-1-worker-lanes", "one-2-worker-lane"])  # fmt: skip
def test_lanes_run_on_the_worker_nodes_of_a_joined_cluster(trials, lanes, workers) -> None:
    """Two 1-worker lanes (local mode, each on a node), or one lane whose two DDP workers need
    two 1-CPU worker nodes: no node of the fake cluster has 2 CPUs, so that lane's gradients
    are averaged across nodes."""
    # A short folder: Ray's unix sockets live under --temp-dir (path limit ~107 bytes).
    workdir = Path(tempfile.mkdtemp(prefix="fsmn-"))
    try:
        spec_path = workdir / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(_spec(trials, lanes, workers)))
        fake = yaml.safe_load(FAKE_CLUSTER_YAML.read_text())
        # Every fake node and the driver import this checkout's package, not an installed one.
        pythonpath = {"PYTHONPATH": str(ROOT)}
        with private_head(workdir, num_cpus=0, fake_cluster=fake, extra_env=pythonpath) as head:
            done = subprocess.run(
                [sys.executable, "-c", DRIVER, str(spec_path), str(workdir / "runs"),
                 head.gcs_address],
                env={**head.env, **pythonpath}, cwd=workdir, capture_output=True, text=True,
                timeout=300,
            )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
        (line,) = [x for x in done.stdout.splitlines() if x.startswith("CLUSTER ")]
        seen = json.loads(line.removeprefix("CLUSTER "))
        run_dir = Path(seen["run_dir"])

        df = pd.read_parquet(run_dir / "trials.parquet")
        assert len(df) == trials and df["number"].is_unique
        assert (df["status"] == "completed").all(), df[["status", "error"]]
        assert (df["attempt"] == 0).all()  # no lane was lost
        assert set(df["lane"]) <= set(range(lanes))
        study = load_run_study(run_dir, "multinode")
        assert 1 <= study.user_attrs["max_untold"] <= lanes

        # The configurations ran on worker nodes the autoscaler added, not on the 0-CPU head
        # (where the driver, and the dispatcher pinned to it, run).
        head_id, nodes = seen["driver_node"], seen["nodes"]
        assert nodes[head_id].get("CPU", 0) == 0
        assert df["node_id"].notna().all()
        ran_on = set(df["node_id"])
        assert head_id not in ran_on
        assert ran_on <= set(nodes), (ran_on, set(nodes))
        assert len(nodes) >= 2  # the head and at least one worker node
        if workers > 1:  # no node could hold the whole lane: its ranks ran on several nodes
            assert all(r.get("CPU", 0) < workers for r in nodes.values()), nodes
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
