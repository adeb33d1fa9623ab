"""Ray for every stage: join a cluster or the local head ``fairsearch up`` started, else start
a private local Ray; stop it; route SIGINT/SIGTERM to a stop flag while lanes run.

Used by the search, the retrain stage and the audit's Ray executor (no stage starts Ray by
itself).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from fairsearch.executor.head import CLUSTERS_OFF, RAY_ENV, prepare_environment, private_auth_token

__all__ = ["RayStart", "init_ray", "shutdown_ray", "stop_on_signals"]

_STARTED_LOCAL_RAY = False


def init_ray(address: str | None = None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``), else the local Ray ``fairsearch up`` started
    (:mod:`fairsearch.executor.head`), else start a quiet local Ray with all CPUs.

    A local Ray listens on 127.0.0.1 only and its auth token file is private (0600): see
    :func:`_start_local_ray`.
    """
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS")
    # the head `fairsearch up` started; Ray reads the auth mode this sets when first imported
    # (the CLI calls prepare_environment before anything imports Ray)
    local = prepare_environment() if not address else None
    import ray

    if ray.is_initialized():
        return
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                  configure_logging=True)  # fmt: skip
    if local is not None:  # the head `fairsearch up` started: its nodes are on 127.0.0.1
        from ray._private import ray_constants

        private_auth_token()
        # The head's workers have RAY_ENV and the PYTHONPATH of `fairsearch up`; a runtime_env
        # only where this command's PYTHONPATH differs (it would keep Ray's idle workers unused)
        runtime = {}
        if os.environ.get("PYTHONPATH", "") != local.get("pythonpath", ""):
            runtime = {"runtime_env": {"env_vars": {
                k: os.environ[k] for k in (*RAY_ENV, "PYTHONPATH") if k in os.environ}}}
        previous = ray_constants.ENABLE_RAY_CLUSTER
        ray_constants.ENABLE_RAY_CLUSTER = CLUSTERS_OFF["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] != "0"
        try:
            ray.init(address=local.address, **runtime, **common)
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = previous
    elif address:
        env_vars = {k: os.environ[k] for k in RAY_ENV}  # the cluster's processes lack ours
        ray.init(address=address, runtime_env={"env_vars": env_vars}, **common)
    else:
        # no runtime_env: the local processes inherit os.environ, and a runtime_env would
        # keep the workers Ray starts up front from being used (about 1 s per first task)
        _start_local_ray(ray, **common)
    for name in ("ray", "ray.tune", "ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _NotMainThread(logging.Filter):
    """Drops ``ray.init``'s note that it set no SIGTERM handler off the main thread: the
    command installs its own handlers once Ray is up."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


class RayStart:
    """:func:`init_ray` in a background thread, so that a command checks its spec and data
    while Ray starts (a local Ray takes seconds) or is joined.

    ``wait()`` returns once Ray is up and re-raises what stopped it; ``abandon()`` (the checks
    failed, or a signal came) waits for the start to end and shuts down what it started, so no
    half-started Ray outlives the command.

    A local Ray's processes are killed when the *thread* that started them ends (Ray sets
    ``PR_SET_PDEATHSIG``, which Linux ties to the creating thread), so the thread stays alive,
    idle, until :func:`shutdown_ray`.
    """

    def __init__(self, address: str | None = None,
                 then: Callable[[], None] | None = None) -> None:  # fmt: skip
        """``then``: called in the thread once Ray is up (e.g. to start lanes early); what it
        raises is logged, not re-raised: it only saves time."""
        if not (address or os.environ.get("RAY_ADDRESS")):
            prepare_environment()  # before Ray is first imported (it reads the auth mode)
        import ray  # here, on the main thread: an import racing the checks' imports is slower

        self.error: BaseException | None = None
        self.was_running = ray.is_initialized()
        self._ready = threading.Event()
        self._then = then
        self._thread = threading.Thread(target=self._run, args=(address,), daemon=True,
                                        name="fairsearch-ray-start")  # fmt: skip
        self._thread.start()

    def _run(self, address: str | None) -> None:
        quiet = _NotMainThread()
        logger = logging.getLogger("ray._private.worker")
        logger.addFilter(quiet)
        _RELEASED.clear()
        try:
            init_ray(address)
            if self._then is not None:
                try:
                    self._then()
                except Exception:  # noqa: BLE001 - an early start only saves time
                    logging.getLogger("fairsearch").debug("early start failed", exc_info=True)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread by wait()
            self.error = exc
        finally:
            logger.removeFilter(quiet)
            self._ready.set()
        if self.error is None and _STARTED_LOCAL_RAY:
            _RELEASED.wait()  # keeps Ray's processes alive (see the class doc)

    def wait(self) -> None:
        while not self._ready.wait(0.1):  # short waits: a signal still reaches the main thread
            pass
        if self.error is not None:
            raise self.error

    def abandon(self, before_shutdown: Callable[[], None] | None = None) -> None:
        self._ready.wait()
        if before_shutdown is not None:
            with contextlib.suppress(Exception):
                before_shutdown()
        if not self.was_running:
            with contextlib.suppress(Exception):
                shutdown_ray()


#: Set by :func:`shutdown_ray`: a :class:`RayStart` thread that started a local Ray may end.
_RELEASED = threading.Event()


def _start_local_ray(ray: Any, **init_args: Any) -> None:
    """Start a one-machine Ray that nobody else on the network can reach.

    * Ray resolves ``127.0.0.1`` given to ``ray.init`` to the machine's address, and its
      servers listen on every interface unless their node address is the loopback one. Ray
      uses the loopback address where clusters are off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``,
      read once into ``ray_constants.ENABLE_RAY_CLUSTER``): it is turned off while this Ray
      starts, so GCS, raylet, agents and workers bind 127.0.0.1.
    * Ray writes a missing ``~/.ray/auth_token`` world-readable: one is created 0600 first
      (a loose existing one is made 0600).
    """
    from ray._private import ray_constants

    global _STARTED_LOCAL_RAY
    private_auth_token()
    previous = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", num_cpus=os.cpu_count(), **init_args)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous
    _STARTED_LOCAL_RAY = True


def shutdown_ray() -> None:
    """Stop Ray (the local one this process started, or this driver's connection)."""
    import ray

    from fairsearch.executor.dispatcher import discard_dispatcher

    global _STARTED_LOCAL_RAY
    if ray.is_initialized():
        discard_dispatcher()
        if _STARTED_LOCAL_RAY:
            _end_autoscaler_monitor()
        ray.shutdown()
    _STARTED_LOCAL_RAY = False
    _RELEASED.set()


def _end_autoscaler_monitor() -> None:
    """Kill the autoscaler monitor of the local Ray this process started, before
    ``ray.shutdown``.

    ``ray.shutdown`` stops the raylet and GCS first and then sends the monitor SIGTERM. The
    monitor's handler reports its end to the GCS that is already gone, so Ray waits its full
    second before SIGKILL: a second added to every command that started its own Ray. A
    one-machine Ray has nothing to scale and the monitor holds no state, so it is killed first
    (best effort: what is missed here ``ray.shutdown`` still stops). The monitor is the child
    process of this one running Ray's ``autoscaler/_private/monitor.py`` (found in ``/proc``).
    """
    try:
        for pid in _monitor_children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, timeout_s=1.0)
    except Exception:  # noqa: BLE001 - only saves time
        logging.getLogger("fairsearch").debug("could not end Ray's monitor early", exc_info=True)


#: The script of Ray's autoscaler monitor, as it shows in the monitor's command line.
_MONITOR_SCRIPT = os.path.join("autoscaler", "_private", "monitor.py")


def _monitor_children() -> list[int]:
    """Ids of this process's children that run Ray's autoscaler monitor (none without /proc)."""
    me, found = os.getpid(), []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            if parent != me:
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if any(arg.endswith(_MONITOR_SCRIPT) for arg in argv):
            found.append(int(entry.name))
    return found


def _wait_gone(pid: int, timeout_s: float) -> None:
    """Reap the killed child ``pid`` (or give up after ``timeout_s``)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # reaped elsewhere (Ray's Popen object)
        if done:
            return
        time.sleep(0.01)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, received: list[int]) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (a second one raises KeyboardInterrupt) and are appended to
    ``received``. Only on the main thread (elsewhere Python cannot install handlers). Enter it
    after ``ray.init``: Ray's core worker installs its own SIGTERM handler (a stack dump)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():  # None: a handler installed from C (Ray's)
            signal.signal(s, h if h is not None else signal.SIG_DFL)
