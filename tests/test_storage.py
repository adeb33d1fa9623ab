"""Run folders on storage other than the working directory: paths, shared mounts, URIs.

The URI handling is tested without a cloud: ``file://`` URIs go through pyarrow's
LocalFileSystem and ``mock://`` through its in-memory file system, the same code path as
``s3://``. The slow test runs a real search to a ``file://`` URI and resumes it from there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pyarrow.fs
import pytest
import yaml

from fairsearch.io import storage
from fairsearch.io.storage import REMOTE_FILE, is_uri, new_run, open_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "staging"
    monkeypatch.setenv("FAIRSEARCH_STAGING", str(folder))
    return folder


def test_is_uri() -> None:
    assert is_uri("s3://bucket/runs") and is_uri("file:///tmp/runs") and is_uri("gs://b")
    assert not is_uri("runs") and not is_uri("/mnt/nfs/runs") and not is_uri(Path("/tmp"))


def test_local_path_outside_the_working_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    shared = tmp_path / "nfs" / "fairsearch"  # e.g. a mount every node has at the same path
    run = new_run(shared, "spec-20250101-000000")
    assert run.local == shared / "spec-20250101-000000" and run.local.is_dir()
    assert run.remote is None and run.location == str(run.local)
    assert run.ray_storage == str(run.local / "ray")
    run.sync()  # nothing to do
    assert not (tmp_path / "cwd" / "runs").exists()
    # never reuses a run folder: two runs started in the same second get distinct names
    again = new_run(shared, "spec-20250101-000000")
    assert again.local == shared / "spec-20250101-000000-2" and again.local.is_dir()
    assert new_run(shared, "spec-20250101-000000").local.name == "spec-20250101-000000-3"


def test_a_uri_run_folder_name_already_taken_gets_a_suffix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAIRSEARCH_STAGING", str(tmp_path / "staging"))
    (tmp_path / "bucket" / "spec-1").mkdir(parents=True)
    run = new_run(f"file://{tmp_path}/bucket", "spec-1")
    assert run.remote == f"file://{tmp_path}/bucket/spec-1-2"


def test_relative_path_gives_an_absolute_ray_storage(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = new_run("runs", "a-1")
    assert run.local == Path("runs/a-1")
    assert run.ray_storage == str(tmp_path / "runs" / "a-1" / "ray")


def test_uri_run_is_staged_locally_and_copied(tmp_path: Path, staging: Path) -> None:
    bucket = tmp_path / "bucket"
    run = new_run(f"file://{bucket}/runs/", "spec-1")
    assert run.local.name == "spec-1" and run.local.parent.parent == staging
    assert run.local.is_dir()
    assert run.remote == f"file://{bucket}/runs/spec-1" and run.location == run.remote
    assert run.ray_storage == f"file://{bucket}/runs/spec-1/ray"  # Ray writes there itself
    assert not bucket.exists()  # nothing is uploaded before the first sync
    (run.local / "trials.parquet").write_bytes(b"x")
    (run.local / "report").mkdir()
    (run.local / "report" / "report.md").write_text("# r")
    run.sync()
    remote = bucket / "runs" / "spec-1"
    assert (remote / "trials.parquet").read_bytes() == b"x"
    assert (remote / "report" / "report.md").read_text() == "# r"


def test_sync_is_throttled_unless_forced(tmp_path: Path) -> None:
    run = new_run(f"file://{tmp_path}/bucket", "spec-1")
    run.sync()
    (run.local / "history.parquet").write_bytes(b"h")
    run.sync(force=False)  # just synced: skipped
    remote = tmp_path / "bucket" / "spec-1"
    assert not (remote / "history.parquet").exists()
    run.sync()
    assert (remote / "history.parquet").exists()


def test_mock_filesystem_goes_through_pyarrow(staging: Path) -> None:
    run = new_run("mock:///bucket/runs", "spec-1")
    (run.local / "study.journal").write_bytes(b"journal")
    run.sync()
    info = run.filesystem.get_file_info("bucket/runs/spec-1/study.journal")
    assert info.type == pyarrow.fs.FileType.File and info.size == 7


def test_open_run_downloads_a_uri_and_the_staging_copy_remembers_it(tmp_path: Path) -> None:
    remote = tmp_path / "bucket" / "spec-1"
    (remote / "ray").mkdir(parents=True)
    (remote / "spec.yaml").write_text("name: spec\n")
    (remote / "study.journal").write_bytes(b"db")
    (remote / "ray" / "big.bin").write_bytes(b"0" * 10)
    run = open_run(f"file://{remote}")
    assert run.remote == f"file://{remote}" and run.local.name == "spec-1"
    assert (run.local / "spec.yaml").read_text() == "name: spec\n"
    assert (run.local / "study.journal").read_bytes() == b"db"
    assert not (run.local / "ray").exists()  # Ray's state stays where Ray writes it
    assert (run.local / REMOTE_FILE).read_text() == run.remote
    # A file inside the folder never redirects uploads on its own: the local folder is local...
    plain = open_run(run.local)
    assert plain.remote is None and plain.location == str(run.local)
    # ...unless the user names the storage again and the recorded URI lies under it.
    again = open_run(run.local, storage=f"file://{tmp_path}/bucket")
    assert again.remote == run.remote and again.location == run.remote
    with pytest.raises(ValueError, match=r"staged for 'file://.*spec-1', which is not under "
                                         r"`--storage` 'file:///elsewhere'"):
        open_run(run.local, storage="file:///elsewhere")
    assert open_run(run.local, storage="runs").remote is None  # a path storage: local


def test_a_planted_remote_file_does_not_redirect_uploads(tmp_path: Path) -> None:
    run = new_run(tmp_path / "runs", "spec-1")
    (run.local / REMOTE_FILE).write_text(f"file://{tmp_path}/attacker")
    (run.local / "trials.parquet").write_bytes(b"secret")
    open_run(run.local).sync()
    assert not (tmp_path / "attacker").exists()


def test_staging_folders_are_fresh_and_private(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("FAIRSEARCH_STAGING")
    monkeypatch.setattr(storage.tempfile, "tempdir", str(tmp_path))
    a = new_run(f"file://{tmp_path}/bucket", "spec-1")
    b = new_run(f"file://{tmp_path}/bucket2", "spec-1")  # same run name: no clash
    assert a.local != b.local and a.local.name == b.local.name == "spec-1"
    assert a.local.parent.parent == tmp_path and a.local.parent.name != "fairsearch-staging"
    assert a.local.parent.stat().st_mode & 0o777 == 0o700


def test_storage_that_is_a_file_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "runs"
    afile.write_text("not a folder")
    with pytest.raises(ValueError, match=r"`--storage` must be a folder .* but '.*runs' is an "
                                         r"existing file"):
        new_run(afile, "spec-1")


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"`--storage` must be a local path or a URI.*'nope://b/r/x'"):
        new_run("nope://b/r", "x")


def test_sync_interval_is_positive() -> None:
    assert storage.SYNC_INTERVAL_S > 0


# --- a real search to a URI ---------------------------------------------------------------------


def _spec_file(tmp_path: Path) -> Path:
    raw = {
        "name": "uri",
        "data": {"name": "synthetic_regression", "n": 300, "n_train": 200, "seed": 0},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": "wrapper_mlp.yaml",
        "search": {"algorithm": "random", "trials": 2, "max_concurrent": 1, "seed": 0},
        "trial": {"epochs": 1, "batch_size": 64},
    }  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
@pytest.mark.ray
def test_search_to_a_uri_and_resume_from_it(ray_local, tmp_path: Path, capsys, staging) -> None:
    from fairsearch.search.engine import main_resume, main_search

    bucket = tmp_path / "bucket"
    args = argparse.Namespace(spec=str(_spec_file(tmp_path)), storage=f"file://{bucket}/runs",
                              address=None, quiet=True)  # fmt: skip
    assert main_search(args) == 0
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    assert uri.startswith(f"file://{bucket}/runs/uri-")
    remote = Path(uri.removeprefix("file://"))
    trials = pd.read_parquet(remote / "trials.parquet")
    assert len(trials) == 2 and set(trials["status"]) == {"completed"}
    assert (remote / "study.journal").is_file() and (remote / "spec.yaml").is_file()
    assert (remote / "history.parquet").is_file()
    assert (remote / "ray" / "tune").is_dir()  # Ray Tune wrote its state to the URI
    staged = next(staging.glob(f"*/{remote.name}"))
    assert (staged / "study.journal").is_file()  # the study lived in staging
    assert not (staged / "ray").exists()

    # Resuming from the URI: downloaded to a new staging folder; nothing left to run.
    assert main_resume(argparse.Namespace(run_dir=uri, address=None, quiet=True)) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == uri
    assert len(pd.read_parquet(remote / "trials.parquet")) == 2


# ---------------------------------------------------------------------------- inside a Ray job
def _job_env(working_dir: str | None) -> dict[str, str]:
    """The variable Ray's job supervisor gives a job's driver (its runtime_env as JSON)."""
    import json

    from fairsearch.io.storage import JOB_CONFIG_ENV

    runtime_env = {} if working_dir is None else {"working_dir": working_dir}
    return {JOB_CONFIG_ENV: json.dumps({"runtime_env": runtime_env, "metadata": {}})}


def test_a_storage_inside_a_ray_jobs_working_dir_copy_is_refused(tmp_path: Path) -> None:
    """`ray job submit --working-dir . -- fairsearch run spec.yaml` (no --storage) would write
    runs/ into Ray's copy of the working dir, deleted with the job: refused, naming the copy."""
    from fairsearch.io.storage import check_not_in_job_copy, job_working_copy

    copy = tmp_path / "runtime_resources" / "working_dir_files" / "_ray_pkg_0123abcd"
    copy.mkdir(parents=True)
    env = _job_env("gcs://_ray_pkg_0123abcd.zip")
    assert job_working_copy(env, copy) == copy
    for inside in ("runs", "./runs/nested", str(copy / "runs"), f"file://{copy}/runs", "."):
        with pytest.raises(ValueError, match=r"`--storage` .* lies inside this Ray job's temporary "
                                             r"copy of its working directory \(.*_ray_pkg_0123abcd\)"
                                             r", which Ray deletes when the job ends.*s3://"):
            check_not_in_job_copy(inside, environ=env, cwd=copy)
    for outside in (str(tmp_path / "shared"), "../../shared", "s3://bucket/runs",
                    f"file://{tmp_path}/bucket"):  # fmt: skip
        check_not_in_job_copy(outside, environ=env, cwd=copy)  # outside the copy: kept


@pytest.mark.parametrize("env", [{}, _job_env(None), _job_env("local:///srv/project"),
                                 {"RAY_JOB_CONFIG_JSON_ENV_VAR": "not json"}])
def test_no_job_copy_outside_a_job_or_with_a_working_dir_used_in_place(tmp_path: Path,
                                                                       env: dict) -> None:
    from fairsearch.io.storage import check_not_in_job_copy, job_working_copy

    assert job_working_copy(env, tmp_path) is None
    check_not_in_job_copy("runs", environ=env, cwd=tmp_path)


def test_run_and_search_refuse_the_job_copy_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from fairsearch.cli import main

    spec = tmp_path / "smoke_wrapper.yaml"
    spec.write_bytes((ROOT / "search_spaces" / "smoke_wrapper.yaml").read_bytes())
    monkeypatch.chdir(tmp_path)
    for key, value in _job_env("gcs://_ray_pkg_0123abcd.zip").items():
        monkeypatch.setenv(key, value)
    for command in ("run", "search"):
        assert main([command, str(spec)]) == 2
        assert "lies inside this Ray job's temporary copy" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
