"""Derived data built once and cached on disk with its lineage: the Adult base-network
embeddings (``data: {name: adult_embeddings}``), which take a base network's training to build.

The first load builds the dataset, printing its progress on stderr, and saves it as Parquet in
the cache folder (``$FAIRSEARCH_CACHE``, else ``~/.cache/fairsearch``) beside a JSON file of its
lineage: the dataset's name and arguments, and the SHA-256 of every file it was built from (the
shipped source data and the code that builds it). The file name carries a hash of that lineage,
so a changed argument, source file or recipe builds anew; later loads (``fairsearch validate``,
every lane of a search) read the file in about a second. A cache that cannot be read is built
again; one that cannot be written is skipped with a note.

No Ray here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fairsearch.data._dataset import Dataset
from fairsearch.data._parquet import load_parquet, save_parquet
from fairsearch.io.atomic import write_atomic
from fairsearch.io.lineage import fingerprint

__all__ = ["CACHE_ENV", "cache_dir", "cached"]

#: Where derived data is cached (default ``~/.cache/fairsearch``).
CACHE_ENV = "FAIRSEARCH_CACHE"

#: ``build(progress)`` returns the dataset; ``progress(text)`` says how far it is.
Build = Callable[[Callable[[str], None]], Dataset]


def cache_dir() -> Path:
    """The cache folder: ``$FAIRSEARCH_CACHE``, else ``~/.cache/fairsearch``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "fairsearch")


def _lineage(name: str, arguments: Mapping[str, Any], sources: Sequence[Path]) -> dict[str, Any]:
    return {"name": name, "arguments": dict(sorted(arguments.items())),
            "sources": {p.name: fingerprint(p) for p in sources}}  # fmt: skip


def cached(name: str, arguments: Mapping[str, Any], sources: Sequence[Path], build: Build) -> Dataset:
    """The dataset ``name`` built with ``arguments`` from the files ``sources``: read from the
    cache when its lineage matches, else built by ``build`` (with progress on stderr) and cached."""
    lineage = _lineage(name, arguments, sources)
    key = hashlib.sha256(json.dumps(lineage, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{key}.parquet"
    if path.is_file():
        try:
            return load_parquet(path)
        except (OSError, ValueError) as exc:
            _say(f"{name}: the cached {path} cannot be read ({exc}); building it again")
    _say(f"building {name} once (cached in {path.parent}; later loads read it)")
    data = build(lambda text: _say(f"{name}: {text}"))
    try:
        save_parquet(data, path)
        text = json.dumps(lineage, indent=2, sort_keys=True)
        write_atomic(path.with_suffix(".json"), lambda p: p.write_text(text + "\n"))
    except OSError as exc:
        _say(f"{name}: not cached ({exc}); the next load builds it again")
    return data


def _say(text: str) -> None:
    print(f"fairsearch: {text}", file=sys.stderr, flush=True)
