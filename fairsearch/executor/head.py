"""The local Ray head that outlives one command (this machine only): ``fairsearch up`` starts it,
every command joins it, ``fairsearch down`` stops it.

Starting Ray costs seconds, more than a small search's training. ``fairsearch up`` runs
``ray start --head`` once, on 127.0.0.1 only (clusters off while it starts, as for the Ray a
command starts for itself) with a private auth token, and records its address in
``~/.fairsearch/local_ray.json`` (``FAIRSEARCH_HOME`` moves the folder). A command with no
``--address`` and no ``RAY_ADDRESS`` joins that Ray when it answers, else starts its own as
before. ``fairsearch down`` stops the processes of that Ray only (found by its GCS port), never
another Ray on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fairsearch.io.atomic import discard

__all__ = ["CLUSTERS_OFF", "RAY_ENV", "LocalRay", "configure_down", "configure_up", "down", "main_down", "main_up",
           "prepare_environment", "private_auth_token", "running", "state_file", "up", "write_state"]  # fmt: skip

#: Environment fairsearch sets (unless already set) before Ray starts.
RAY_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
}
#: Turns Ray's multi-node mode off while a local head starts: it then binds 127.0.0.1 only.
CLUSTERS_OFF = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class LocalRay(dict):
    """The recorded head: ``address`` (``127.0.0.1:port``), ``port``, ``num_cpus``, ``started_at``."""

    @property
    def address(self) -> str:
        return str(self["address"])


def private_auth_token() -> None:
    """Make sure Ray's token file, when Ray would use one, is readable by its owner only."""
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_MODE", "token") != "token":
        return
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if path.is_file():
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            path.chmod(0o600)
        return
    if "RAY_AUTH_TOKEN_PATH" in os.environ:
        return  # Ray refuses a named file that is missing; say nothing more than it does
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it meanwhile
        return
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))  # the form Ray generates: 256 random bits



def state_file() -> Path:
    home = Path(os.environ.get("FAIRSEARCH_HOME") or Path.home() / ".fairsearch")
    return home / "local_ray.json"


def _answers(port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout):
        return True
    return False


def running() -> LocalRay | None:
    """The head ``fairsearch up`` started, if it still answers (a stale record is removed)."""
    path = state_file()
    try:
        state = LocalRay(json.loads(path.read_text()))
        port = int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _answers(port):
        return state
    path.unlink(missing_ok=True)
    return None


def prepare_environment() -> LocalRay | None:
    """Before Ray is imported (it reads its auth mode then): when this process will join the
    head ``fairsearch up`` started, take on that head's auth mode. Returns the head, if any."""
    if os.environ.get("RAY_ADDRESS"):
        return None
    state = running()
    if state is not None:
        os.environ.setdefault("RAY_AUTH_MODE", str(state.get("auth", "token")))
    return state


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_cli() -> str:
    here = Path(sys.executable).parent / "ray"
    return str(here) if here.is_file() else "ray"


def up(num_cpus: int | None = None, *, env: dict[str, str] | None = None) -> LocalRay:
    """Start the local head (or return the one running)."""
    current = running()
    if current is not None:
        return current
    cpus = int(num_cpus or os.cpu_count() or 1)
    if cpus < 1:
        raise ValueError(f"--num-cpus must be an integer >= 1, but got {num_cpus}")
    private_auth_token()
    port = _free_port()
    auth = os.environ.get("RAY_AUTH_MODE", "token")  # token authentication unless turned off
    child_env = {**os.environ, **RAY_ENV, **CLUSTERS_OFF, "RAY_AUTH_MODE": auth, **(env or {})}
    cmd = [_ray_cli(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
           f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    proc = subprocess.run(cmd, env=child_env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not _answers(port, timeout=5.0):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"`ray start --head` failed (exit {proc.returncode}): " + " | ".join(tail))
    state = LocalRay(address=f"127.0.0.1:{port}", port=port, num_cpus=cpus, auth=auth,
                     pythonpath=child_env.get("PYTHONPATH", ""), started_at=time.time())  # fmt: skip
    write_state(state)
    return state


def write_state(state: dict) -> None:
    """Write the head's record atomically, readable by its owner only."""
    path = state_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
        os.replace(tmp, path)
    except BaseException:  # e.g. a full disk: the old record stays, and no temporary file
        discard(tmp)
        raise


def _processes_of(port: int) -> list[int]:
    """Pids whose command line names this head's GCS port (its GCS, raylet, agents, workers)."""
    marks = (f"127.0.0.1:{port}", f"--gcs_server_port={port}", f"--gcs-server-port={port}")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmdline for m in marks):
            pids.append(int(entry.name))
    return pids


def down(timeout_s: float = 20.0) -> int:
    """Stop the head ``fairsearch up`` started; returns how many processes were stopped."""
    path = state_file()
    try:
        port = int(json.loads(path.read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    pids = _processes_of(port)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return len(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().split(") ", 1)[1][:1] != "Z"  # a zombie has exited
    return False


# ----------------------------------------------------------------------------- CLI
def configure_up(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs Ray offers (default: all)")


def main_up(args: argparse.Namespace) -> int:
    before = running()
    state = up(args.num_cpus)
    what = "already running" if before is not None else "started"
    print(f"local Ray {what} at {state.address} ({state.get('num_cpus')} CPUs, 127.0.0.1 only); "
          "every fairsearch command joins it; `fairsearch down` stops it")  # fmt: skip
    return 0


def configure_down(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def main_down(args: argparse.Namespace) -> int:
    stopped = down()
    print(f"local Ray stopped ({stopped} processes)" if stopped
          else "no local Ray started by `fairsearch up` is running")  # fmt: skip
    return 0

