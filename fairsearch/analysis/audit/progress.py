"""A live view of the audit on stderr: a line at least every few seconds, silent with ``quiet``.

``audit 7/30 units, trial-3/seed-0: gbt, fold seed 1/2, 00:41 elapsed, ETA 01:10`` — units are
representation x probe kind x fold seed (the shuffled-q control's too; a fold seed successive
halving skips counts as done), plus one per representation for the rest (MDL, control probes,
other labels). With units running at once (Ray tasks) it names the earliest one not finished. The ETA assumes the units left cost what the finished ones did.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["AuditProgress"]


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60:02d}:{s % 60:02d}"


class AuditProgress:
    """Counts finished units and prints the state every ``interval`` seconds (a background
    thread, so a long unit still shows) and when the audit ends. Use as a context manager."""

    def __init__(self, total: int, *, quiet: bool = False, stream: TextIO | None = None,
                 interval: float = 5.0) -> None:
        if total < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.total, self.quiet, self.interval = total, quiet, interval
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.current = ""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        eta = (_clock(elapsed / self.done * (self.total - self.done)) if self.done else "?")
        where = f", {self.current}" if self.current and self.done < self.total else ""
        return (f"audit {self.done}/{self.total} units{where}, {_clock(elapsed)} elapsed, "
                f"ETA {eta}")

    def _print(self) -> None:
        if self.quiet:
            return
        with self._lock:
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._print()

    def start(self, representation: str, what: str) -> None:
        """The unit now running."""
        with self._lock:
            self.current = f"{representation}: {what}"

    def finish(self, units: int = 1) -> None:
        with self._lock:
            self.done = min(self.total, self.done + units)

    def __enter__(self) -> AuditProgress:
        self.started = time.monotonic()
        if not self.quiet:
            self._print()
            self._thread = threading.Thread(target=self._beat, name="audit-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._print()
