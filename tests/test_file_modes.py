"""Run-folder files follow the umask: tables, spec, the study journal and run.lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fairsearch.io.atomic import file_mode
from fairsearch.io.lock import LOCK_FILE, RunLock
from fairsearch.search.recorder import Recorder, write_spec
from fairsearch.search.repair import repair_study
from fairsearch.search.study import open_study
from fairsearch.spec.schema import parse_spec

SPEC = {
    "name": "modes", "data": {"name": "synthetic_regression", "n": 300, "n_train": 200},
    "model": "wrapper", "objectives": [{"metric": "mse", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0, "high": 1}},
}  # fmt: skip


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_every_run_folder_file_follows_the_umask(tmp_path: Path, umask: int) -> None:
    want = 0o666 & ~umask
    assert file_mode() == want
    spec = parse_spec(SPEC)
    write_spec(spec, tmp_path / "spec.yaml")
    rec = Recorder(open_study(spec, tmp_path), spec, tmp_path)
    item = rec.ask()
    rec.tell(0, {"key": item["key"], "status": "completed", "metrics": {"mse": 0.5},
                 "started_at": 1.0, "ended_at": 2.0})  # fmt: skip
    rec.close()
    for name in ("spec.yaml", "trials.parquet", "history.parquet", "study.journal"):
        assert _mode(tmp_path / name) == want, (name, oct(_mode(tmp_path / name)))
    with RunLock(tmp_path):
        assert _mode(tmp_path / LOCK_FILE) == want
    # A rebuilt study follows the same rule.
    (tmp_path / "study.journal").write_bytes(b"garbage")
    assert repair_study(tmp_path) is not None
    assert _mode(tmp_path / "study.journal") == want


def test_umask_022_gives_0644_tables(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        spec = parse_spec(SPEC)
        Recorder(open_study(spec, tmp_path), spec, tmp_path).write_tables()
        assert _mode(tmp_path / "trials.parquet") == 0o644
        assert _mode(tmp_path / "history.parquet") == 0o644
    finally:
        os.umask(old)
