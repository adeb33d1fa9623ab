"""One driver per run folder: ``run.lock`` holds the PID, host and start time of its driver.

``with RunLock(run_dir): ...`` creates ``run.lock`` atomically with its content: the holder is
written to a private temporary file, which is then hard-linked to ``run.lock`` (``link`` fails
when the name exists, atomically on local file systems and NFS; no reader ever sees an empty
lock). A second driver on the same folder gets a ``ValueError`` naming the holder. A lock left by
a driver that died (same host, PID no longer alive) is stale: it is taken over with a warning
line. Taking over is serialised by an exclusive ``fcntl.flock`` on ``.run.lock.takeover``: under
it the lock is read again and replaced only if it still names the same dead holder, so of many
drivers that find one stale lock exactly one gets it, and the others then see a live holder.
The kernel drops the ``flock`` when its process dies, so a driver killed mid-takeover blocks
nobody. The lock is re-entrant within one process, so the pipeline can hold it around the whole
run while the search stage takes it again.

Every command that writes to a run folder holds it: ``run``, ``search``, ``resume``, ``repair``,
``pareto``, ``retrain``, ``audit`` and ``report``.

No Ray here.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from fairsearch.io.atomic import discard, file_mode

__all__ = ["LOCK_FILE", "RunLock", "pid_alive", "read_lock"]

LOCK_FILE = "run.lock"
#: guard file whose ``flock`` serialises taking over a stale lock (never removed: see the doc)
TAKEOVER_FILE = ".run.lock.takeover"
#: run.lock paths held by this process -> how many times (re-entrant holds)
_HELD: dict[Path, int] = {}


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (signal 0 checks without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_lock(path: str | Path) -> dict[str, Any] | None:
    """The holder recorded in a ``run.lock`` (``pid``, ``host``, ``started_at``); None if unreadable."""
    try:
        holder = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "an unknown process (run.lock is unreadable)"
    since = holder.get("started_at")
    when = datetime.fromtimestamp(since).isoformat(timespec="seconds") if isinstance(
        since, int | float) else "an unknown time"  # fmt: skip
    return f"pid {holder.get('pid')} on host {holder.get('host')!r} since {when}"


class RunLock:
    """Context manager holding ``RUN_DIR/run.lock`` (see the module doc)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = (Path(run_dir) / LOCK_FILE).resolve()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.release()

    def acquire(self) -> None:
        if self.path in _HELD:
            _HELD[self.path] += 1
            return
        if not self.path.parent.is_dir():
            raise ValueError(f"RUN_DIR {str(self.path.parent)!r} is not a folder; cannot lock it")
        for _ in range(5):  # a holder that releases meanwhile lets the create be tried again
            if self._create():
                _HELD[self.path] = 1
                return
            holder = read_lock(self.path)
            if holder is None and not self.path.exists():
                continue  # released between the create and the read
            if not self._stale(holder):
                raise self._in_use(holder)
            if self._take_over(holder):
                _HELD[self.path] = 1
                return
        raise ValueError(f"could not lock run folder {str(self.path.parent)!r}: {str(self.path)!r} "
                         "keeps changing hands; try again")  # fmt: skip

    def _in_use(self, holder: dict[str, Any] | None) -> ValueError:
        return ValueError(
            f"run folder {str(self.path.parent)!r} is in use by {_describe(holder)}: "
            f"one driver per run folder; wait for it to end, or, if that process is "
            f"gone, delete {str(self.path)!r}"
        )

    def _take_over(self, stale: dict[str, Any] | None) -> bool:
        """Replace the ``stale`` lock by ours under the takeover guard; False when the lock
        changed meanwhile (the caller looks again: someone else took it, or released it)."""
        guard = os.open(self.path.with_name(TAKEOVER_FILE), os.O_RDWR | os.O_CREAT, file_mode())
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            if read_lock(self.path) != stale:
                return False
            print(f"warning: taking over the stale lock of {_describe(stale)} (that process no "
                  f"longer runs) on {str(self.path.parent)!r}", file=sys.stderr)  # fmt: skip
            tmp = self._holder_file()
            try:
                os.replace(tmp, self.path)  # atomic: the lock is never absent
            finally:
                discard(tmp)  # (gone already once the replace succeeded)
            return True
        finally:
            os.close(guard)  # drops the flock

    def release(self) -> None:
        count = _HELD.get(self.path, 0)
        if count > 1:
            _HELD[self.path] = count - 1
            return
        _HELD.pop(self.path, None)
        holder = read_lock(self.path)
        if holder is not None and holder.get("pid") == os.getpid() and holder.get(
                "host") == socket.gethostname():  # fmt: skip
            self.path.unlink(missing_ok=True)

    def _holder_file(self) -> Path:
        """A new private file beside the lock holding this process as the holder."""
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time()}
        tmp = ""
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{LOCK_FILE}.",
                                       suffix=".tmp")  # fmt: skip
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(holder) + "\n")
            os.chmod(tmp, file_mode())
        except OSError as exc:  # e.g. a full disk: no temporary file stays, the error names the lock
            if tmp:
                discard(tmp)
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from exc
        except BaseException:
            if tmp:
                discard(tmp)
            raise
        return Path(tmp)

    def _create(self) -> bool:
        """Create the lock with its content in one step (``link`` fails if it exists)."""
        tmp = self._holder_file()
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                return False
            raise
        finally:
            discard(tmp)
        return True

    @staticmethod
    def _stale(holder: dict[str, Any] | None) -> bool:
        """Only a lock of this host whose process is gone is stale (another host's PID cannot
        be checked from here)."""
        if holder is None or holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return isinstance(pid, int) and not pid_alive(pid)
