"""``fairsearch up`` / ``down``: one local Ray that every command joins, on 127.0.0.1 only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fairsearch.executor import head

ROOT = Path(__file__).resolve().parent.parent


def _listening(pids: list[int]) -> set[str]:
    """Local addresses (hex ``IP:port`` of /proc/net/tcp) on which ``pids`` listen."""
    inodes = {}
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A":  # LISTEN
                inodes[cols[9]] = cols[1]
    found = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                found.add(inodes[target[8:-1]])
    return found


LOOPBACK = ("0100007F", "0000000000000000FFFF00000100007F")  # 127.0.0.1, ::ffff:127.0.0.1


@pytest.mark.ray
def test_up_starts_a_loopback_ray_that_a_command_joins_and_down_stops_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRSEARCH_HOME", str(tmp_path / "home"))
    env = {**os.environ, "FAIRSEARCH_HOME": str(tmp_path / "home")}
    env.pop("RAY_ADDRESS", None)
    assert head.running() is None
    try:
        up = subprocess.run([sys.executable, "-m", "fairsearch.cli", "up", "--num-cpus", "2"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert up.returncode == 0, up.stderr[-2000:]
        assert "started at 127.0.0.1:" in up.stdout
        state = head.running()
        assert state is not None
        assert stat.S_IMODE(head.state_file().stat().st_mode) == 0o600
        pids = head._processes_of(int(state["port"]))
        addresses = _listening(pids)
        assert pids and addresses  # the head's GCS and raylet listen...
        assert all(a.split(":")[0] in LOOPBACK for a in addresses), addresses  # ...on loopback
        again = subprocess.run([sys.executable, "-m", "fairsearch.cli", "up"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        assert "already running" in again.stdout
        # a command joins it (and leaves it running when it disconnects)
        probe = ("from fairsearch.executor.ray_start import init_ray, shutdown_ray\n"
                 "init_ray(None)\nimport ray\n"
                 "print('GCS', ray.get_runtime_context().gcs_address)\n"
                 "print('SUM', ray.get(ray.remote(lambda: 1 + 1).remote()))\nshutdown_ray()\n")
        joined = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert joined.returncode == 0, joined.stderr[-2000:]
        assert f"GCS {state.address}" in joined.stdout and "SUM 2" in joined.stdout
        assert head.running() is not None
    finally:
        down = subprocess.run([sys.executable, "-m", "fairsearch.cli", "down"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert down.returncode == 0 and "stopped" in down.stdout
    assert head.running() is None and not head.state_file().exists()
    assert not [p for p in head._processes_of(int(state["port"])) if head._alive(p)]


def test_down_without_up_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRSEARCH_HOME", str(tmp_path))
    assert head.down() == 0 and head.running() is None
    head.state_file().write_text('{"port": 1, "address": "127.0.0.1:1"}')
    assert head.running() is None and not head.state_file().exists()  # stale: removed
