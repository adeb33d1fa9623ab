"""Autoscaling and node loss, simulated: a lane search job on jobs/fake_cluster.yaml.

A private head with no CPUs (so every lane needs a worker node) runs the fake autoscaler; a
wrapper search whose ``max_concurrent`` lanes need several nodes is submitted as a Ray job (the
env vars of ``jobs/runtime_env.yaml``, but no ``working_dir``: see the note in :func:`main`).
A lane is one Ray Tune trial whose Ray Train run lives for the whole search and trains one
configuration after another; with 1 CPU worker it runs in Train's local mode, in the Tune trial's
process, on a worker node. While the job runs this script watches the nodes (state API) and
trials.parquet; after the first configuration completes it SIGTERMs the raylet of the worker
node whose lane reported it (that lane is then training its next configuration), waits for the
job and prints:

* worker nodes started by the autoscaler, by type;
* configurations per node and each lane's nodes in order (trials.parquet's ``node_id``: the
  Ray node id; ``node`` is the host name, which fake nodes share);
* what happened on node loss: the killed lane restarted on another node and got its in-flight
  configuration again (``attempt`` 1), or the configuration was recorded failed with the
  reason; the configurations completed before the kill are unchanged; no configuration is lost
  or counted twice and the totals equal ``search.trials``.

    python benchmarks/bench_autoscaling.py [--smoke-test] [--trials 6] [--concurrency 3]

Uses only what it starts (tests/_ray_cluster.py: token auth, free ports, setsid; stopped alone).
About 2-3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from _ray_cluster import (  # noqa: E402 - shared with the tests
    FAKE_CLUSTER_YAML,
    RUNTIME_ENV_YAML,
    Head,
    private_head,
    session_pids,
    submit_when_ready,
)

HEAD_ID: list[str] = []  # the head's node id, once seen


def _spec(trials: int, concurrency: int, epochs: int) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "jobs" / "smoke_wrapper.yaml").read_text())
    raw["name"] = "autoscaling"
    raw["search"].update(trials=trials, max_concurrent=concurrency, algorithm="random")
    raw["trial"].update(epochs=epochs, max_failures=2)
    raw.pop("post", None)
    return raw


def _nodes(head: Head) -> dict[str, dict[str, Any]]:
    from ray.util.state import list_nodes

    out = {}
    for n in list_nodes(address=head.address, detail=True, raise_on_missing_output=False):
        n = n if isinstance(n, dict) else n.__dict__
        out[n["node_id"]] = n
    return out


def _raylet_pid(head: Head, node_id: str) -> int | None:
    for pid in session_pids(head.pid):  # only this head's processes
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"raylet") and f"--node_id={node_id}".encode() in cmd:
            return pid
    return None


def _trials(run_parent: Path) -> pd.DataFrame:
    files = list(run_parent.glob("*/trials.parquet"))
    return pd.read_parquet(files[0]) if files else pd.DataFrame()


def _max_untold(run_parent: Path) -> int | None:
    from fairsearch.search.study import load_run_study

    runs = [p.parent for p in run_parent.glob("*/spec.yaml")]
    if not runs:
        return None
    return load_run_study(runs[0], "autoscaling").user_attrs.get("max_untold")


def _short(node_id: Any) -> str:
    if not isinstance(node_id, str):
        return "?"
    return "head" if node_id in HEAD_ID else f"…{node_id[-5:]}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--concurrency", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--no-kill", action="store_true", help="do not kill a node")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    p.add_argument("--timeout", type=float, default=420, help="stop the job after this long (s)")
    p.add_argument("--smoke-test", action="store_true", help="4 trials, 2 at a time, 10 epochs")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.trials, args.concurrency, args.epochs = 4, 2, 10
    os.environ["RAY_AUTH_MODE"] = "token"  # before Ray is imported: the state API sends it
    # A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the head is still stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    workdir = Path(tempfile.mkdtemp(prefix="fsauto-"))
    runs = workdir / "runs"
    spec_path = workdir / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(_spec(args.trials, args.concurrency, args.epochs)))
    fake = yaml.safe_load(FAKE_CLUSTER_YAML.read_text())
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)

    try:
        # PYTHONPATH: the job's driver and every fake node import this checkout's package.
        with private_head(workdir, num_cpus=0, fake_cluster=fake,
                          extra_env={"PYTHONPATH": str(ROOT)}) as head:  # fmt: skip
            os.environ["RAY_AUTH_TOKEN_PATH"] = head.env["RAY_AUTH_TOKEN_PATH"]
            client, job = submit_when_ready(
                head.address, head.token,
                entrypoint=f"fairsearch search {spec_path} --storage {runs} --quiet",
                # No working_dir here: fake nodes share one runtime_resources folder, and a fake
                # worker's runtime-env agent unpacks (and later deletes) the same working_dir
                # folder the driver runs in. The package is imported from PYTHONPATH instead.
                runtime_env={"env_vars": yaml.safe_load(RUNTIME_ENV_YAML.read_text())["env_vars"]},
            )  # fmt: skip
            log(f"job {job} submitted: {args.trials} trials, {args.concurrency} lanes, "
                f"head with 0 CPUs")  # fmt: skip
            seen: dict[str, str] = {}  # node id -> type
            killed: dict[str, Any] = {}
            done = {"SUCCEEDED", "FAILED", "STOPPED"}
            while (status := str(client.get_job_status(job))) not in done:
                if time.monotonic() - t0 > args.timeout:
                    log(f"still {status} after {args.timeout:g} s: stopping the job")
                    client.stop_job(job)
                    time.sleep(5)
                    status = f"TIMED OUT ({client.get_job_status(job)})"
                    break
                for node_id, n in _nodes(head).items():
                    if node_id not in seen:
                        res = n.get("resources_total") or {}
                        kind = "head" if n.get("is_head_node") else (
                            "gpu" if res.get("GPU") else "cpu")  # fmt: skip
                        seen[node_id] = kind
                        if kind == "head":
                            HEAD_ID.append(node_id)
                        log(f"node up: {_short(node_id)} ({kind}, {res.get('CPU', 0):g} CPU)")
                trials = _trials(runs)
                if not killed and not args.no_kill and len(trials):
                    completed = trials[(trials["status"] == "completed")
                                       & trials["node_id"].notna()].sort_values("ended_at")  # fmt: skip
                    if len(completed) and len(trials) < args.trials:
                        last = completed.iloc[-1]
                        node_id, lane = str(last["node_id"]), int(last["lane"])
                        pid = _raylet_pid(head, node_id)
                        if pid is not None and node_id not in HEAD_ID:
                            killed = {"node": node_id, "lane": lane, "at": time.time(),
                                      "before": trials.copy()}  # fmt: skip
                            os.kill(pid, signal.SIGTERM)
                            log(f"SIGTERM raylet of node {_short(node_id)} (pid {pid}), which "
                                f"runs lane {lane}; configurations completed so far: {len(completed)}")
                time.sleep(1)
            log(f"job {status}")
            logs = client.get_job_logs(job)
            nodes = _nodes(head)
        if not status.startswith("SUCCEEDED"):
            print(logs[-4000:])
        return _summary(args, _trials(runs), _max_untold(runs), nodes, seen, killed, status)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _summary(args: argparse.Namespace, trials: pd.DataFrame, max_untold: int | None,
             nodes: dict[str, Any], seen: dict[str, str], killed: dict[str, Any],
             status: str) -> int:  # fmt: skip
    print("\n== nodes started by the autoscaler ==")
    kinds = Counter(k for k in seen.values() if k != "head")
    print(f"{sum(kinds.values())} worker nodes: " + ", ".join(f"{v} {k}" for k, v in kinds.items()))
    print(f"{'node':>8} {'type':>5} {'state at end':>13} {'configurations':>15}")
    per_node = trials.groupby("node_id").size() if len(trials) else pd.Series(dtype=int)
    for node_id, kind in seen.items():
        state = nodes.get(node_id, {}).get("state", "?")
        print(f"{_short(node_id):>8} {kind:>5} {state:>13} {int(per_node.get(node_id, 0)):>15}")
    if not len(trials):
        print("\nno trials.parquet\n\nNOT OK")
        return 1
    unplaced = int(trials["node_id"].isna().sum())
    if unplaced:
        print(f"{'(none)':>8} {'':>5} {'':>13} {unplaced:>15}  (told failed without a lane)")

    print("\n== lanes (configuration number@node, in order of ending; *: attempt > 0) ==")
    for lane, rows in trials.dropna(subset=["lane"]).sort_values("ended_at").groupby("lane"):
        steps = [f"{r.number}@{_short(r.node_id)}{'*' if (r.attempt or 0) > 0 else ''}"
                 for r in rows.itertuples()]  # fmt: skip
        print(f"lane {lane}: " + "  ".join(steps))

    print("\n== node loss ==")
    print(f"job: {status}")
    ok = status == "SUCCEEDED"
    counts = trials["status"].value_counts().to_dict()
    print(f"trials.parquet: {len(trials)} rows (spec: {args.trials}), statuses {counts}, "
          f"numbers unique: {trials['number'].is_unique}; max asked-and-untold: {max_untold} "
          f"(lanes: {args.concurrency})")  # fmt: skip
    ok &= len(trials) == args.trials and trials["number"].is_unique
    ok &= max_untold is not None and max_untold <= args.concurrency
    for row in trials[trials["status"] != "completed"].itertuples():
        print(f"  configuration {row.number} {row.status}: {str(row.error)[:300]}")
    if killed:
        before = killed["before"]
        done_before = before[before["status"] == "completed"].set_index("number")
        after = trials.set_index("number")
        kept = all(
            n in after.index and after.loc[n, "status"] == "completed"
            and after.loc[n, "objective.mse"] == row["objective.mse"]
            and after.loc[n, "node_id"] == row["node_id"]
            for n, row in done_before.iterrows()
        )  # fmt: skip
        print(f"killed node {_short(killed['node'])} while it ran lane {killed['lane']}")
        print(f"completed before the kill: {len(done_before)}, all still completed with the "
              f"same values and nodes: {kept}")  # fmt: skip
        ok &= kept
        at = pd.Timestamp(killed["at"], unit="s", tz="UTC")
        lane = trials[(trials["lane"] == killed["lane"]) & (trials["ended_at"] > at)]
        redelivered = lane[lane["attempt"] > 0]
        for row in redelivered.itertuples():
            print(f"re-delivered: configuration {row.number} (attempt {row.attempt}) "
                  f"{row.status} on node {_short(row.node_id)}")  # fmt: skip
        moved = lane[lane["node_id"].notna() & (lane["node_id"] != killed["node"])]
        if len(moved):
            print(f"lane {killed['lane']} after the kill: configurations {sorted(moved['number'])} "
                  f"on {sorted({_short(n) for n in moved['node_id']})}")  # fmt: skip
        failed = trials[trials["status"] == "failed"]
        if not len(redelivered) and not len(failed):
            print(f"lane {killed['lane']} had no configuration in flight when its node died")
        on_dead = trials[(trials["node_id"] == killed["node"]) & (trials["ended_at"] > at)]
        print(f"configurations recorded from the killed node after the kill: {len(on_dead)}")
        ok &= all(r.node_id != killed["node"] for r in redelivered.itertuples())
    print("\n" + ("OK" if ok else "NOT OK"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
