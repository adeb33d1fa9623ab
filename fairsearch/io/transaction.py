"""Stage outputs swapped in whole: the previous complete outputs stay until the new ones are done.

A stage writes everything into a staging folder beside its old outputs (``retrain.partial/``,
``pareto.partial/``...), then :func:`commit` moves it into place. The commit writes its list of
moves to a journal (``.<stage>.commit.json``) first, atomically: that write is the commit point.
A process killed before it leaves the old outputs untouched and the staging folder for the next
run; a process killed after it leaves a journal that :func:`finish_commits` replays (every move
is idempotent), so the new outputs are completed, never mixed with the old ones. Every stage
calls :func:`finish_commits` under the run folder's lock before it reads anything
(:func:`stage_lock`).

No Ray here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from fairsearch.io.atomic import write_atomic
from fairsearch.io.lock import RunLock

__all__ = ["JOURNAL_SUFFIX", "commit", "finish_commits", "stage_lock"]

JOURNAL_SUFFIX = ".commit.json"


def commit(run_dir: str | Path, stage: str, moves: Sequence[tuple[str, str]],
           remove: Sequence[str] = ()) -> None:  # fmt: skip
    """Move each ``(source, destination)`` (paths relative to the run folder: files or folders)
    onto its destination, then delete ``remove`` (e.g. the emptied staging folder, or a cache
    the new outputs make wrong). Once the journal is written the commit completes, here or in
    the next :func:`finish_commits`."""
    run = Path(run_dir)
    for src, _ in moves:
        if not (run / src).exists():
            raise FileNotFoundError(2, "a staged output to commit is missing", str(run / src))
    text = json.dumps({"moves": [list(m) for m in moves], "remove": list(remove)})
    journal = run / f".{stage}{JOURNAL_SUFFIX}"
    write_atomic(journal, lambda p: _write_synced(p, text))
    _replay(run, journal)


def finish_commits(run_dir: str | Path) -> list[str]:
    """Complete the commits a killed process left (their journals); returns their stages."""
    run = Path(run_dir)
    done = []
    for journal in sorted(run.glob(f".*{JOURNAL_SUFFIX}")):
        _replay(run, journal)
        done.append(journal.name[1 : -len(JOURNAL_SUFFIX)])
    return done


@contextlib.contextmanager
def stage_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the run folder's :class:`RunLock` with any cut-short commit completed."""
    run = Path(run_dir)
    with RunLock(run):
        finish_commits(run)
        yield run


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _replay(run: Path, journal: Path) -> None:
    try:
        plan = json.loads(journal.read_text())
        moves, remove = plan["moves"], plan["remove"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{journal} is damaged ({type(exc).__name__}: {exc}): delete it and "
                         f"re-run the stage it names") from None  # fmt: skip
    for src, dst in moves:
        s, d = run / src, run / dst
        old = d.with_name(f".{d.name}.old")
        if s.exists():  # else moved by an earlier replay
            if s.is_dir():
                if old.exists():
                    shutil.rmtree(old)
                if d.exists():
                    os.rename(d, old)  # a folder cannot be replaced in one step
            os.replace(s, d)
        if old.is_dir():
            shutil.rmtree(old)
    for name in remove:
        path = run / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    journal.unlink(missing_ok=True)
