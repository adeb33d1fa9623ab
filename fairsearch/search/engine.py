"""The search stage: Optuna samples, Ray Tune schedules, Ray Train trains.

Design (docs/schemas.md has the tables):

* Optuna does all the sampling, on a persistent SQLite study (``study.db``) driven by ask/tell
  from this process (:class:`fairsearch.search.recorder.Recorder`); Ray Tune's ``Searcher`` interface is
  only the hook through which Tune asks for work and hands back results.
* One Tune trial is one Ray Train run (a ``TorchTrainer`` launched inside a Tune *function
  trainable*, the Train V2 way) with the spec's ``ScalingConfig``. A Train run trains
  ``configs_per_run`` Optuna configurations one after another and reports each one as soon as it
  is done (``ray.train.report`` -> ``TuneReportCallback`` -> ``Searcher.on_trial_result`` ->
  Optuna ``tell``). Starting a Train run costs seconds (worker actors, process group, polling);
  packing amortises that over several small configurations, while ``configs_per_run: 1`` keeps
  one configuration per Train run for big multi-worker trials. ``auto`` packs single-worker
  trials (``ceil(trials / max_concurrent)``, at most 16 a run) and never multi-worker ones.
* Failures: a diverged or crashed configuration is caught in the worker and reported with its
  reason; a Train run that dies is retried by Ray Train (``trial.max_failures``) and, when it
  still fails, its unreported configurations are told to Optuna as failed. A non-finite
  objective is told as failed. No Optuna trial is left RUNNING, the search goes on.
* Resume: the study is the source of truth. ``fairsearch resume RUN_DIR`` tells trials left
  RUNNING by a killed driver as failed (status ``interrupted``), re-enqueues their
  configurations, and runs only the remaining budget; the sampler continues from the study.

Ray is configured quietly: ``log_to_driver=False``, Tune ``verbose=0``, no Tune result loggers,
and ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=0.1`` unless already set (the Train controller polls its
workers at this interval and every ``report`` waits for the next poll; Ray's default is 2 s).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import socket
import sys
import time
import traceback
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from fairsearch.io.storage import RunStorage, new_run, open_run
from fairsearch.search.progress import Progress
from fairsearch.search.recorder import Recorder, open_study, write_spec
from fairsearch.spec.schema import Spec, load_spec, metrics_for

__all__ = ["configure_resume", "configure_search", "main_resume", "main_search", "run_search"]

#: Environment the search sets (unless already set) before Ray starts; see the module doc.
RAY_ENV = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_MAX_PENDING_TRIALS_PG": "1",
}
MAX_PACK = 16
_LOG = logging.getLogger("fairsearch")


def configs_per_run(spec: Spec, remaining: int, *, joined_cluster: bool = False) -> int:
    """How many configurations one Train run trains (see the module doc).

    ``auto`` packs only on a Ray that this process started itself: on a joined multi-node
    cluster, packed runs were seen to stop after their first configuration (docs/cluster.md).
    """
    if spec.trial.workers > 1 or joined_cluster:
        return 1
    return max(1, min(MAX_PACK, math.ceil(remaining / spec.search.max_concurrent)))


# ----------------------------------------------------------------------------- Ray side
def _train_worker(cfg: dict[str, Any]) -> None:
    """Runs on every Ray Train worker: train each configuration, report each one."""
    worker_started = time.time()
    import ray
    import ray.train
    import torch

    from fairsearch.families import TrialSettings, get_family, train_and_evaluate
    from fairsearch.nets import DivergenceError

    torch.set_num_threads(max(1, int(cfg["cpus_per_worker"])))
    data = ray.get(cfg["data"][0])
    ctx = ray.train.get_context()
    world = ctx.get_world_size()
    prepare = None
    device = "cpu"
    if cfg["gpus_per_worker"] > 0 or world > 1:
        import ray.train.torch

        device = str(ray.train.torch.get_device())
        prepare = ray.train.torch.prepare_model
    settings = TrialSettings(
        epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=cfg["seed"], device=device,
        rank=ctx.get_world_rank(), world_size=world, prepare_module=prepare,
        model=cfg["model_args"],
    )  # fmt: skip
    family = get_family(cfg["model"])
    node = socket.gethostname()
    timing = {"run_started_at": cfg["run_started_at"], "worker_started_at": worker_started}
    for item in cfg["configs"]:
        history: list[dict[str, float]] = []
        started = time.time()
        report = {"number": item["number"], "seed": cfg["seed"], "node": node,
                  "started_at": started, "timing": timing}  # fmt: skip
        try:
            metrics = train_and_evaluate(family, dict(item["params"]), data, settings,
                                         history.append)  # fmt: skip
            report.update(status="completed", metrics=metrics)
        except DivergenceError as exc:
            report.update(status="diverged", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad configuration must not end the run
            tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            report.update(status="failed", error=tail)
        report.update(ended_at=time.time(), history=history)
        ray.train.report({"fairsearch": json.dumps(report, default=float)})


def _tune_run(config: dict[str, Any]) -> None:
    """Tune function trainable: one Ray Train run over ``config["train"]["configs"]``."""
    import ray.train
    import ray.tune
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    cfg = {**config["train"], "run_started_at": time.time()}
    gpus = float(cfg["gpus_per_worker"])
    resources = {"CPU": float(cfg["cpus_per_worker"])}
    if gpus > 0:
        resources["GPU"] = gpus
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config=cfg,
        scaling_config=ray.train.ScalingConfig(
            num_workers=int(cfg["workers"]), use_gpu=gpus > 0, resources_per_worker=resources
        ),
        run_config=ray.train.RunConfig(
            name=f"train-{config['run_id']}",
            storage_path=cfg["storage"],
            callbacks=[TuneReportCallback()],
            failure_config=ray.train.FailureConfig(max_failures=int(cfg["max_failures"])),
        ),
    )
    try:
        trainer.fit()
    except Exception as exc:  # noqa: BLE001 - reported, so its configurations are told failed
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        ray.tune.report({"fairsearch_error": text[-2000:]})


def _make_searcher(recorder: Recorder, budget: int, per_run: int, base: dict[str, Any]):
    from ray.tune.search import Searcher

    class OptunaAskTell(Searcher):
        """Tune's hook into the Recorder: suggest = ask ``per_run`` configs, results = tell.

        The Optuna study is the search's state: Tune pickles its searcher (``tuner.pkl``,
        searcher checkpoints), so the live Recorder is left out of the pickle.
        """

        def __init__(self, recorder: Recorder, budget: int, per_run: int,
                     base: dict[str, Any]) -> None:  # fmt: skip
            super().__init__(metric=None, mode=None)
            self.recorder: Recorder | None = recorder
            self.budget, self.per_run, self.base = budget, per_run, base
            self.asked = 0

        def __getstate__(self) -> dict[str, Any]:
            return {k: v for k, v in self.__dict__.items() if k not in ("recorder", "base")}

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state, recorder=None, base={})

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            if self.asked >= self.budget:
                return self.FINISHED
            k = min(self.per_run, self.budget - self.asked)
            self.asked += k
            configs = self.recorder.ask(k, trial_id)
            return {"run_id": trial_id, "train": {**self.base, "configs": configs}}

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if "fairsearch" in result:
                self.recorder.record(json.loads(result["fairsearch"]))
            elif "fairsearch_error" in result:
                self.recorder.fail_unreported(trial_id, result["fairsearch_error"])

        def on_trial_complete(self, trial_id: str, result: dict | None = None,
                              error: bool = False) -> None:  # fmt: skip
            reason = ("the Ray trial failed before reporting this configuration" if error
                      else "the Ray Train run ended without reporting this configuration")
            self.recorder.fail_unreported(trial_id, reason)

        def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
            return None

        def restore_from_dir(self, checkpoint_dir: str) -> None:
            return None

    return OptunaAskTell(recorder, budget, per_run, base)


_STARTED_LOCAL_RAY = False


def _joined_cluster() -> bool:
    """True when this process joined a Ray it did not start (a cluster, or a job's driver)."""
    return not _STARTED_LOCAL_RAY


def init_ray(address: str | None = None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``), else start a quiet local Ray with all CPUs."""
    import ray

    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    env_vars = {k: os.environ[k] for k in RAY_ENV}
    common = dict(
        include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
        configure_logging=True, runtime_env={"env_vars": env_vars},
    )  # fmt: skip
    if address:
        ray.init(address=address, **common)
    else:
        global _STARTED_LOCAL_RAY
        ray.init(address="local", num_cpus=os.cpu_count(), **common)
        _STARTED_LOCAL_RAY = True
    for name in ("ray", "ray.tune", "ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run(spec: Spec, ray_storage: str, recorder: Recorder, progress: Progress) -> None:
    import ray
    import ray.tune

    from fairsearch.data import load_from_spec

    data = load_from_spec(spec.data)
    task = getattr(data, "task", None)
    allowed = metrics_for(spec.model, task)
    for i, o in enumerate(spec.objectives):
        if o.metric not in allowed:
            raise ValueError(
                f"`objectives[{i}].metric` must be one of {', '.join(allowed)} for a {task} "
                f"dataset, but got {o.metric!r}"
            )
    budget = spec.search.trials - recorder.done()
    if budget <= 0:
        return
    per_run = configs_per_run(spec, budget, joined_cluster=_joined_cluster())
    base = {
        "model": spec.model, "model_args": dict(spec.model_args), "data": [ray.put(data)], "epochs": spec.trial.epochs,
        "batch_size": spec.trial.batch_size, "seed": spec.search.seed,
        "workers": spec.trial.workers, "gpus_per_worker": spec.trial.gpus_per_worker,
        "cpus_per_worker": spec.trial.cpus_per_worker, "max_failures": spec.trial.max_failures,
        "storage": ray_storage,
    }  # fmt: skip
    searcher = _make_searcher(recorder, budget, per_run, base)
    tuner = ray.tune.Tuner(
        ray.tune.with_resources(_tune_run, {"memory": 1}),
        tune_config=ray.tune.TuneConfig(
            search_alg=searcher,
            num_samples=math.ceil(budget / per_run),
            max_concurrent_trials=spec.search.max_concurrent,
            reuse_actors=False,
        ),
        run_config=ray.tune.RunConfig(
            name="tune",
            storage_path=ray_storage,
            verbose=0,
            failure_config=ray.tune.FailureConfig(max_failures=0),
        ),
    )
    # Tune prints its own experiment table on stdout; the search's progress line is on stderr and
    # its results are the run folder's tables, so Tune's stdout is dropped.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        tuner.fit()


def run_search(
    spec: Spec,
    *,
    storage: str | Path = "runs",
    address: str | None = None,
    quiet: bool = False,
    run_dir: Path | RunStorage | None = None,
    resume: bool = False,
) -> Path:
    """Run (or, with ``resume``, finish) the search of ``spec``; returns the (local) run folder.

    ``storage`` is a path or a URI (see :mod:`fairsearch.io.storage`); for a URI the returned
    folder is the local staging copy, uploaded as the search goes and at its end.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if run_dir is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run = new_run(storage, f"{spec.name}-{stamp}")
        write_spec(spec, run.local / "spec.yaml")
    else:
        run = run_dir if isinstance(run_dir, RunStorage) else open_run(run_dir)
    run_dir = run.local
    study = open_study(spec, run_dir, resume=resume)
    progress = Progress(spec.search.trials, quiet=quiet)

    def show(rec: Recorder, final: bool = False) -> None:
        progress.update(rec.done(), len(rec.pending), rec.counts["failed"],
                        rec.counts["diverged"], rec.front_size, final=final)  # fmt: skip
        run.sync(force=final)

    recorder = Recorder(study, spec, run_dir, on_change=show)
    if resume:
        recorder.recover()
    recorder.write_tables()
    init_ray(address)
    try:
        _run(spec, run.ray_storage, recorder, progress)
    finally:
        recorder.fail_unreported(None, "the search ended before this configuration reported")
        recorder.write_tables()
        show(recorder, final=True)
    return run_dir


# ----------------------------------------------------------------------------- CLI
def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no live progress line")  # fmt: skip


def configure_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="run spec (YAML)")
    parser.add_argument("--storage", default="runs",
                        help="parent of run folders: a path (shared by all nodes on a cluster) "
                             "or a URI such as s3://bucket/prefix")  # fmt: skip
    _common(parser)


def configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder of an interrupted search")
    _common(parser)


def main_search(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    run_dir = run_search(spec, storage=args.storage, address=args.address, quiet=args.quiet)
    print(open_run(run_dir).location)
    return 0


def main_resume(args: argparse.Namespace) -> int:
    run = open_run(args.run_dir)  # a URI is copied to a local staging folder
    if not (run.local / "spec.yaml").is_file() or not (run.local / "study.db").is_file():
        raise ValueError(
            f"RUN_DIR must be a run folder with spec.yaml and study.db, but got {args.run_dir!r}"
        )
    spec = load_spec(run.local / "spec.yaml")
    run_search(spec, address=args.address, quiet=args.quiet, run_dir=run, resume=True)
    print(run.location)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from fairsearch.cli import main

    sys.exit(main(["search", *sys.argv[1:]]))
