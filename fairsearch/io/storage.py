"""Where a run folder lives: a local path, a shared mount, or an object-store URI.

``--storage`` is the parent of run folders. A path (``runs``, ``/mnt/nfs/fairsearch``) holds
the run folder itself; on a cluster it must be a file system every node mounts at the same
path, because Ray Train persists from the node that runs a trial. A URI (``s3://bucket/runs``,
``gs://…``, ``file:///…``: anything ``pyarrow.fs.FileSystem.from_uri`` opens) cannot hold the
Optuna study (SQLite needs a local file), so the run folder is written to a local *staging*
folder (a fresh ``tempfile.mkdtemp`` folder, under ``$FAIRSEARCH_STAGING`` when set) and copied
to the URI with ``pyarrow.fs.copy_files`` after table writes (at most every ``SYNC_INTERVAL_S``)
and at the end; Ray Tune and Ray Train write their own state straight to ``<run URI>/ray``.

The staging folder names its URI in a file ``.remote``, but a file inside a folder never decides
where uploads go on its own: ``open_run(path)`` treats a local folder as local, and honours its
``.remote`` only when the caller passes ``storage=`` (the user's ``--storage URI``) and the
recorded URI lies under it. Pass the URI itself to stage and upload a remote run folder.

No Ray here.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairsearch.io.lock import LOCK_FILE

__all__ = ["JOB_CONFIG_ENV", "SYNC_INTERVAL_S", "RunStorage", "check_not_in_job_copy",
           "check_storage_path", "is_uri", "job_working_copy", "new_run", "open_run"]

#: What Ray's job supervisor sets for a job's driver: the job's config as JSON, whose
#: ``runtime_env`` holds the ``working_dir`` the job was submitted with. The driver runs in
#: Ray's unpacked copy of it (``.../runtime_resources/working_dir_files/_ray_pkg_<hash>``),
#: which Ray deletes when the job ends; a ``local://`` working dir is used in place, no copy.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"

#: File in a staging folder holding the URI it is uploaded to.
REMOTE_FILE = ".remote"

#: Least seconds between two uploads of a staged run folder (the last one is always made).
SYNC_INTERVAL_S = 10.0


def is_uri(location: str | os.PathLike[str]) -> bool:
    """True for ``scheme://…`` (an object store or ``file://``), False for a plain path."""
    return "://" in str(location)


def _staging_folder(name: str) -> Path:
    """A new private folder (``mkdtemp``: mode 0700, an unguessable name) holding ``name``."""
    root = os.environ.get("FAIRSEARCH_STAGING") or None
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    local = Path(tempfile.mkdtemp(prefix="fairsearch-", dir=root)) / name
    local.mkdir()
    return local


def job_working_copy(environ: Mapping[str, str] | None = None,
                     cwd: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder this process runs in when it is a Ray job's driver inside Ray's temporary copy
    of the job's working dir (``ray job submit --working-dir .``), else ``None``."""
    raw = (os.environ if environ is None else environ).get(JOB_CONFIG_ENV)
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except ValueError:
        return None
    runtime_env = config.get("runtime_env") if isinstance(config, dict) else None
    working_dir = runtime_env.get("working_dir") if isinstance(runtime_env, dict) else None
    if not isinstance(working_dir, str) or not working_dir or working_dir.startswith("local://"):
        return None
    return Path(os.path.abspath(os.getcwd() if cwd is None else cwd))


def check_not_in_job_copy(storage: str | os.PathLike[str], *,
                          environ: Mapping[str, str] | None = None,
                          cwd: str | os.PathLike[str] | None = None) -> None:
    """``ValueError`` when ``storage`` (a path, or a ``file://`` URI) lies inside the temporary
    copy of a Ray job's working dir (:func:`job_working_copy`): the run folder would be deleted
    with the job."""
    copy = job_working_copy(environ, cwd)
    text = str(storage)
    if copy is None or (is_uri(text) and not text.startswith("file://")):
        return
    path = Path(text.removeprefix("file://"))
    where = Path(os.path.abspath(copy / path))
    if where == copy or copy in where.parents:
        raise ValueError(
            f"`--storage` {text!r} lies inside this Ray job's temporary copy of its working "
            f"directory ({copy}), which Ray deletes when the job ends, run folder and all: pass "
            f"`--storage` a folder every node mounts (e.g. /mnt/nfs/fairsearch) or a URI (e.g. "
            f"s3://bucket/runs); docs/cluster.md, \"Where run folders go\"")


def check_storage_path(storage: str | os.PathLike[str]) -> None:
    path = Path(storage)
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"`--storage` must be a folder (the parent of run folders) or a URI, but "
            f"{str(storage)!r} is an existing file"
        )


