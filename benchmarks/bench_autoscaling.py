"""Autoscaling and node loss, simulated: a search job on jobs/fake_cluster.yaml.

A private head with no CPUs (so every trial needs a worker node) runs the fake autoscaler; a
wrapper search whose concurrency needs several nodes is submitted as a Ray job (the env vars of
``jobs/runtime_env.yaml``, but no ``working_dir``: see the note in :func:`main`). While it runs this script watches
the nodes (state API) and the Ray Train runs (the dashboard's Train API: which node each run's
workers ran on, attempt by attempt). After the first trial completes it SIGTERMs the raylet of a
fake worker node that is running a Train run, then waits for the job and prints:

* nodes started by the autoscaler, by type;
* trials per node (from the Train runs: trials.parquet's ``node`` column is the host name,
  which fake nodes share);
* what happened on node loss: the completed trials before the kill are all in trials.parquet
  with the same values, the interrupted Train run was retried on another node, and the totals.

    python benchmarks/bench_autoscaling.py [--smoke-test] [--trials 6] [--concurrency 3]

Uses only what it starts (tests/_ray_cluster.py: token auth, free ports, setsid; stopped alone).
About 2-3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
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


def _spec(trials: int, concurrency: int, epochs: int, per_run: str) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "jobs" / "smoke_wrapper.yaml").read_text())
    raw["name"] = "autoscaling"
    raw["search"].update(trials=trials, max_concurrent=concurrency, algorithm="random",
                         configs_per_run=per_run if per_run == "auto" else int(per_run))
    raw["trial"].update(epochs=epochs, max_failures=2)
    raw.pop("post", None)
    return raw


def _get(head: Head, path: str) -> Any:
    req = urllib.request.Request(head.address + path, headers=head.headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _nodes(head: Head) -> dict[str, dict[str, Any]]:
    from ray.util.state import list_nodes

    out = {}
    for n in list_nodes(address=head.address, detail=True, raise_on_missing_output=False):
        n = n if isinstance(n, dict) else n.__dict__
        out[n["node_id"]] = n
    return out


def _train_runs(head: Head) -> list[dict[str, Any]]:
    """Ray Train V2 runs with their attempts and each attempt's worker nodes."""
    try:
        runs = _get(head, "/api/train/v2/runs/v1").get("train_runs", [])
    except Exception:  # noqa: BLE001 - not up yet (no run started)
        return []
    return runs


def _attempt_nodes(run: dict[str, Any]) -> list[tuple[str, str]]:
    """(attempt status, node id of its first worker) per attempt, oldest first."""
    out = []
    for attempt in run.get("attempts", []):
        workers = attempt.get("workers") or []
        node = workers[0]["node_id"] if workers else "-"
        out.append((attempt.get("status", "?"), node))
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


def _n_completed(trials: pd.DataFrame) -> int:
    return int((trials["status"] == "completed").sum()) if len(trials) else 0


