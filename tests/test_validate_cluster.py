"""``fairsearch validate --cluster cluster.yaml``: a job spec's resources against the autoscaler's
node types, not against the machine that validates it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fairsearch.cli import main

ROOT = Path(__file__).resolve().parent.parent
GPU_JOB = ROOT / "jobs" / "wrapper_full.yaml"  # a quarter GPU per trial


def _cpu_only(tmp_path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    raw["available_node_types"] = {k: v for k, v in raw["available_node_types"].items()
                                   if "gpu" not in k}
    path = tmp_path / "cpu_cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_gpu_job_validates_against_the_shipped_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(GPU_JOB), "--cluster", str(ROOT / "cluster.yaml")]) == 0
    assert capsys.readouterr().out.startswith("ok: wrapper-full")


def test_a_gpu_job_on_a_cluster_without_gpus_names_the_nodes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = _cpu_only(tmp_path)
    assert main(["validate", str(GPU_JOB), "--cluster", str(cluster)]) == 2
    err = capsys.readouterr().err
    assert "`trial.gpus_per_worker` asks 0.25 GPUs per worker" in err
    assert "the cluster of cpu_cluster.yaml has 0" in err and "this machine" not in err
    assert main(["validate", str(GPU_JOB), "--no-data", "--cluster", str(cluster)]) == 2


def test_a_bad_cluster_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(GPU_JOB), "--cluster", str(tmp_path / "none.yaml")]) == 2
    assert "--cluster must name a Ray autoscaler config" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster_name: x\n")
    assert main(["validate", str(GPU_JOB), "--cluster", str(bad)]) == 2
    assert "must have `available_node_types`" in capsys.readouterr().err
