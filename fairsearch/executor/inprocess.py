"""The in-process executor: the lanes' contract run in this process, without Ray.

A :class:`~fairsearch.executor.lanes.Source` (the :class:`~fairsearch.search.recorder.Recorder` of a
search, or an ``ItemList`` of retrain items) is asked for one item at a time, the ``work``
function trains it here and the result goes back through ``tell``, with the fields a lane adds
(``key``, ``attempt``, ``lane``, ``node``, ``train_s``, ``overhead_s``). So a search run here has
the same study, recorder and tables as one on Ray lanes, and with one lane asks the sampler in the
same order: a seeded spec gives the same trials. ``search.executor: local`` runs the search stage
on it (:func:`fairsearch.search.engine.search_local` from Python). Ray stays the CLI's default
and the only way onto a cluster.
"""

from __future__ import annotations

import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LocalContext", "run_local"]


@dataclass(frozen=True)
class LocalContext:
    """What ``work`` gets beside its item: the data, one rank, this process's device."""

    data: Any
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    prepare_module: Callable[[Any], Any] | None = None
    lane: int = 0


def run_local(source: Any, work: Callable[[Mapping[str, Any], Any], Mapping[str, Any]],
              data: Any, *, stop: threading.Event | None = None, device: str = "cpu") -> int:
    """Ask ``source`` for items until it has none (or ``stop`` is set), train each here with
    ``work(item, context)`` and tell its result; returns how many items were told. An exception
    of ``work`` becomes a ``failed`` result, as on a lane."""
    context = LocalContext(data=data, device=device)
    node, told, mark = socket.gethostname(), 0, time.perf_counter()
    while not source.finished() and not (stop is not None and stop.is_set()):
        item = source.ask(0)
        if item is None:
            break
        t0 = time.perf_counter()
        try:
            out = dict(work(item, context))
        except Exception as exc:  # noqa: BLE001 - one bad item must not end the search
            tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            out = {"status": "failed", "error": tail[-2000:]}
        now = time.perf_counter()
        out.update(key=item["key"], attempt=item.get("attempt", 0), lane=0, node=node,
                   node_id="local", train_s=now - t0,
                   overhead_s=max(0.0, (now - mark) - (now - t0)))  # fmt: skip
        mark = now
        source.tell(0, out)
        source.flush()
        told += 1
    return told

