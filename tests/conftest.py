"""Shared fixtures: one quiet local Ray per test module (2 CPUs), started only by tests that ask."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Derived data built by a test (fairsearch.data.derived) goes to a folder of this session, not
# to the user's ~/.cache/fairsearch; subprocesses inherit it.
os.environ.setdefault("FAIRSEARCH_CACHE", tempfile.mkdtemp(prefix="fairsearch-cache-"))
# The Ray tests run on two workers (`make test-all`): each worker's `fairsearch up` head is its
# own (the head's record lives in FAIRSEARCH_HOME), so no test joins the other worker's head.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("FAIRSEARCH_HOME", tempfile.mkdtemp(prefix="fairsearch-home-"))


def _fresh_local_ray() -> Iterator[Any]:
    """A new local Ray (any earlier one in this process stopped), configured as the search
    configures it; stopped after the module."""
    import ray

    from fairsearch.executor.ray_start import init_ray

    if ray.is_initialized():
        ray.shutdown()
    os.environ.pop("RAY_ADDRESS", None)
    init_ray(None)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with 2 CPUs for the module, configured as the search configures it."""
    yield from _fresh_local_ray()


@pytest.fixture(scope="module")
def ray_tests_importable():
    """A local Ray whose workers can import the helper modules of tests/ (model factories and
    work functions of ``_lane_helpers`` and ``_stall_helpers``)."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(TESTS), old) if p)
    sys.path.insert(0, str(TESTS))
    yield from _fresh_local_ray()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


# --- Ray-free guard --------------------------------------------------------------------------
# `make test` runs `-m "not slow and not ray"` and must start no Ray: a test that starts one
# (in this process, or in a subprocess such as `fairsearch run`) without the `ray` marker fails.
# Every unmarked test gets its own short RAY_TMPDIR (Ray writes `<RAY_TMPDIR>/ray/session_*`
# when a node starts, in any process that inherits the environment); the directory must still
# be empty afterwards, and Ray must not be initialised in this process.

def _ray_initialized() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and getattr(ray, "is_initialized", lambda: False)())


@pytest.fixture(autouse=True)
def _ray_free_unless_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("ray") is not None:
        yield
        return
    before = _ray_initialized()
    ray_tmp = tempfile.mkdtemp(prefix="rf", dir="/tmp" if os.path.isdir("/tmp") else None)
    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = ray_tmp
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old
        started_here = not before and _ray_initialized()
        made = sorted(str(p.relative_to(ray_tmp)) for p in Path(ray_tmp).rglob("*"))[:6]
        started_elsewhere = bool(made)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    if started_here or started_elsewhere:
        where = "in this process" if started_here else "in a subprocess"
        pytest.fail(f"{request.node.nodeid} started Ray ({where}) but is not marked "
                    "`@pytest.mark.ray`: mark it (and `slow` if it takes seconds), or keep "
                    "it Ray-free" + (f" (it wrote {made} under RAY_TMPDIR)" if made else ""),
                    pytrace=False)


# --- Run folders made by the real stages (tests/factory.py) ----------------------------------

@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The run folder of ``factory.SPEC`` after each stage (search, pareto, retrain, audit),
    built once per session: under pytest-xdist the workers share one build (the first builds
    it, holding a lock). Read-only: copy one with the ``tiny_run`` fixture."""
    import factory
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    root = shared / "tiny-runs"
    with FileLock(str(root) + ".lock"):
        if not (root / "built").is_file():
            shutil.rmtree(root, ignore_errors=True)
            factory.build_runs(root)
            (root / "built").write_text("")
    return {stage: root / stage for stage in factory.STAGES}


@pytest.fixture()
def tiny_run(tiny_runs: dict[str, Path], tmp_path: Path):
    """``tiny_run(stage)``: a writable copy of the tiny run folder after ``stage``."""
    import factory

    def copy(stage: str = "audit") -> Path:
        dest, n = tmp_path / stage, 1
        while dest.exists():  # a second copy in the same test
            n += 1
            dest = tmp_path / f"{stage}-{n}"
        return factory.copy_run(tiny_runs[stage], dest)

    return copy
