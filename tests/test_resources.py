"""check_resources: a trial the cluster can never place fails before the search (no Ray here)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fairsearch.spec.fields import SpecError
from fairsearch.spec.resources import (
    check_resources,
    nodes_from_autoscaler_config,
    resource_problems,
    workers_that_fit,
)
from fairsearch.spec.schema import load_spec
from fairsearch.spec.validated import TrialSpec

ROOT = Path(__file__).resolve().parents[1]
CPU8 = {"name": "cpu8", "CPU": 8, "GPU": 0, "count": 2, "max_count": 2}
GPU1 = {"name": "gpu1", "CPU": 4, "GPU": 1, "count": 0, "max_count": 3}


def trial(**kw) -> TrialSpec:
    return replace(TrialSpec(), **kw)


def test_a_trial_that_fits_has_no_problem() -> None:
    assert resource_problems(trial(workers=2, cpus_per_worker=4), [CPU8]) == []
    assert resource_problems(trial(workers=3, gpus_per_worker=1), [CPU8, GPU1]) == []


def test_gpus_per_worker_on_a_cpu_cluster_names_the_largest_node() -> None:
    (msg,) = resource_problems(trial(gpus_per_worker=1), [CPU8])
    assert "`trial.gpus_per_worker` asks 1 GPUs per worker, but the largest node" in msg
    assert "has 0: cpu8 (CPU 8, GPU 0)" in msg


def test_cpus_per_worker_above_every_node() -> None:
    (msg,) = resource_problems(trial(cpus_per_worker=64), [CPU8, GPU1])
    assert "`trial.cpus_per_worker` asks 64 CPUs per worker" in msg and "has 8: cpu8" in msg


def test_cpu_and_gpu_must_be_on_one_node() -> None:
    (msg,) = resource_problems(trial(cpus_per_worker=8, gpus_per_worker=1), [CPU8, GPU1])
    assert "no node of the cluster has both 8 CPUs and 1 GPUs for one worker" in msg


def test_workers_count_autoscaled_nodes_up_to_max_workers() -> None:
    t = trial(workers=4, gpus_per_worker=1)
    assert workers_that_fit([CPU8, GPU1], t) == 3  # 3 GPU nodes may be added, one GPU each
    (msg,) = resource_problems(t, [CPU8, GPU1])
    assert "`trial.workers` asks 4 workers of 1 CPUs + 1 GPUs each" in msg
    assert "fits at most 3" in msg
    # The global max_workers caps the worker nodes of every type together.
    assert workers_that_fit([CPU8, GPU1], trial(workers=1, cpus_per_worker=4), max_workers=1) == 2


def test_fractional_gpus_share_a_node() -> None:
    assert workers_that_fit([GPU1], trial(gpus_per_worker=0.25)) == 12  # 4 per node x 3 nodes


def test_the_shipped_cluster_configs() -> None:
    aws = nodes_from_autoscaler_config(ROOT / "cluster.yaml")
    assert {n["name"]: (n["CPU"], n["GPU"], n["max_count"]) for n in aws} == {
        "ray.head.default": (0.0, 0.0, 1),  # resources detected by AWS: not counted
        "ray.worker.gpu": (4.0, 1.0, 4), "ray.worker.cpu": (8.0, 0.0, 4)}
    import yaml

    spec = load_spec(ROOT / "jobs" / "wrapper_full.yaml")  # 1 CPU + 0.25 GPU per worker
    check_resources(spec, yaml.safe_load((ROOT / "cluster.yaml").read_text()))
    with pytest.raises(SpecError, match=r"`trial.gpus_per_worker` asks 0.25 GPUs per worker, but "
                                        r"the largest node of the cluster has 0: w \(CPU 8"):
        check_resources(spec, {"available_node_types": {"w": {"resources": {"CPU": 8},
                                                              "max_workers": 4}}})

    fake = yaml.safe_load((ROOT / "jobs" / "fake_cluster.yaml").read_text())
    gpu_spec = replace(spec, trial=trial(workers=2, gpus_per_worker=1))
    with pytest.raises(SpecError, match=r"asks 2 workers of 1 CPUs \+ 1 GPUs each for one trial, "
                                        r"but the cluster fits at most 1"):
        check_resources(gpu_spec, fake)
    check_resources(replace(spec, trial=trial(workers=1, gpus_per_worker=1)), fake)
    # head (1 CPU) + at most 3 one-CPU workers (max_workers: 3 over the GPU and CPU types)
    with pytest.raises(SpecError, match=r"asks 5 workers .* fits at most 4"):
        check_resources(replace(spec, trial=trial(workers=5, cpus_per_worker=1)), fake)


def test_an_autoscaler_config_without_node_types() -> None:
    with pytest.raises(ValueError, match="must have `available_node_types`"):
        nodes_from_autoscaler_config({"max_workers": 2})
