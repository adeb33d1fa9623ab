"""Shared fixtures: one quiet local Ray per test module (2 CPUs), started only by tests that ask."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


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
