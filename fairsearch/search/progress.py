"""A one-line live view of a search on stderr (rewritten in place; silent with ``quiet``)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``search 7/20 done (1 failed, 1 diverged, 2 pruned), 2 running, front 4, 00:31``.

    Redraws at most every ``interval`` seconds (always on the final call); on a stream that is
    not a terminal it prints a plain line per change of the done count instead of redrawing.
    """

    def __init__(
        self,
        total: int,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        interval: float = 0.25,
    ) -> None:
        self.total, self.quiet, self.interval = total, quiet, interval
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.time()
        self._last_draw = 0.0
        self._last_done = -1
        self._width = 0
        self._last_text = ""
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, done: int, running: int, failed: int, diverged: int, front: int, *,
             pruned: int = 0) -> str:  # fmt: skip
        elapsed = int(time.time() - self.started)
        bad = []
        if failed:
            bad.append(f"{failed} failed")
        if diverged:
            bad.append(f"{diverged} diverged")
        if pruned:
            bad.append(f"{pruned} pruned")
        extra = f" ({', '.join(bad)})" if bad else ""
        return (
            f"search {done}/{self.total} done{extra}, {running} running, front {front}, "
            f"{elapsed // 60:02d}:{elapsed % 60:02d}"
        )

    def update(
        self, done: int, running: int, failed: int = 0, diverged: int = 0, front: int = 0,
        *, final: bool = False, pruned: int = 0,
    ) -> None:  # fmt: skip
        if self.quiet:
            return
        now = time.time()
        if not final and now - self._last_draw < self.interval and done == self._last_done:
            return
        text = self.line(done, running, failed, diverged, front, pruned=pruned)
        if self._tty:
            pad = " " * max(0, self._width - len(text))
            self.stream.write(f"\r{text}{pad}" + ("\n" if final else ""))
        elif done != self._last_done or (final and text != self._last_text):
            self.stream.write(text + "\n")
        self.stream.flush()
        self._width, self._last_text = len(text), text
        self._last_draw, self._last_done = now, done
