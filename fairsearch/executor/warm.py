"""Warm lanes: processes that ``fairsearch up`` starts once, with torch and the families already
imported, so that a command joining that Ray trains its first configuration without waiting
for Ray to start a process and import them.

A Tune trial always gets a new process: Ray gives an actor a worker of its own, never an idle
one that ran tasks, and a new command is a new job whose workers are new too. That start (a
Python process importing Ray, torch, Tune and the families, about 2.7 s a lane on 2 cores) was
most of the time between Ray answering and the first configuration training. So ``fairsearch
up`` also starts ``--warm-lanes`` detached actors (:class:`LaneHost`) in the namespace
:data:`NAMESPACE`; each imports what a lane needs and waits.

A :class:`~fairsearch.executor.lanes.LanePool` whose lanes are one CPU worker each (Train's
local mode: the item trains in the lane's own process) claims free hosts first and runs the
same lane loop in them; the lanes it could not claim start as Tune trials as before.

- **Resources.** A host holds no CPU while it waits. The pool that claims hosts reserves their
  CPUs in a placement group for as long as it runs, so Ray accounts them as for Tune's lanes.
- **One use.** A host serves one pool. When the pool ends, it kills the hosts it used and
  starts as many fresh ones, so no host keeps modules, threads or state of an earlier command.
- **Same code.** A host records a fingerprint of the fairsearch package (every ``.py`` file's
  path, size and mtime), the Python executable and torch's version; a pool claims only hosts
  whose fingerprint equals its own, and replaces the stale ones. The driver's ``sys.path``
  travels with the lane, so the user's modules import as in the driver.
- **Faults.** A host restarts when its process dies (``max_restarts=-1``) and Ray calls its
  lane loop again there; the loop asks the dispatcher for its item again (``attempt + 1``), as
  a restarted Tune lane does, and past ``trial.max_failures`` attempts the dispatcher records
  the item failed and the lane goes on. A host whose command died ends itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["CLAIM_LEASE_S", "CLAIM_TIMEOUT_S", "NAMESPACE", "LaneHost", "claim_hosts", "configure_up", "fingerprint",
           "host_count", "main_up", "new_token", "record_wanted", "release_hosts", "spawn_hosts", "wanted",
           "warm_up"]  # fmt: skip

#: Ray namespace of the hosts (named, detached: they outlive the command that started them).
NAMESPACE = "fairsearch-warm"
#: How long a pool waits for free hosts to answer. A host still importing answers when it is
#: done, which is sooner than a Tune lane started in its place, since that lane imports the same
#: from the start. The hosts a command released are often still importing when the next command
#: begins. The limit only bounds the wait for a host that does not answer at all.
CLAIM_TIMEOUT_S = 15.0
#: A claimed host whose lane has not started after this long is free again (its command died
#: between claiming it and starting the lane).
CLAIM_LEASE_S = 120.0
_PREFIX = "lanehost-"


def fingerprint() -> str:
    """What must be equal between a host and the pool that claims it: the fairsearch package's
    files (path, size, mtime), the Python executable and torch's version (from its installed
    metadata: the driver of a search does not import torch)."""
    from importlib.metadata import PackageNotFoundError, version

    import fairsearch

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "none"
    root = Path(fairsearch.__file__).resolve().parent
    digest = hashlib.sha256(f"{sys.executable}|{torch_version}|{root}".encode())
    for path in sorted(root.rglob("*.py")):
        with contextlib.suppress(OSError):
            st = path.stat()
            digest.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


class LaneHost:
    """One warm lane process (made a Ray actor by :func:`spawn_hosts`)."""

    def __init__(self) -> None:
        import ray.tune  # noqa: F401 - what the lane loop's module imports
        import torch

        import fairsearch.executor.dispatcher
        import fairsearch.families
        import fairsearch.nets  # noqa: F401 - what a work function trains with (the families)

        # the first optimizer step imports torch._dynamo (seconds); take it now
        net = torch.nn.Linear(2, 1)
        opt = torch.optim.Adam(net.parameters())
        net(torch.zeros(1, 2)).sum().backward()
        opt.step()
        self.fingerprint = fingerprint()
        self.claimed: str | None = None
        self.claimed_at = 0.0
        self.running = False
        self.released: set[str] = set()
        self.lock = threading.Lock()

    def claim(self, token: str, fingerprint: str, deadline: float) -> str:
        """``"ok"`` (now the pool ``token``'s), ``"late"`` (asked past ``deadline``, epoch
        seconds: the pool no longer waits), ``"busy"`` or ``"stale"`` (other code)."""
        with self.lock:
            if fingerprint != self.fingerprint:
                return "stale"
            if self.claimed is not None and not (
                    not self.running and time.time() - self.claimed_at > CLAIM_LEASE_S):  # fmt: skip
                return "busy"  # (a claim never followed by a lane lapses: its command died)
            if time.time() > deadline or token in self.released:
                return "late"
            self.claimed, self.claimed_at = token, time.time()
            return "ok"

    def release(self, token: str) -> None:
        """The pool ``token`` does not use this host after all: free again, and a claim of
        ``token`` that arrives after this (calls to a host may run out of order) is refused."""
        with self.lock:
            self.released.add(token)
            if self.claimed == token and not self.running:
                self.claimed = None

    def run_lane(self, token: str, cfg: dict[str, Any], loop: bytes, path: list[str]) -> dict[str, Any]:
        """Run a lane in this process: ``loop`` is the pickled (lane loop, work function) pair,
        loaded once the driver's ``path`` is on ``sys.path``, and the loop gets ``cfg`` with the
        work. After a restart of this process the retried call claims it again."""
        import cloudpickle
        import ray

        entered = time.time()
        with self.lock:
            if self.claimed not in (None, token):
                raise RuntimeError("this warm lane belongs to another command")
            self.claimed, self.running = token, True
        for entry in reversed(path):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        lane_loop, work = cloudpickle.loads(loop)
        try:
            return dict(lane_loop({**cfg, "work": work, "trainable_at": entered}))
        except Exception:  # the dispatcher or the data is gone (its command died), or worse
            # one use, and nobody may be left to end this process (exit_actor does not end a
            # threaded actor from its method's thread)
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
            raise


def _actor_class() -> Any:
    import ray

    return ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=4)(LaneHost)


def spawn_hosts(count: int) -> list[Any]:
    """Start ``count`` detached hosts on the Ray this process joined (they import meanwhile)."""
    cls = _actor_class()
    return [cls.options(name=f"{_PREFIX}{uuid.uuid4().hex[:12]}", namespace=NAMESPACE,
                        lifetime="detached").remote() for _ in range(count)]  # fmt: skip


def _host_names() -> list[str]:
    import ray

    try:
        named = ray.util.list_named_actors(all_namespaces=True)
    except Exception:  # noqa: BLE001 - an old or remote GCS: no warm lanes
        return []
    return [a["name"] for a in named
            if a.get("namespace") == NAMESPACE and str(a.get("name", "")).startswith(_PREFIX)]  # fmt: skip


def host_count() -> int:
    """How many hosts the joined Ray has (free or not)."""
    return len(_host_names())


def claim_hosts(count: int, token: str, timeout_s: float = CLAIM_TIMEOUT_S) -> list[Any]:
    """Up to ``count`` free hosts with this code, claimed for ``token`` (waiting at most
    ``timeout_s`` for hosts that are still starting). Stale hosts are replaced."""
    import ray

    names = _host_names()
    if count <= 0 or not names:
        return []
    handles = []
    for name in names:
        with contextlib.suppress(Exception):
            handles.append(ray.get_actor(name, namespace=NAMESPACE))
    mine = fingerprint()
    deadline = time.time() + timeout_s
    asks = {h.claim.remote(token, mine, deadline): h for h in handles}
    claimed: list[Any] = []
    stale: list[Any] = []
    pending = list(asks)
    while pending and len(claimed) < count:
        left = deadline - time.time()
        if left <= 0:
            break
        done, pending = ray.wait(pending, num_returns=1, timeout=left)
        for ref in done:
            try:
                answer = ray.get(ref)
            except Exception:  # noqa: BLE001 - a host that died: Ray restarts it
                continue
            if answer == "ok":
                claimed.append(asks[ref])
            elif answer == "stale":
                stale.append(asks[ref])
    extra, claimed = claimed[count:], claimed[:count]
    for host in extra + [asks[ref] for ref in pending]:  # asked, not kept: free, whatever the
        host.release.remote(token)  # order in which the host sees the two calls
    if stale:
        for host in stale:
            with contextlib.suppress(Exception):
                ray.kill(host, no_restart=True)
        spawn_hosts(len(stale))
    return claimed


def release_hosts(hosts: list[Any]) -> None:
    """End hosts a pool used (one use each) and start as many fresh ones, and more if fewer
    than ``fairsearch up --warm-lanes`` are left (hosts of a command that was killed end
    without a replacement)."""
    import ray

    if not hosts:
        return
    before = host_count()
    for host in hosts:
        with contextlib.suppress(Exception):
            ray.kill(host, no_restart=True)
    with contextlib.suppress(Exception):
        spawn_hosts(max(len(hosts), wanted() - before + len(hosts)))


def wanted() -> int:
    """How many warm lanes ``fairsearch up`` was asked for (0 if it recorded none)."""
    from fairsearch.executor.head import running

    state = running()
    try:
        return max(0, int((state or {}).get("warm_lanes", 0)))
    except (TypeError, ValueError):
        return 0


def new_token() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------------------- CLI
#: Default ceiling of ``fairsearch up --warm-lanes`` (each waiting lane is a process with torch).
#: The default is twice the CPUs: a command uses one per CPU, and the ones it starts in their
#: place are still importing when the next command begins.
WARM_LANES_MAX = 8


def warm_up(wanted: int, timeout_s: float = 300.0) -> tuple[int, int]:
    """Top the ``fairsearch up`` Ray's warm lanes up to ``wanted`` and wait until the new ones
    have imported what a lane needs: (how many there were, how many were started)."""
    from fairsearch.executor.head import prepare_environment

    prepare_environment()  # the head's auth mode, before Ray is imported
    import ray

    from fairsearch.executor.ray_start import init_ray, shutdown_ray

    init_ray(None)
    try:
        have = host_count()
        started = max(0, wanted - have)
        hosts = spawn_hosts(started) if started else []
        ready, _ = ray.wait([h.__ray_ready__.remote() for h in hosts], num_returns=len(hosts),
                            timeout=timeout_s)  # fmt: skip
        for ref in ready:
            ray.get(ref)  # a host that failed to import says why here
        return have, started
    finally:
        shutdown_ray()


def record_wanted(count: int) -> None:
    """Keep ``--warm-lanes`` in the head's record, for pools that refill what was lost."""
    import json

    from fairsearch.executor.head import state_file, write_state

    write_state({**json.loads(state_file().read_text()), "warm_lanes": int(count)})


