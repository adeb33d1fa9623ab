"""The mailbox between the driver (which owns the work: an Optuna study, a retrain plan) and the
lanes (long-lived Ray Train runs that train one item after another).

A lane calls ``next(lane, previous_result)``: one RPC per item that hands back the previous
item's result and waits for the next one (``None``: no more work, the lane ends). The driver
long-polls ``poll()`` for results and waiting lanes, tells the results at once, asks for work
only for the lanes that wait and sends it with ``deliver()``. The dispatcher owns no sampling
state: it keeps only each lane's item in flight, so that a lane restarted after its worker died
gets the same item again (``attempt + 1``), or, past ``max_retries``, a failed result is
recorded for the item and the lane gets new work.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import ray

from fairsearch.executor.contract import Item

__all__ = ["Dispatcher", "LANE_DIED", "discard_dispatcher", "prepare_dispatcher",
           "take_dispatcher"]

LANE_DIED = "the lane's process died while training this configuration"


@ray.remote(num_cpus=0, max_restarts=0, max_concurrency=1000)
class Dispatcher:
    """Async actor; see the module doc. ``max_retries``: re-deliveries of an item whose lane
    died (the spec's ``trial.max_failures``)."""

    def __init__(self, max_retries: int = 0) -> None:
        self.max_retries = max_retries
        self.waiting: dict[int, asyncio.Future[Item | None]] = {}
        self.in_flight: dict[int, Item] = {}
        self.requests: list[int] = []
        self.results: list[tuple[int, dict[str, Any]]] = []
        self.closed = False
        self.event = asyncio.Event()
        self.started: set[int] = set()  # lanes that pulled at least once
        self.restarts = 0
        self.hello: dict[int, dict[str, float]] = {}  # each lane's start-up marks (epoch s)
        self.data_refs: list[Any] | None = None  # [ObjectRef of the lanes' data], once known
        self.data_known = asyncio.Event()
        self.closing = asyncio.Event()

    async def configure(self, max_retries: int) -> None:
        """Set ``max_retries`` of a dispatcher started before its pool knew it. The pool calls
        it before :meth:`set_data`, and a lane pulls only once :meth:`data` has returned."""
        self.max_retries = max_retries

    async def next(self, lane: int, result: dict[str, Any] | None = None,
                   hello: dict[str, float] | None = None) -> Item | None:  # fmt: skip
        """A lane's pull: ``result`` of its previous item (None on its first pull). ``hello``,
        on a lane's first pull: when its trainable and its Train loop started (epoch seconds)."""
        self.started.add(lane)
        if hello is not None and lane not in self.hello:
            self.hello[lane] = {**hello, "pulled_at": time.time()}
        if result is not None:
            self.in_flight.pop(lane, None)
            self.results.append((lane, result))
            self.event.set()
        elif lane in self.in_flight:  # the lane restarted while training this item
            self.restarts += 1
            item = self.in_flight[lane]
            if item["attempt"] < self.max_retries and not self.closed:
                item = {**item, "attempt": item["attempt"] + 1}
                self.in_flight[lane] = item
                return item
            del self.in_flight[lane]
            self.results.append((lane, {"key": item["key"], "status": "failed",
                                        "attempt": item["attempt"],
                                        "error": f"{LANE_DIED} ({item['attempt'] + 1} attempts)"}))
            self.event.set()
        if self.closed:
            return None
        future: asyncio.Future[Item | None] = asyncio.get_running_loop().create_future()
        old = self.waiting.get(lane)
        self.waiting[lane] = future
        if old is not None:  # restarted while its request was pending: the request stands
            old.cancel()
        else:
            self.requests.append(lane)
            self.event.set()
        try:
            return await future
        except asyncio.CancelledError:
            return None

    async def poll(self, timeout: float) -> tuple[list[tuple[int, dict[str, Any]]], list[int]]:
        """The driver's long poll: (results, lanes waiting for work) since the last poll."""
        if not (self.results or self.requests):
            try:
                await asyncio.wait_for(self.event.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        self.event.clear()
        results, requests = self.results, self.requests
        self.results, self.requests = [], []
        return results, requests

    async def deliver(self, assignments: dict[int, Item | None]) -> None:
        """Hand each waiting lane its item (None: the lane ends)."""
        for lane, item in assignments.items():
            if item is not None:
                self.in_flight[lane] = item
            future = self.waiting.pop(lane, None)
            if future is not None and not future.done():
                future.set_result(item)

    async def drop(self, lane: int) -> Item | None:
        """The lane is gone for good: forget it; returns the item it had in flight."""
        future = self.waiting.pop(lane, None)
        if future is not None and not future.done():
            future.set_result(None)
        return self.in_flight.pop(lane, None)

    async def set_data(self, refs: list[Any]) -> None:
        """The lanes' data (``[ray.put(data)]``: a list, so Ray hands the reference on unresolved);
        lanes that started before it was known wait for it in :meth:`data`."""
        self.data_refs = refs
        self.data_known.set()

    async def data(self) -> list[Any] | None:
        """``[ObjectRef]`` of the lanes' data once the driver has set it; None once closed."""
        if self.data_refs is None and not self.closed:
            waits = [asyncio.ensure_future(self.data_known.wait()),
                     asyncio.ensure_future(self.closing.wait())]  # fmt: skip
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        return self.data_refs

    async def start_marks(self) -> dict[int, dict[str, float]]:
        """Each lane's first ``hello`` with the time of that pull: where its start-up went."""
        return dict(self.hello)

    async def state(self) -> dict[str, Any]:
        """For the stall message: lanes started, waiting, in flight; restarts so far."""
        return {"started": sorted(self.started), "waiting": sorted(self.waiting),
                "in_flight": sorted(self.in_flight), "restarts": self.restarts}

    async def close(self) -> dict[int, Item]:
        """No more work: every waiting and future pull gets None; returns the items in flight."""
        self.closed = True
        self.closing.set()
        for future in self.waiting.values():
            if not future.done():
                future.set_result(None)
        self.waiting.clear()
        return dict(self.in_flight)


_SPARE: list[Any] = []  # a dispatcher started ahead of the pool that will use it
_SPARE_LOCK = threading.Lock()


def _new_dispatcher() -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()  # beside the driver that long-polls it
    return Dispatcher.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()


def prepare_dispatcher() -> None:
    """Start the next pool's dispatcher now: Ray gives the actor a fresh process (about a second
    of start and imports), which then overlaps the command's own imports and checks."""
    with _SPARE_LOCK:
        if not _SPARE:
            _SPARE.append(_new_dispatcher())


def take_dispatcher(max_retries: int) -> Any:
    """A dispatcher for one pool: the one :func:`prepare_dispatcher` started, else a new one."""
    with _SPARE_LOCK:
        handle = _SPARE.pop() if _SPARE else _new_dispatcher()
    handle.configure.remote(max_retries)
    return handle


def discard_dispatcher() -> None:
    """End a dispatcher started ahead that no pool took."""
    with _SPARE_LOCK:
        spare = list(_SPARE)
        _SPARE.clear()
    for handle in spare:
        with contextlib.suppress(Exception):  # Ray is already down: the actor went with it
            ray.kill(handle)
