"""The in-process executor: the executor contract (:mod:`fairsearch.executor.contract`) run in
this process, without Ray.

A :class:`~fairsearch.executor.contract.Source` (the :class:`~fairsearch.search.recorder.Recorder`
of a search, or an ``ItemList`` of retrain items) is asked for one item at a time, the ``work``
function trains it here and the result goes back through ``tell``, with the fields a lane adds
(``key``, ``attempt``, ``lane``, ``node``, ``train_s``, ``overhead_s``). So a search run here has
the same study, recorder and tables as one on Ray lanes, and with one lane asks the sampler in the
same order: a seeded spec gives the same trials (``threads``: the torch threads a lane of the
spec's ``trial`` section uses, for the same arithmetic). ``search.executor: inprocess`` runs the search
stage on it (:func:`fairsearch.search.engine.search_inprocess` from Python). Ray stays the CLI's
default and the only way onto a cluster.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from fairsearch.executor.contract import LaneContext, Source, Work, train_item

__all__ = ["run_inprocess"]


def run_inprocess(source: Source, work: Work, data: Any, *, stop: threading.Event | None = None,
                  device: str = "cpu", threads: int | None = None) -> int:  # fmt: skip
    """Ask ``source`` for items until it has none (or ``stop`` is set), train each here with
    ``work(item, context)`` and tell its result; returns how many items were told. An exception
    of ``work`` becomes a ``failed`` result, as on a lane. ``threads``: torch's thread count
    while it runs (None: as it is)."""
    if threads is None:
        return _run(source, work, data, stop, device)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(source, work, data, stop, device)
    finally:
        torch.set_num_threads(before)


def _run(source: Source, work: Work, data: Any, stop: threading.Event | None, device: str) -> int:
    context = LaneContext(data=data, device=device)
    node, told, mark = socket.gethostname(), 0, time.perf_counter()
    while not source.finished() and not (stop is not None and stop.is_set()):
        item = source.ask(0)
        if item is None:
            break
        result, mark = train_item(work, item, context, node=node, node_id="local", since=mark)
        source.tell(0, result)
        source.flush()
        told += 1
    return told