def configure_up(parser: Any) -> None:
    from fairsearch.executor.head import configure_up as configure_head

    configure_head(parser)
    parser.add_argument("--warm-lanes", type=int, default=None, metavar="N",
                        help="lane processes kept started, torch and the families imported, for "
                             f"the next commands' lanes (default: twice the CPUs, at most "
                             f"{WARM_LANES_MAX}; 0: none)")  # fmt: skip


def main_up(args: Any) -> int:
    """``fairsearch up``: the local Ray (:mod:`fairsearch.executor.head`), then its warm lanes."""
    from fairsearch.executor.head import main_up as main_head
    from fairsearch.executor.head import running

    if args.warm_lanes is not None and args.warm_lanes < 0:
        raise ValueError(f"--warm-lanes must be an integer >= 0, but got {args.warm_lanes}")
    code = main_head(args)
    state = running()
    wanted = args.warm_lanes
    if wanted is None:
        wanted = min(2 * int((state or {}).get("num_cpus") or 1), WARM_LANES_MAX)
    if state is not None:
        record_wanted(wanted)
    if wanted and state is not None:
        have, started = warm_up(wanted)
        print(f"warm lanes: {have + started} ready ({started} started now; each has torch and "
              "the families imported and waits for a command's lanes)")  # fmt: skip
    return code
