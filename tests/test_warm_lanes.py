"""Warm lanes (``fairsearch up --warm-lanes``): processes started once with torch imported that a
pool of one-CPU lanes claims instead of starting Tune trials. Same results, same faults."""

from __future__ import annotations

import os
import threading
import time

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _warm(count: int) -> list[str]:
    """Start ``count`` hosts and wait until they have imported; their names."""
    import ray

    from fairsearch.executor import warm

    hosts = warm.spawn_hosts(count)
    ray.get([h.__ray_ready__.remote() for h in hosts], timeout=300)
    return sorted(warm._host_names())


def _end_all_hosts() -> None:
    import ray

    from fairsearch.executor import warm

    for name in warm._host_names():
        ray.kill(ray.get_actor(name, namespace=warm.NAMESPACE), no_restart=True)


@pytest.fixture
def no_hosts(ray_tests_importable):
    _end_all_hosts()
    yield ray_tests_importable
    _end_all_hosts()


def _run(pool, items, data):
    from fairsearch.executor.contract import ItemList

    got = {}
    stats = pool.run(ItemList(items, lambda item, r: got.update({item["key"]: dict(r)})), data,
                     stop=threading.Event())  # fmt: skip
    return got, stats


def _pids_of(names: list[str]) -> set[int]:
    import ray

    from fairsearch.executor import warm

    return {ray.get(ray.get_actor(n, namespace=warm.NAMESPACE).__ray_call__.remote(
        lambda self: os.getpid())) for n in names}  # fmt: skip


def test_a_pool_trains_on_warm_lanes_reserves_their_cpus_and_leaves_fresh_ones(no_hosts, tmp_path):
    import _lane_helpers
    import ray

    from fairsearch.executor import warm
    from fairsearch.executor.lanes import LanePool
    from fairsearch.executor.scaling import LaneScaling

    before = _warm(3)
    warm_pids = _pids_of(before)
    total = ray.cluster_resources()["CPU"]
    pool = LanePool(_lane_helpers.add_offset, lanes=2, scaling=LaneScaling(), storage=str(tmp_path),
                    name="warm")  # fmt: skip
    assert len(pool.hosts) == 2 and pool.thread is None  # no Tune run: every lane is warm
    assert ray.available_resources().get("CPU", 0.0) == total - 2  # their CPUs are reserved
    items = [{"key": i, "x": i} for i in range(8)]
    got, stats = _run(pool, items, {"offset": 10})
    assert {k: r["value"] for k, r in got.items()} == {i: i + 10 for i in range(8)}
    assert {r["pid"] for r in got.values()} <= warm_pids  # trained in the warm processes
    assert stats.told == 8 and set(stats.start_marks) == {0, 1}
    assert sorted(stats.lanes[i]["items"] for i in range(2)) and sum(s["items"] for s in stats.lanes) == 8
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = warm._host_names()
        if len(after) == 3 and ray.available_resources().get("CPU", 0.0) == total:
            break
        time.sleep(0.5)
    after = warm._host_names()
    assert len(after) == 3 and len(set(after) & set(before)) == 1  # 2 used ones replaced
    assert ray.available_resources().get("CPU", 0.0) == total  # the reservation is gone


def test_hosts_of_other_code_or_held_by_another_pool_are_not_claimed(no_hosts, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    import _lane_helpers

    from fairsearch.executor import warm
    from fairsearch.executor.lanes import LanePool
    from fairsearch.executor.scaling import LaneScaling

    _warm(1)
    first = LanePool(_lane_helpers.add_offset, lanes=1, scaling=LaneScaling(), storage=str(tmp_path),
                     name="first")  # fmt: skip
    assert len(first.hosts) == 1
    assert warm.claim_hosts(1, warm.new_token(), timeout_s=1.0) == []  # held by the first pool
    first.close()
    stale = _warm(1)
    monkeypatch.setattr(warm, "fingerprint", lambda: "other code")
    assert warm.claim_hosts(1, warm.new_token(), timeout_s=5.0) == []
    deadline = time.monotonic() + 30
    while set(stale) & set(warm._host_names()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not set(stale) & set(warm._host_names())  # the stale host was replaced
    assert warm._host_names()


@pytest.mark.parametrize(("deaths", "max_failures"), [(1, 1), (2, 1)])
def test_a_warm_lane_whose_process_dies_is_restarted_and_retries_its_item_then_fails_it(
        no_hosts, tmp_path, deaths, max_failures):  # fmt: skip
    import _lane_helpers

    from fairsearch.executor.lanes import LanePool
    from fairsearch.executor.scaling import LaneScaling

    _warm(2)
    pool = LanePool(_lane_helpers.die_on_zero, lanes=2, scaling=LaneScaling(max_failures=max_failures),
                    storage=str(tmp_path), name="faults")  # fmt: skip
    assert len(pool.hosts) == 2
    marker = tmp_path / "deaths.txt"
    items = [{"key": i, "x": i} for i in range(6)]
    got, stats = _run(pool, items, {"offset": 1, "marker": str(marker), "deaths": deaths})
    assert set(got) == set(range(6))  # nothing lost, nothing counted twice
    assert all(got[i]["value"] == i + 1 for i in range(1, 6))
    if deaths <= max_failures:  # retried on the restarted process
        assert got[0]["status"] == "completed" and got[0]["attempt"] == deaths, (got[0], stats.lane_errors)
    else:  # past its retries: failed as the lane's death; the lanes carried on
        assert got[0]["status"] == "failed" and "died" in got[0]["error"]
        assert got[0]["attempt"] == max_failures
    assert len(marker.read_text().splitlines()) == min(deaths, max_failures + 1)
