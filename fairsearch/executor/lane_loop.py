"""The lane side of :mod:`fairsearch.executor.lanes`: what runs in a lane's Ray processes.

A lane is one Tune function trainable (:func:`lane_trainable`) holding ONE ``TorchTrainer`` for
its whole life; its Train function (:func:`lane_loop`, also run by the warm lanes of
:mod:`fairsearch.executor.warm`) pulls items from the dispatcher until it has none. With one CPU
worker the item trains in the trainable's own process (Train's local mode); with a worker group,
rank 0 pulls and broadcasts each item to every rank.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from fairsearch.executor.contract import LaneContext, train_item
from fairsearch.executor.scaling import LaneScaling

__all__ = ["lane_loop", "lane_trainable"]


def _place(cfg: dict[str, Any]) -> tuple[int, int, str, Any]:
    """(rank, world size, device, ``prepare_model``) of this process in the lane's Train run."""
    if cfg["local"]:  # ray.train.get_context()/report raise in local mode under Tune
        return 0, 1, "cpu", None
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = str(ray.train.torch.get_device())
    prepare = ray.train.torch.prepare_model if world > 1 or device != "cpu" else None
    return rank, world, device, prepare


def lane_loop(cfg: dict[str, Any]) -> dict[str, Any]:
    """The Train function of one lane (local mode, or every worker of its group): trains the
    dispatcher's items until it hands out none; returns the lane's summary."""
    loop_at = time.time()
    import ray
    import torch

    torch.set_num_threads(int(cfg["threads"]))
    rank, world, device, prepare = _place(cfg)
    lane, dispatcher, work = cfg["lane"], cfg["dispatcher"], cfg["work"]
    summary = {"lane": lane, "items": 0, "lane_s": 0.0, "train_s": 0.0}
    refs = ray.get(dispatcher.data.remote())  # waits while the driver still checks its data
    if refs is None:  # closed before the data was known (the checks failed, or a signal)
        return {**summary, "threads": torch.get_num_threads(), "world_size": world}
    context = LaneContext(data=ray.get(refs[0]), rank=rank, world_size=world, device=device,
                          prepare_module=prepare, lane=lane)  # fmt: skip
    node, node_id = socket.gethostname(), ray.get_runtime_context().get_node_id()
    result: dict[str, Any] | None = None
    started = mark = time.perf_counter()
    hello: dict[str, float] | None = {"trainable_at": cfg.get("trainable_at", loop_at),
                                      "loop_at": loop_at, "ready_at": time.time()}  # fmt: skip
    if world > 1:
        from ray.train.collective import broadcast_from_rank_zero
    while True:
        item = ray.get(dispatcher.next.remote(lane, result, hello)) if rank == 0 else None
        hello = None
        if world > 1:
            item = broadcast_from_rank_zero(item)
        if item is None:
            break
        result, mark = train_item(work, item, context, node=node, node_id=node_id, since=mark)
        summary["items"] += 1
        summary["train_s"] += result["train_s"]
    return {**summary, "lane_s": time.perf_counter() - started, "threads": torch.get_num_threads(),
            "world_size": world}


def lane_trainable(config: dict[str, Any], setup: dict[str, Any]) -> None:
    """Tune function trainable: one lane = one TorchTrainer for the lane's whole life."""
    entered = time.time()
    import ray
    import ray.train
    import ray.tune
    from ray.train.torch import TorchTrainer

    scaling: LaneScaling = setup["scaling"]
    loop = {"dispatcher": setup["dispatcher"], "work": setup["work"], "lane": config["lane"],
            "threads": scaling.threads, "local": scaling.local, "trainable_at": entered}  # fmt: skip
    if scaling.local:
        scaling_config = ray.train.ScalingConfig(num_workers=0)
    else:
        scaling_config = ray.train.ScalingConfig(
            num_workers=scaling.workers, use_gpu=scaling.gpus_per_worker > 0,
            resources_per_worker=scaling.worker_resources())  # fmt: skip
    trainer = TorchTrainer(
        lane_loop, train_loop_config=loop, scaling_config=scaling_config,
        run_config=ray.train.RunConfig(
            name=f"{setup['name']}-lane{config['lane']}", storage_path=setup["storage"],
            failure_config=ray.train.FailureConfig(max_failures=scaling.max_failures)),
    )  # fmt: skip
    result = trainer.fit()
    ray.tune.report(dict(result.return_value or {}))
