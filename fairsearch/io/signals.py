"""SIGINT and SIGTERM mean the same in every command: stop, keep what is complete, say how to go on.

Inside :func:`handled` (the CLI runs each command in it), :func:`install` (called on entry, and
again after ``ray.init``, whose core worker puts its own SIGTERM handler in place) makes both
signals raise :class:`Interrupted`, a
``KeyboardInterrupt`` whose ``exit_code`` is ``128 + signum`` (130 for SIGINT, 143 for SIGTERM).
A SIGINT that was ignored when the process started (a job started with ``&``) stays ignored.

Some libraries catch ``KeyboardInterrupt`` and carry on (scikit-learn's MLP stops training early
and returns a weaker model): that must never turn an interrupt into a finished result. So a
received signal is remembered (:func:`received`), and it is raised again every
``REPEAT_S`` seconds until it reaches the command's top, where :func:`settle` stops the repeats;
:func:`check` raises it before a stage writes its outputs. A repeat never lands inside an import
(it waits for the next tick): an import can run a C++ extension's callbacks, and an exception
raised there aborts the process instead of stopping the command.

:func:`interruptible` gives an interrupt inside a stage the stage's note: what was kept and the
command that continues. No Ray here.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["REPEAT_S", "Interrupted", "check", "handled", "install", "interruptible", "received",
           "settle"]

#: How often a swallowed interrupt is raised again.
REPEAT_S = 0.5
_RECEIVED: list[int] = []
_ACTIVE = False


class Interrupted(KeyboardInterrupt):
    """A signal stopped a command; ``note`` says what was kept and how to continue."""

    def __init__(self, signum: int, note: str = "") -> None:
        self.signum, self.note = int(signum), note
        name = signal.Signals(self.signum).name
        super().__init__(f"stopped by {name}" + (f": {note}" if note else ""))

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum: int, frame: FrameType | None) -> None:
    if not _RECEIVED:
        _RECEIVED.append(signum)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGALRM, _repeat)
            signal.setitimer(signal.ITIMER_REAL, REPEAT_S, REPEAT_S)
    raise Interrupted(_RECEIVED[0])


def _repeat(signum: int, frame: FrameType | None) -> None:
    if _RECEIVED and not _importing(frame):
        raise Interrupted(_RECEIVED[0])


def _importing(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside an import (a frame of importlib's bootstrap below it)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def install() -> None:
    """Make SIGINT (unless ignored from the start) and SIGTERM raise :class:`Interrupted`, while
    :func:`handled` is active (a library caller keeps its own handlers). Only on the main thread
    (elsewhere Python cannot install handlers)."""
    if not _ACTIVE or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """One command: :func:`install` on entry; on exit the repeats stop and the handlers that
    were there before are back."""
    global _ACTIVE
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _RECEIVED.clear()
    _ACTIVE = True
    install()
    try:
        yield
    finally:
        settle()
        _ACTIVE = False
        for s, h in previous.items():  # None: a handler installed from C
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def received() -> int | None:
    """The signal that stopped this process, if one did."""
    return _RECEIVED[0] if _RECEIVED else None


def settle() -> None:
    """Stop raising a received signal again (the command is ending)."""
    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0, 0)


def check(note: str = "") -> None:
    """Raise :class:`Interrupted` if a signal was received (even one a library swallowed)."""
    if _RECEIVED:
        raise Interrupted(_RECEIVED[0], note)


@contextlib.contextmanager
def interruptible(note: str | Callable[[], str]) -> Iterator[None]:
    """An interrupt inside gets ``note`` (what was kept, how to continue; a callable is asked
    when the interrupt comes) unless it has a note already."""
    try:
        yield
    except KeyboardInterrupt as exc:
        if getattr(exc, "note", ""):
            raise
        signum = getattr(exc, "signum", None) or received() or signal.SIGINT
        raise Interrupted(signum, note() if callable(note) else note) from None
