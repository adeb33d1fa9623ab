"""The job specs in jobs/: valid, and the smoke one runs as a real Ray job.

The slow test starts one private Ray head for the module (tests/_ray_cluster.py: token auth,
free ports, setsid, stopped alone), submits jobs/smoke_wrapper.yaml twice, with the
``ray job submit`` CLI and with ``JobSubmissionClient``, each as users do (``--working-dir .``
and ``--runtime-env jobs/runtime_env.yaml``), plus a job with a bad spec. The three run at the
same time; each test waits for its own. Run folders go to a temporary folder outside the
working dir, as on a cluster (storage the nodes share, never the uploaded copy).
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from _ray_cluster import ROOT, RUNTIME_ENV_YAML, Head, private_head, ray_cli, submit_when_ready

from fairsearch.spec.schema import load_spec

JOB_SPECS = sorted(p for p in (ROOT / "jobs").glob("*.yaml")
                   if p.name not in {"fake_cluster.yaml", "runtime_env.yaml"})  # fmt: skip
SMOKE = ROOT / "jobs" / "smoke_wrapper.yaml"
#: The CLI job runs the whole pipeline (`fairsearch run`, as docs/cluster.md tells users); the
#: Python-client job the search stage alone (`fairsearch search`), which keeps the module fast.
FULL = "run" if importlib.util.find_spec("fairsearch.pipeline") else "search"


@pytest.mark.parametrize("path", JOB_SPECS, ids=lambda p: p.name)
def test_job_specs_validate(path: Path) -> None:
    spec = load_spec(path)
    assert spec.search.trials >= 1


def test_job_specs_are_the_promised_sizes() -> None:
    smoke = load_spec(SMOKE)
    assert smoke.search.trials <= 4 and smoke.trial.epochs <= 3
    assert smoke.trial.gpus_per_worker == 0  # runs on any cluster, CPU only
    for path in JOB_SPECS:  # lanes replaced packing: no job keeps the old workaround
        assert "configs_per_run" not in path.read_text(), path.name
    full = load_spec(ROOT / "jobs" / "wrapper_full.yaml")
    assert (full.search.trials, full.trial.epochs, full.search.max_concurrent) == (50, 30, 8)
    assert full.trial.gpus_per_worker == 0.25
    translator = load_spec(ROOT / "jobs" / "translator_full.yaml")
    assert translator.model == "translator"
    assert translator.data == {"name": "names_minilm"}  # shipped in the package: any working dir


# --- real jobs ----------------------------------------------------------------------------------


@dataclass
class Jobs:
    head: Head
    storage: Path  # parent of the run folders, outside the working dir
    cli: subprocess.Popen[str]  # `ray job submit` following its job's logs
    client: Any  # JobSubmissionClient
    python_job: str
    bad_job: str
    no_storage_job: str  # `fairsearch run` with the default storage: inside the job's copy


def _entrypoint(command: str, spec: Path | str, storage: Path) -> str:
    return (f"fairsearch {command} {shlex.quote(str(spec))} "
            f"--storage {shlex.quote(str(storage))} --quiet")  # fmt: skip


# The tests share one head and its jobs: under `--dist loadgroup` they run on one worker.
pytestmark = pytest.mark.xdist_group("jobs")


@pytest.fixture(scope="module")
def jobs() -> Iterator[Jobs]:
    if not sys.platform.startswith("linux"):
        pytest.skip("uses /proc and setsid")
    # A short folder: Ray's unix sockets live under --temp-dir (path limit ~107 bytes).
    workdir = Path(tempfile.mkdtemp(prefix="fsjob-"))
    storage = workdir / "runs"
    bad = workdir / "bad.yaml"
    raw = yaml.safe_load(SMOKE.read_text())
    raw["search"]["algorithm"] = "nsga3"
    bad.write_text(yaml.safe_dump(raw))
    runtime_env = yaml.safe_load(RUNTIME_ENV_YAML.read_text())
    try:
        with private_head(workdir, num_cpus=2) as head:
            # Python client first: it retries until the job agent is registered.
            client, python_job = submit_when_ready(
                head.address, head.token,
                entrypoint=_entrypoint("search", SMOKE.relative_to(ROOT), storage / "python"),
                runtime_env={**runtime_env, "working_dir": str(ROOT)},
            )  # fmt: skip
            cli = subprocess.Popen(
                [ray_cli(), "job", "submit", "--address", head.address, "--working-dir", ".",
                 "--runtime-env", "jobs/runtime_env.yaml", "--",
                 *shlex.split(_entrypoint(FULL, "jobs/smoke_wrapper.yaml", storage / "cli"))],
                cwd=ROOT, env=head.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            bad_job = client.submit_job(
                entrypoint=_entrypoint(FULL, bad, storage / "bad"),
                runtime_env={**runtime_env, "working_dir": str(ROOT)},
            )
            no_storage_job = client.submit_job(
                entrypoint=f"fairsearch {FULL} jobs/smoke_wrapper.yaml --quiet",
                runtime_env={**runtime_env, "working_dir": str(ROOT)},
            )
            yield Jobs(head, storage, cli, client, python_job, bad_job, no_storage_job)
            if cli.poll() is None:
                cli.kill()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _check_run_folder(parent: Path) -> Path:
    (run_dir,) = parent.iterdir()
    spec = load_spec(run_dir / "spec.yaml")
    assert (run_dir / "study.journal").is_file()
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert len(trials) == spec.search.trials
    assert trials["number"].tolist() == list(range(spec.search.trials))
    assert set(trials["status"]) == {"completed"}, trials[["status", "error"]]
    assert trials["node"].notna().all()
    history = pd.read_parquet(run_dir / "history.parquet")
    assert len(history) == spec.search.trials * spec.trial.epochs * spec.search.seeds  # per seed
    return run_dir


@pytest.mark.slow
@pytest.mark.ray
def test_smoke_job_submitted_with_the_python_client_succeeds(jobs: Jobs) -> None:
    from _ray_cluster import wait_for_job
    from ray.job_submission import JobStatus

    status = wait_for_job(jobs.client, jobs.python_job, timeout_s=900)
    logs = jobs.client.get_job_logs(jobs.python_job)
    assert status == JobStatus.SUCCEEDED, logs[-4000:]
    _check_run_folder(jobs.storage / "python")
    assert str(jobs.storage / "python") in logs  # the run folder is printed


@pytest.mark.slow
@pytest.mark.ray
def test_smoke_job_submitted_with_the_cli_succeeds(jobs: Jobs) -> None:
    out, _ = jobs.cli.communicate(timeout=900)
    assert jobs.cli.returncode == 0, out[-4000:]
    assert "succeeded" in out
    run_dir = _check_run_folder(jobs.storage / "cli")
    if FULL == "run":  # every stage wrote its files
        for name in ("pareto.parquet", "retrain.parquet", "audit.parquet", "report/report.html"):
            assert (run_dir / name).is_file(), name


@pytest.mark.slow
@pytest.mark.ray
def test_job_with_a_bad_spec_fails_with_the_validation_message(jobs: Jobs) -> None:
    from _ray_cluster import wait_for_job
    from ray.job_submission import JobStatus

    status = wait_for_job(jobs.client, jobs.bad_job, timeout_s=300)
    logs = jobs.client.get_job_logs(jobs.bad_job)
    assert status == JobStatus.FAILED, logs
    assert "`search.algorithm` must be one of nsga2, tpe, random, gp, but got 'nsga3'" in logs
    assert not (jobs.storage / "bad").exists()  # validated before anything was written


@pytest.mark.slow
@pytest.mark.ray
def test_job_without_storage_is_refused_before_it_writes_into_its_working_dir_copy(
        jobs: Jobs) -> None:
    """Without --storage the run folder would go to runs/ in Ray's copy of the working dir,
    deleted with the job: the job fails at once, saying so."""
    from _ray_cluster import wait_for_job
    from ray.job_submission import JobStatus

    status = wait_for_job(jobs.client, jobs.no_storage_job, timeout_s=300)
    logs = jobs.client.get_job_logs(jobs.no_storage_job)
    assert status == JobStatus.FAILED, logs
    assert "`--storage` 'runs' lies inside this Ray job's temporary copy of its working " in logs
