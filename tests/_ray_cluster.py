"""A private Ray head for tests and benchmarks: token auth, free ports, stopped alone.

``ray stop`` stops every Ray instance of the user on the machine (other people's included), so
:func:`private_head` starts ``ray start --head --block`` in a new session (``setsid``), with
every port that has a fixed default chosen free, the dashboard bound to 127.0.0.1, a short
``--temp-dir`` and a token of its own (never ``~/.ray/auth_token``); on exit it signals the
processes of that session only. docs/cluster.md ("A private local head") has the measurements
behind these choices. Optionally the head runs the fake autoscaler (jobs/fake_cluster.yaml).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from ray.job_submission import JobStatus, JobSubmissionClient

ROOT = Path(__file__).resolve().parents[1]
FAKE_CLUSTER_YAML = ROOT / "jobs" / "fake_cluster.yaml"
RUNTIME_ENV_YAML = ROOT / "jobs" / "runtime_env.yaml"

__all__ = [
    "FAKE_CLUSTER_YAML",
    "RUNTIME_ENV_YAML",
    "Head",
    "free_port",
    "private_head",
    "ray_cli",
    "session_pids",
    "stop_session",
    "submit_when_ready",
    "wait_for_job",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_cli() -> str:
    """The `ray` command of this interpreter's environment."""
    found = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    assert found, "the `ray` command is not installed"
    return found


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (every Ray process of a head started with setsid)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Fields after the ")" closing the command name: state ppid pgrp session ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
    return pids


def stop_session(head: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Stop every process of the head's session, and only those: SIGTERM, then SIGKILL.

    `ray stop` would stop every Ray instance of this user; a SIGTERM to the head alone makes it
    drain for up to 30 s, and the GCS outlives a SIGTERM for longer than a test wants to wait.
    """
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_pids(head.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + grace_s
        while session_pids(head.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(grace_s)


@dataclass(frozen=True)
class Head:
    """A running private head."""

    address: str  #: job API / dashboard, http://127.0.0.1:<port>
    gcs_address: str  #: for ray.init(address=...) and `ray status --address`
    token: str
    env: dict[str, str]  #: environment a client needs (token mode, token file, PATH)
    workdir: Path
    pid: int  #: of `ray start --block`; also the session id of every process of this head

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def log_tail(self, n: int = 4000) -> str:
        return (self.workdir / "head.log").read_text(errors="replace")[-n:]


@contextlib.contextmanager
def private_head(
    workdir: Path,
    *,
    num_cpus: int = 1,
    fake_cluster: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Head]:
    """Start a private head in ``workdir`` (keep it short: Ray's sockets live under it).

    ``fake_cluster``: a loaded jobs/fake_cluster.yaml to run the fake autoscaler with; its
    ``provider.gcs_address`` and head resources are set here to match this head.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    gcs_port, dashboard_port = free_port(), free_port()
    token = secrets.token_hex(32)
    token_path = workdir / "auth_token"
    token_path.write_text(token)
    token_path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token_path),
        # Job drivers inherit this: `fairsearch` and `python` are this environment's.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    client_env = dict(env)
    command = [
        ray_cli(), "start", "--head", "--block", f"--port={gcs_port}", f"--num-cpus={num_cpus}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
        # Every port with a fixed default (6379, 8265, 10001, 52365) is chosen free: a busy
        # agent port leaves the job API answering "No available agent" forever.
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}", f"--temp-dir={workdir / 'ray'}",
        "--disable-usage-stats",
    ]  # fmt: skip
    if fake_cluster is not None:
        config = yaml.safe_load(yaml.safe_dump(fake_cluster))  # a copy
        config["provider"]["gcs_address"] = f"127.0.0.1:{gcs_port}"
        head_type = config["available_node_types"][config["head_node_type"]]
        head_type["resources"] = {"CPU": num_cpus} if num_cpus else {}
        (workdir / "fake_cluster.yaml").write_text(yaml.safe_dump(config))
        command.append(f"--autoscaling-config={workdir / 'fake_cluster.yaml'}")
        env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")
    env.update(extra_env or {})
    with open(workdir / "head.log", "wb") as log:
        head = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Head(
        address=f"http://127.0.0.1:{dashboard_port}",
        gcs_address=f"127.0.0.1:{gcs_port}",
        token=token,
        env=client_env,
        workdir=workdir,
        pid=head.pid,
    )
    try:
        yield running
    except BaseException:
        sys.stderr.write(running.log_tail())
        raise
    finally:
        stop_session(head)


def submit_when_ready(
    address: str, token: str, timeout_s: float = 180, **job: Any
) -> tuple[JobSubmissionClient, str]:
    """Submit as soon as the job API takes jobs: the dashboard answers a few seconds before its
    job agent is registered, and a submission in between fails with HTTP 500 "No available
    agent to submit job"."""
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client = JobSubmissionClient(address, headers={"Authorization": f"Bearer {token}"})
            return client, client.submit_job(**job)
        except (ConnectionError, RuntimeError) as e:
            if isinstance(e, RuntimeError) and "No available agent" not in str(e):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_for_job(client: JobSubmissionClient, job: str, timeout_s: float = 600) -> JobStatus:
    """Poll until the job ends; returns its final status (fails on timeout with the logs)."""
    from ray.job_submission import JobStatus

    done = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
    deadline = time.monotonic() + timeout_s
    while (status := client.get_job_status(job)) not in done:
        assert time.monotonic() < deadline, client.get_job_logs(job)[-4000:]
        time.sleep(1)
    return status
