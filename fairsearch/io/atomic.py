"""Atomic file writes: a killed process never leaves a half-written table behind.

A write that fails (a full disk inside pyarrow, torch or a plain ``write``, an ``fsync`` or
``rename`` refused, an interrupt) removes its temporary file: what it leaves is the old file,
untouched, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["discard", "file_mode", "match_umask", "write_atomic"]


def file_mode() -> int:
    """The mode a new file gets under this process's umask (what ``open(..., "w")`` gives)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def discard(tmp: str | Path) -> None:
    """Remove a temporary file after a failed write; a failure to remove it (the folder is
    gone, or read-only) never hides the error that made the write fail."""
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    Whatever fails, in ``write`` or after it, the temporary file is removed and ``path`` keeps
    its old content; an ``OSError`` about the temporary file names ``path`` instead (a full disk
    says which file could not be written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; run-folder files follow the umask
        os.replace(tmp, path)
    except OSError as exc:  # e.g. a full disk: the error names the file being written
        if tmp:
            discard(tmp)
        if exc.filename in (None, tmp) or not tmp:  # (not tmp: mkstemp itself failed)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:  # an interrupt, or a library's own error type
        if tmp:
            discard(tmp)
        raise


def match_umask(path: str | Path) -> None:
    """Give an existing file the mode a new one gets under the umask (e.g. ``study.db``, which
    SQLite creates 0644 whatever the umask)."""
    path = Path(path)
    if path.is_file():
        os.chmod(path, file_mode())