def _short(node_id: str) -> str:
    return "head" if node_id in HEAD_ID else f"…{node_id[-5:]}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--concurrency", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--per-run", default="1", help="search.configs_per_run (see the reply notes)")
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
    spec_path.write_text(yaml.safe_dump(_spec(args.trials, args.concurrency, args.epochs, args.per_run)))
    fake = yaml.safe_load(FAKE_CLUSTER_YAML.read_text())
    t0 = time.monotonic()
    events: list[str] = []

    def log(msg: str) -> None:
        line = f"[{time.monotonic() - t0:6.1f}s] {msg}"
        events.append(line)
        print(line, flush=True)

    try:
        with private_head(workdir, num_cpus=0, fake_cluster=fake,
                          extra_env={"RAY_TRAIN_ENABLE_STATE_TRACKING": "1"}) as head:  # fmt: skip
            os.environ["RAY_AUTH_TOKEN_PATH"] = head.env["RAY_AUTH_TOKEN_PATH"]
            client, job = submit_when_ready(
                head.address, head.token,
                entrypoint=f"fairsearch search {spec_path} --storage {runs} --quiet",
                # No working_dir here: fake nodes share one runtime_resources folder, and a fake
                # worker's runtime-env agent unpacks (and later deletes) the same working_dir
                # folder the driver runs in. The installed package is used instead.
                runtime_env={"env_vars": yaml.safe_load(RUNTIME_ENV_YAML.read_text())["env_vars"]},
            )  # fmt: skip
            log(f"job {job} submitted: {args.trials} trials, {args.concurrency} at a time, "
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
                if not killed and not args.no_kill and _n_completed(trials) >= 1:
                    running = [(r, a) for r in _train_runs(head)
                               for a in _attempt_nodes(r)[-1:] if a[0] == "RUNNING"
                               and a[1] != "-" and a[1] not in HEAD_ID]  # fmt: skip
                    if running:
                        run, (_, node_id) = running[0]
                        pid = _raylet_pid(head, node_id)
                        if pid is not None:
                            killed = {"node": node_id, "run": run["name"],
                                      "at": time.time(), "before": trials.copy()}  # fmt: skip
                            os.kill(pid, signal.SIGTERM)
                            log(f"SIGTERM raylet of node {_short(node_id)} (pid {pid}) running "
                                f"{run['name']}; {len(trials)} trials recorded so far")
                time.sleep(1)
            log(f"job {status}")
            logs = client.get_job_logs(job)
            final_runs = _train_runs(head)
            nodes = _nodes(head)
        if status.startswith("FAILED") or status.startswith("STOPPED"):
            print(logs[-4000:])
            return 1
        return _summary(args, _trials(runs), final_runs, nodes, seen, killed, status)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _summary(args, trials: pd.DataFrame, runs: list[dict[str, Any]], nodes: dict[str, Any],
             seen: dict[str, str], killed: dict[str, Any], status: str) -> int:  # fmt: skip
    print("\n== nodes started by the autoscaler ==")
    kinds = Counter(k for k in seen.values() if k != "head")
    print(f"{sum(kinds.values())} worker nodes: " + ", ".join(f"{v} {k}" for k, v in kinds.items()))
    print(f"{'node':>8} {'type':>5} {'state at end':>13}")
    for node_id, kind in seen.items():
        print(f"{_short(node_id):>8} {kind:>5} {nodes.get(node_id, {}).get('state', '?'):>13}")

    # Train run -> attempts' nodes; a trial's node = the node of the attempt that reported it
    # (the last one: a retried run re-trains its configurations, duplicates are ignored).
    attempts = {r["name"].removeprefix("train-"): _attempt_nodes(r) for r in runs}
    trials = trials.copy()
    trials["ray_node"] = [
        _short(attempts.get(rid, [("?", "?")])[-1][1]) for rid in trials["run_id"]
    ]
    if killed:
        before = killed["before"]
        done_before = before[before["status"] == "completed"]
        # trials that ran on the killed node's run and reported before the kill came from the
        # first attempt
        for i, row in trials.iterrows():
            if row["number"] in set(done_before["number"]):
                trials.loc[i, "ray_node"] = _short(
                    attempts.get(row["run_id"], [("?", "?")])[0][1])  # fmt: skip
    print("\n== trials per node (Ray node id; trials.parquet `node` is the shared host name) ==")
    print(trials.groupby("ray_node").size().rename("trials").to_string())
    print("\n== Train runs (attempt status @ node) ==")
    for rid, att in attempts.items():
        n = int((trials["run_id"] == rid).sum())
        print(f"{rid[:14]:>14} {n} trials  " + "  ->  ".join(f"{s}@{_short(nd)}" for s, nd in att))

    print("\n== node loss ==")
    print(f"job: {status}")
    ok = status == "SUCCEEDED"
    counts = trials["status"].value_counts().to_dict()
    print(f"trials.parquet: {len(trials)} rows (spec: {args.trials}), statuses {counts}, "
          f"numbers unique: {trials['number'].is_unique}")  # fmt: skip
    ok &= len(trials) == args.trials and trials["number"].is_unique
    for _, row in trials[trials["status"] != "completed"].iterrows():
        print(f"  trial {row['number']} {row['status']}: {str(row['error'])[:300]}")
    if killed:
        before = killed["before"]
        done_before = before[before["status"] == "completed"]
        after = trials.set_index("number")
        kept = all(
            n in after.index and after.loc[n, "status"] == "completed"
            and after.loc[n, "objective.mse"] == row["objective.mse"]
            for n, row in done_before.set_index("number").iterrows()
        )  # fmt: skip
        run_id = killed["run"].removeprefix("train-")
        att = attempts.get(run_id, [])
        of_run = trials[trials["run_id"] == run_id]
        later = of_run[of_run["ended_at"] > pd.Timestamp(killed["at"], unit="s", tz="UTC")]
        print(f"killed node {_short(killed['node'])} while it ran {killed['run']}")
        print(f"completed before the kill: {len(done_before)}, all still completed with the same "
              f"values: {kept}")  # fmt: skip
        print("that run's attempts: " + "  ->  ".join(f"{s}@{_short(nd)}" for s, nd in att))
        print(f"its trials finished after the kill: {sorted(later['number'])} with statuses "
              f"{later['status'].tolist()}")  # fmt: skip
        ok &= kept and len(att) >= 2 and set(later["status"]) <= {"completed"}
    print("\n" + ("OK" if ok else "NOT OK"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