def _open_uri(uri: str):
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:  # ArrowInvalid is a ValueError
        raise ValueError(
            f"`--storage` must be a local path or a URI that pyarrow.fs opens (s3://, gs://, "
            f"hdfs://, file://), but got {uri!r}: {exc}"
        ) from None


@dataclass
class RunStorage:
    """A run folder: ``local`` is where it is written, ``remote`` (a URI) where it is kept."""

    local: Path
    remote: str | None = None
    filesystem: Any = field(default=None, repr=False)  #: pyarrow.fs.FileSystem of remote
    remote_path: str = field(default="", repr=False)  #: remote, as a path in it
    _synced_at: float = field(default=0.0, repr=False)

    @property
    def location(self) -> str:
        """Where users find the run folder: the URI, else the local path."""
        return self.remote or str(self.local)

    @property
    def ray_storage(self) -> str:
        """``storage_path`` for Ray Tune and Ray Train (absolute: the driver's cwd is not the
        workers' cwd)."""
        if self.remote:
            return f"{self.remote.rstrip('/')}/ray"
        return str((self.local / "ray").resolve())

    def sync(self, *, force: bool = True) -> None:
        """Copy the staged folder to ``remote`` (no-op for a local run folder).

        ``force=False`` skips the copy when the last one is under ``SYNC_INTERVAL_S`` old.
        """
        if self.remote is None:
            return
        now = time.monotonic()
        if not force and now - self._synced_at < SYNC_INTERVAL_S:
            return
        import pyarrow.fs

        self.filesystem.create_dir(self.remote_path, recursive=True)
        pyarrow.fs.copy_files(str(self.local.resolve()), self.remote_path,
                              destination_filesystem=self.filesystem)  # fmt: skip
        self._synced_at = now


def new_run(storage: str | os.PathLike[str], folder: str) -> RunStorage:
    """Create run folder ``folder`` under ``storage`` (a path or a URI; see the module doc).

    A name already taken (two runs of one spec started in the same second) gets ``-2``,
    ``-3``... appended: a local folder is claimed by ``mkdir``, which only one process wins."""
    if not is_uri(storage):
        check_storage_path(storage)
        Path(storage).mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            local = Path(storage) / (folder if n == 1 else f"{folder}-{n}")
            try:
                local.mkdir()
            except FileExistsError:
                continue
            return RunStorage(local)
        raise ValueError(f"could not create a run folder {folder!r} under {str(storage)!r}: "
                         f"999 folders of that name exist")  # fmt: skip
    import pyarrow.fs

    base, name = str(storage).rstrip("/"), folder
    for n in range(2, 1000):  # a remote name is checked, not claimed: best effort
        fs, path = _open_uri(f"{base}/{folder}")
        if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
            break
        folder = f"{name}-{n}"
    uri = f"{base}/{folder}"
    local = _staging_folder(folder)
    (local / REMOTE_FILE).write_text(uri)
    return RunStorage(local, uri, fs, path)


def open_run(location: str | os.PathLike[str], *,
             storage: str | os.PathLike[str] | None = None) -> RunStorage:  # fmt: skip
    """An existing run folder: a local path, or a URI whose top-level files are copied into a
    fresh staging folder.

    A local folder's ``.remote`` (the URI a staging folder came from) is honoured only when
    ``storage`` is a URI and the recorded URI lies under it; otherwise the folder is local and
    nothing is uploaded. A ``.remote`` under a different ``storage`` is a ``ValueError``.
    """
    if not is_uri(location):
        marker = Path(location) / REMOTE_FILE
        if storage is None or not is_uri(storage) or not marker.is_file():
            return RunStorage(Path(location))
        uri = marker.read_text().strip()
        parent = str(storage).rstrip("/")
        if not (uri == parent or uri.startswith(parent + "/")):
            raise ValueError(
                f"run folder {str(location)!r} was staged for {uri!r}, which is not under "
                f"`--storage` {str(storage)!r}; pass the run's own URI instead"
            )
        return RunStorage(Path(location), uri, *_open_uri(uri))
    import pyarrow.fs

    uri = str(location).rstrip("/")
    fs, path = _open_uri(uri)
    local = _staging_folder(Path(path).name)
    for info in fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True)):
        # run.lock belongs to the staging folder of the driver that uploaded it, not to the run
        if info.type == pyarrow.fs.FileType.File and info.base_name != LOCK_FILE:
            pyarrow.fs.copy_files(info.path, str(local / info.base_name), source_filesystem=fs)
    (local / REMOTE_FILE).write_text(uri)
    return RunStorage(local, uri, fs, path)
