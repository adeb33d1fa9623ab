"""The local Ray the search starts: reachable from this machine only, its auth token private."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Starts Ray as the search does, runs one task (so a worker serves), then lists every TCP
#: socket in LISTEN state held by this process or its descendants (GCS, raylet, agents,
#: workers), read from /proc.
PROBE = r"""
import json, os, ray
from fairsearch.executor.ray_start import init_ray, shutdown_ray

def listening():
    inodes = {}
    for name in ("tcp", "tcp6"):
        with open(f"/proc/net/{name}") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A":  # LISTEN
                    inodes[cols[9]] = cols[1]
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(pid))
        except OSError:
            pass
    mine, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        mine.add(pid)
        todo.extend(children.get(pid, []))
    found = []
    for pid in mine:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = target[8:-1]
                if inode in inodes:
                    found.append(inodes[inode])
    return found

init_ray(None)
ray.get(ray.remote(lambda: 1).remote())
print(json.dumps({"listening": listening(), "node": ray.util.get_node_ip_address()}))
shutdown_ray()
"""


def _hex_address(addr: str) -> str:
    """'0100007F:1F90' (IPv4) or the 32-hex-digit IPv6 form -> the address part, readable."""
    host = addr.split(":")[0]
    if len(host) == 8:
        return ".".join(str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0))
    words = [host[i : i + 8] for i in range(0, 32, 8)]
    if words[:2] == ["00000000"] * 2 and words[2] == "FFFF0000":  # ::ffff:a.b.c.d
        return "::ffff:" + _hex_address(words[3])
    if words == ["00000000"] * 3 + ["01000000"]:
        return "::1"
    return "v6:" + host


def _start(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=120, cwd=home)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.ray
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads sockets from /proc")
def test_a_local_ray_listens_on_loopback_only_and_writes_its_token_0600(tmp_path):
    got = _start(tmp_path)
    addresses = sorted({_hex_address(a) for a in got["listening"]})
    assert got["listening"], "found no listening socket: the probe does not see Ray"
    assert got["node"] == "127.0.0.1"
    assert set(addresses) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, addresses
    token = tmp_path / ".ray" / "auth_token"
    assert token.is_file() and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text()) == 64
    assert stat.S_IMODE(token.parent.stat().st_mode) & 0o077 == 0


@pytest.mark.ray
def test_a_loose_existing_token_is_kept_and_made_private(tmp_path):
    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("a" * 64)
    token.chmod(0o644)
    _start(tmp_path)
    assert token.read_text() == "a" * 64
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_the_address_decoder_reads_what_proc_writes():
    assert _hex_address("0100007F:1F90") == "127.0.0.1"
    assert _hex_address("00000000:0050") == "0.0.0.0"
    assert _hex_address("0000000000000000FFFF00000100007F:1F90") == "::ffff:127.0.0.1"
    assert _hex_address("00000000000000000000000000000000:0050") == "v6:" + "0" * 32
    assert _hex_address("00000000000000000000000001000000:0050") == "::1"


#: Ray started off the main thread while the command checks its spec (``RayStart``): it must
#: outlive that thread's start-up work (Linux kills a child whose creating thread ends, when
#: the child asked for PR_SET_PDEATHSIG, as Ray's processes do), serve tasks, and an abandoned
#: start leaves no Ray process behind.
THREADED = r"""
import json, os, threading, time, ray
from fairsearch.executor.ray_start import RayStart, shutdown_ray

def ray_children():
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == os.getpid() and b"gcs_server" in cmd:
            out.append(int(pid))
    return out

start = RayStart(None)
start.wait()
time.sleep(3)
served = ray.get(ray.remote(lambda: 41 + 1).remote(), timeout=60)
gcs_before = len(ray_children())
import ray._private.node as node
ended_before = {}  # process type -> whether it had ended when ray.shutdown came to it
kill = node.Node._kill_process_type
def recording(self, kind, *a, **k):
    ended_before[kind] = all(i.process.poll() is not None for i in self.all_processes.get(kind, []))
    return kill(self, kind, *a, **k)
node.Node._kill_process_type = recording
shutdown_ray()
node.Node._kill_process_type = kill
time.sleep(0.5)
threads = [t.name for t in threading.enumerate() if t.name == "fairsearch-ray-start"]
again = RayStart(None)
again.abandon()
print(json.dumps({"served": served, "gcs": gcs_before, "threads_after": threads,
                  "initialized": ray.is_initialized(), "gcs_after_abandon": len(ray_children()),
                  "ended_before": ended_before}))
"""


@pytest.mark.ray
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_ray_started_beside_the_checks_outlives_its_thread_and_an_abandoned_start_leaves_nothing(
        tmp_path):  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT), FAIRSEARCH_HOME=str(tmp_path / "fs"))
    out = subprocess.run([sys.executable, "-c", THREADED], env=env, capture_output=True,
                         text=True, timeout=240, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["served"] == 42 and got["gcs"] == 1
    assert got["threads_after"] == []
    # the autoscaler monitor is ended before ray.shutdown stops GCS (else it waits a second)
    assert got["ended_before"]["monitor"] and not got["ended_before"]["raylet"]
    assert not got["initialized"] and got["gcs_after_abandon"] == 0
    assert "SIGTERM handler is not set" not in out.stderr
