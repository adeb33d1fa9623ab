"""Lanes started before their data is known (``LanePool``): the search starts them while the
command still checks its spec and data, then hands the data over, or closes them."""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _placed(pool, lanes: int, timeout_s: float = 180.0) -> set[int]:
    """Wait until Tune has placed ``lanes`` lanes of ``pool`` (they then wait for the data)."""
    placed: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while len(placed) < lanes and time.monotonic() < deadline:
        try:
            kind, lane, _ = pool.events.get(timeout=1.0)
        except Exception:  # noqa: BLE001 - queue.Empty
            continue
        if kind == "start":
            placed.add(lane)
    return placed


def test_lanes_placed_before_the_data_train_on_the_data_handed_over_later(
        ray_tests_importable, tmp_path):  # fmt: skip
    import _lane_helpers
    import ray

    from fairsearch.executor.contract import ItemList
    from fairsearch.executor.lanes import LanePool
    from fairsearch.executor.scaling import LaneScaling

    scratch = tmp_path / "tune"
    scratch.mkdir()
    pool = LanePool(_lane_helpers.add_offset, lanes=2, scaling=LaneScaling(), storage=str(scratch),
                    name="early", scratch=str(scratch))  # fmt: skip
    assert _placed(pool, 2) == {0, 1}
    assert ray.get(pool.dispatcher.state.remote())["started"] == []  # waiting for the data
    got = {}
    items = [{"key": i, "x": i} for i in range(6)]
    stats = pool.run(ItemList(items, lambda item, r: got.update({item["key"]: r})),
                     {"offset": 100}, stop=threading.Event())  # fmt: skip
    assert {k: r["value"] for k, r in got.items()} == {i: i + 100 for i in range(6)}
    assert stats.told == 6 and set(stats.start_marks) <= {0, 1} and stats.start_marks
    assert not scratch.exists()  # the pool's scratch folder for Tune is removed
    with pytest.raises(RuntimeError, match="runs once"):
        pool.run(ItemList([]), {}, stop=threading.Event())


def test_a_pool_closed_before_its_data_ends_its_lanes_and_frees_their_cpus(
        ray_tests_importable, tmp_path):  # fmt: skip
    import _lane_helpers
    import ray

    from fairsearch.executor.lanes import LanePool
    from fairsearch.executor.scaling import LaneScaling

    total = ray.cluster_resources()["CPU"]
    scratch = tmp_path / "tune"
    scratch.mkdir()
    pool = LanePool(_lane_helpers.add_offset, lanes=2, scaling=LaneScaling(), storage=str(scratch),
                    name="closed", scratch=str(scratch))  # fmt: skip
    assert _placed(pool, 2) == {0, 1}
    assert ray.available_resources().get("CPU", 0.0) < total  # the lanes hold their CPUs
    pool.close()
    assert not pool.thread.is_alive() and not scratch.exists()
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0.0) < total and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0.0) == total
    assert "grid" in pool.outcome  # Tune ended normally: the lanes returned, none was killed
