"""Atomic file writes: a killed process never leaves a half-written table behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["file_mode", "match_umask", "write_atomic"]


def file_mode() -> int:
    """The mode a new file gets under this process's umask (what ``open(..., "w")`` gives)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; run-folder files follow the umask
        os.replace(tmp, path)
    except OSError as exc:  # e.g. a full disk: the error names the file being written
        Path(tmp).unlink(missing_ok=True)
        if exc.filename in (None, tmp):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def match_umask(path: str | Path) -> None:
    """Give an existing file the mode a new one gets under the umask (e.g. ``study.db``, which
    SQLite creates 0644 whatever the umask)."""
    path = Path(path)
    if path.is_file():
        os.chmod(path, file_mode())
