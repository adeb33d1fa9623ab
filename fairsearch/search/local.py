"""The in-process executor: the lanes' contract run in this process, without Ray.

A :class:`~fairsearch.executor.lanes.Source` (the :class:`~fairsearch.search.recorder.Recorder` of a
search, or an ``ItemList`` of retrain items) is asked for one item at a time, the ``work``
function trains it here and the result goes back through ``tell``, with the fields a lane adds
(``key``, ``attempt``, ``lane``, ``node``, ``train_s``, ``overhead_s``). So a search run here has
the same study, recorder and tables as one on Ray lanes, and with one lane asks the sampler in the
same order: a seeded spec gives the same trials. :func:`search_local` is the search stage on it.
Ray stays the CLI's default and the only way onto a cluster.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LocalContext", "run_local", "search_local"]


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


def search_local(spec: Any, *, storage: str | Path = "runs", quiet: bool = True,
                 stop: threading.Event | None = None) -> Path:
    """The search stage of ``spec`` in this process (one configuration at a time); returns the
    new run folder, with the same ``study.journal``, ``trials.parquet`` and ``history.parquet``
    as :func:`fairsearch.search.engine.run_search` writes."""
    from datetime import datetime

    import optuna

    from fairsearch.io.storage import new_run
    from fairsearch.search.engine import _load_data, hardening
    from fairsearch.search.progress import Progress
    from fairsearch.search.recorder import Recorder, open_study, write_spec
    from fairsearch.search.trial import train_configuration

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run = new_run(storage, f"{spec.name}-{stamp}")
    write_spec(spec, run.local / "spec.yaml")
    with hardening(spec, run, resume=False, address=None):
        study = open_study(spec, run.local, resume=False)
        progress = Progress(spec.search.trials, quiet=quiet)

        def show(rec: Any, final: bool = False) -> None:
            progress.update(rec.done(), len(rec.pending), rec.counts["failed"],
                            rec.counts["diverged"], rec.front_size, final=final)  # fmt: skip
            run.sync(force=final)

        recorder = Recorder(study, spec, run.local, on_change=show, background=False)
        recorder.write_tables()
        settings = {"model": spec.model, "model_args": dict(spec.model_args),
                    "epochs": spec.trial.epochs, "batch_size": spec.trial.batch_size,
                    "split_seed": spec.search.seed}  # fmt: skip
        try:
            run_local(recorder, functools.partial(train_configuration, settings=settings),
                      _load_data(spec), stop=stop)  # fmt: skip
        finally:
            if stop is not None and stop.is_set():
                recorder.interrupt_pending()
            recorder.close()
            show(recorder, final=True)
    return run.local
