"""The audit's units as Ray tasks: the Ray part of the audit, kept apart from it.

:class:`RayExecutor` puts each representation's array and ``q`` in the object store once
(``ray.put``, kept for its later calls), submits one task per unit (representation x probe
kind x fold seed: :func:`fairsearch.analysis.audit.units.fit_unit`) holding only their
references, and yields
each unit as its task finishes (``ray.wait``), so the caller writes it at once. It runs on the
Ray this process is connected to (the run's local Ray, or a cluster joined with ``--address``
or ``RAY_ADDRESS``); it starts one (:func:`fairsearch.executor.ray_start.init_ray`) when there is none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from fairsearch.analysis.audit.units import Settings, Unit, fit_unit
from fairsearch.probes.ladder import CrossFit

__all__ = ["RayExecutor"]


def _task(Z: np.ndarray, codes: np.ndarray, k: int, unit: Unit, settings: Settings
          ) -> CrossFit:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    with threadpool_limits(1):  # one CPU per task, as Ray reserves it
        return fit_unit(Z, codes, k, unit, settings)


class RayExecutor:
    """Units as Ray tasks of ``num_cpus`` each (``num_gpus`` when the batched probes should get
    a GPU of their own; fractional GPUs are bookkeeping only)."""

    def __init__(self, *, address: str | None = None, num_cpus: float = 1.0,
                 num_gpus: float = 0.0) -> None:
        if num_cpus <= 0:
            raise ValueError(f"num_cpus must be > 0, got {num_cpus}")
        if num_gpus < 0:
            raise ValueError(f"num_gpus must be >= 0, got {num_gpus}")
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self._refs: dict[int, tuple[np.ndarray, object]] = {}  # id -> (array, its object ref)

    def _put(self, array: np.ndarray) -> object:
        """``ray.put`` once per array, however many calls of :meth:`run` use it."""
        import ray

        if id(array) not in self._refs:
            self._refs[id(array)] = (array, ray.put(array))
        return self._refs[id(array)][1]

    def run(self, arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int,
            units: Sequence[Unit], settings: Settings
            ) -> Iterator[tuple[Unit, CrossFit]]:
        if not units:
            return
        import ray

        from fairsearch.executor.ray_start import init_ray

        init_ray(self.address)
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus)(_task)
        needed = {u.representation for u in units}
        refs = {name: self._put(arrays[name]) for name in needed}  # once each, not per task
        codes_ref = self._put(codes)
        pending = {task.remote(refs[u.representation], codes_ref, k, u, settings): u
                   for u in units}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(done[0])
                yield unit, ray.get(done[0])
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
