"""The executor contract, the same on Ray lanes and in this process: a :class:`Source` hands out
items one at a time, a :data:`Work` function trains each with a :class:`LaneContext`, and
:func:`train_item` turns what it returns (or raises) into the result the source is told.

No Ray here: :mod:`fairsearch.executor.lanes` runs the contract on Ray, and
:mod:`fairsearch.executor.inprocess` in this process.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Item", "ItemList", "LaneContext", "Source", "Work", "train_item"]

#: One piece of work: ``{"key": ..., "params": {...}, "attempt": int, ...}`` (plain, picklable).
Item = dict[str, Any]


@dataclass(frozen=True)
class LaneContext:
    """What a work function gets besides the item: the data and the lane's place in its Train run
    (an in-process run is one lane of one rank on this process's device)."""

    data: Any
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    prepare_module: Callable[[Any], Any] | None = None
    lane: int = 0


#: ``work(item, ctx) -> result dict``; runs on every rank, rank 0's result is kept. Exceptions
#: are caught by the lane and become ``{"status": "failed", "error": ...}``.
Work = Callable[[Item, LaneContext], dict[str, Any]]


class Source(Protocol):
    """What the driver loop needs from the owner of the work."""

    def ask(self, lane: int) -> Item | None:
        """The next item for ``lane`` (None: no more work for it)."""

    def tell(self, lane: int, result: Mapping[str, Any]) -> None:
        """Record one item's result (``result["key"]`` is the item's key)."""

    def fail(self, key: Any, reason: str) -> None:
        """The item ``key`` can no longer finish (its lane is gone)."""

    def finished(self) -> bool:
        """Nothing left to ask and nothing untold."""

    def flush(self) -> None:
        """Slow bookkeeping (tables, progress), called once the waiting lanes have their work."""


class ItemList:
    """A fixed list of items as a :class:`Source` (the retrain plan: (configuration, seed)).

    Each item is a dict with a unique ``key``; ``on_result(item, result)`` is called as each
    result comes in (a failed lane's item gets ``status: failed`` and the reason).
    """

    def __init__(self, items: list[Item],
                 on_result: Callable[[Item, Mapping[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.todo = list(items)
        self.pending: dict[Any, Item] = {}
        self.on_result = on_result

    def ask(self, lane: int) -> Item | None:
        if not self.todo:
            return None
        item = {**self.todo.pop(0), "attempt": 0}
        self.pending[item["key"]] = item
        return item

    def tell(self, lane: int, result: Mapping[str, Any]) -> None:
        item = self.pending.pop(result["key"], None)
        if item is not None and self.on_result is not None:
            self.on_result(item, result)

    def fail(self, key: Any, reason: str) -> None:
        self.tell(-1, {"key": key, "status": "failed", "error": reason})

    def finished(self) -> bool:
        return not self.todo and not self.pending

    def flush(self) -> None:
        return None


def train_item(work: Work, item: Item, context: LaneContext, *, node: str, node_id: str,
               since: float) -> tuple[dict[str, Any], float]:  # fmt: skip
    """``work(item, context)`` as a result for the source, and when it ended
    (``time.perf_counter()``). An exception becomes ``{"status": "failed", "error": ...}``: one
    bad item must not end a lane. The result gets the item's ``key`` and ``attempt``, the lane,
    its ``node`` and ``node_id``, ``train_s`` and ``overhead_s`` (the rest of the time since
    ``since``, the end of the lane's previous item)."""
    t0 = time.perf_counter()
    try:
        out = dict(work(item, context))
    except Exception as exc:  # noqa: BLE001 - one bad item must not end the lane
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        out = {"status": "failed", "error": tail[-2000:]}
    now = time.perf_counter()
    train_s = now - t0
    out.update(key=item["key"], attempt=item.get("attempt", 0), lane=context.lane, node=node,
               node_id=node_id, train_s=train_s, overhead_s=max(0.0, (now - since) - train_s))  # fmt: skip
    return out, now
