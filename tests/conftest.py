"""Shared fixtures: one quiet local Ray per test module (2 CPUs), started only by tests that ask."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with 2 CPUs for the module, configured as the search configures it."""
    import ray

    from fairsearch.search.engine import init_ray

    if ray.is_initialized():
        ray.shutdown()
    import os

    os.environ.pop("RAY_ADDRESS", None)
    init_ray(None)
    yield ray
    ray.shutdown()
