"""cluster.yaml and jobs/: valid for the Ray that is installed, and keeping what they promise.

The schema is the one the Ray wheel ships (``ray/autoscaler/ray-schema.json``, the file
``ray up`` validates against), read by path: no private Ray module is imported. A broken copy of
the config must fail, so the schema check is known to bite. The slow test starts
jobs/fake_cluster.yaml with token authentication, submits a job through the job API and watches
the autoscaler add a (fake) GPU node for it.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import shlex
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from _ray_cluster import (
    FAKE_CLUSTER_YAML,
    ROOT,
    RUNTIME_ENV_YAML,
    private_head,
    submit_when_ready,
    wait_for_job,
)

CLUSTER_YAML = ROOT / "cluster.yaml"
DASHBOARD_PORT = 8265
LOCALHOST = {"127.0.0.1", "localhost", "::1"}
ANYWHERE = {"0.0.0.0/0", "::/0"}

Config = dict[str, Any]


def _load(path: Path) -> Config:
    with open(path) as f:
        return yaml.safe_load(f)


def _schema() -> Config:
    text = importlib.resources.files("ray.autoscaler").joinpath("ray-schema.json").read_text()
    return json.loads(text)


def _validate(config: Config) -> None:
    schema = _schema()
    jsonschema.validators.validator_for(schema)(schema).validate(config)


@pytest.fixture(scope="module")
def cluster() -> Config:
    return _load(CLUSTER_YAML)


def _ray_starts(commands: list[str]) -> list[list[str]]:
    """The argument lists of every `ray start` in a list of shell command strings."""
    starts = []
    for command in commands:
        for part in re.split(r"[;&|\n]+", command):
            words = shlex.split(part)
            if words[:2] == ["ray", "start"]:
                starts.append(words[2:])
    return starts


def _flag(args: list[str], name: str) -> str | None:
    """Value of ``--name=value`` or ``--name value`` in args, None when absent."""
    for i, arg in enumerate(args):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


# --- the schema check, and proof that it bites ----------------------------------------------


def test_ray_schema_is_a_valid_json_schema() -> None:
    schema = _schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)


@pytest.mark.parametrize("path", [CLUSTER_YAML, FAKE_CLUSTER_YAML], ids=lambda p: p.name)
def test_config_matches_ray_schema(path: Path) -> None:
    _validate(_load(path))


def test_cluster_with_ray_defaults_filled_in_still_matches_schema(cluster: Config) -> None:
    # What `ray up` validates: the file merged with the AWS defaults of the installed Ray.
    from ray.autoscaler.sdk import fillout_defaults

    _validate(fillout_defaults(copy.deepcopy(cluster)))


def _unknown_top_level_key(c: Config) -> None:
    c["max_wokers"] = 3


def _unknown_node_type_key(c: Config) -> None:
    c["available_node_types"]["ray.worker.gpu"]["gpus"] = 1


def _fractional_gpu(c: Config) -> None:
    c["available_node_types"]["ray.worker.gpu"]["resources"]["GPU"] = 0.5


def _string_max_workers(c: Config) -> None:
    c["max_workers"] = "eight"


def _unknown_security_group_key(c: Config) -> None:
    c["provider"]["security_group"]["Ingress"] = []


def _node_type_without_node_config(c: Config) -> None:
    del c["available_node_types"]["ray.worker.cpu"]["node_config"]


def _no_provider(c: Config) -> None:
    del c["provider"]


@pytest.mark.parametrize(
    "break_it",
    [
        _unknown_top_level_key,
        _unknown_node_type_key,
        _fractional_gpu,
        _string_max_workers,
        _unknown_security_group_key,
        _node_type_without_node_config,
        _no_provider,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_broken_copy_fails_schema(cluster: Config, break_it: Callable[[Config], None]) -> None:
    broken = copy.deepcopy(cluster)
    break_it(broken)
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken)


# --- what cluster.yaml promises ----------------------------------------------------------------


@pytest.mark.parametrize("path", [CLUSTER_YAML, FAKE_CLUSTER_YAML], ids=lambda p: p.name)
def test_worker_counts_are_consistent(path: Path) -> None:
    # The checks Ray's own (private) validation adds to the schema, plus per-type bounds.
    config = _load(path)
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert types[config["head_node_type"]].get("max_workers", 0) == 0
    assert sum(t.get("min_workers", 0) for t in types.values()) <= config["max_workers"]
    for name, node_type in types.items():
        low, high = node_type.get("min_workers", 0), node_type.get("max_workers", 0)
        assert 0 <= low <= high <= config["max_workers"], (name, low, high)


@pytest.mark.parametrize("path", [CLUSTER_YAML, FAKE_CLUSTER_YAML], ids=lambda p: p.name)
def test_has_a_gpu_worker_type_and_a_cpu_worker_type(path: Path) -> None:
    config = _load(path)
    workers = {
        name: t["resources"]
        for name, t in config["available_node_types"].items()
        if name != config["head_node_type"] and t.get("max_workers", 0) > 0
    }
    assert any(r.get("GPU", 0) >= 1 for r in workers.values()), workers
    assert any(r.get("CPU", 0) >= 1 and r.get("GPU", 0) == 0 for r in workers.values()), workers
    head = config["available_node_types"][config["head_node_type"]]["resources"]
    assert head.get("GPU", 0) == 0


@pytest.mark.parametrize("path", [CLUSTER_YAML, FAKE_CLUSTER_YAML], ids=lambda p: p.name)
def test_idle_workers_are_removed(path: Path) -> None:
    assert _load(path)["idle_timeout_minutes"] > 0


def test_ray_start_binds_dashboard_to_localhost_by_default() -> None:
    # cluster.yaml writes --dashboard-host=127.0.0.1 out; this pins the default it relies on
    # should the flag ever be dropped.
    from ray.scripts.scripts import start

    (option,) = [p for p in start.params if p.name == "dashboard_host"]
    assert option.default in LOCALHOST


def test_dashboard_listens_on_localhost_only(cluster: Config) -> None:
    heads = _ray_starts(cluster["head_start_ray_commands"])
    assert len(heads) == 1 and "--head" in heads[0]
    assert _flag(heads[0], "--dashboard-host") in LOCALHOST
    assert _flag(heads[0], "--dashboard-port") in (None, str(DASHBOARD_PORT))
    for args in heads + _ray_starts(cluster["worker_start_ray_commands"]):
        assert _flag(args, "--dashboard-host") in (None, *LOCALHOST)
        assert "--ray-debugger-external" not in args


def _covers(rule: dict[str, Any], port: int) -> bool:
    if str(rule.get("IpProtocol", "tcp")) == "-1":
        return True
    return int(rule.get("FromPort", -1)) <= port <= int(rule.get("ToPort", -1))


def test_no_inbound_rule_opens_the_dashboard(cluster: Config) -> None:
    rules = cluster["provider"].get("security_group", {}).get("IpPermissions", [])
    for rule in rules:
        if _covers(rule, DASHBOARD_PORT):
            sources = [r.get("CidrIp") for r in rule.get("IpRanges", [])]
            sources += [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])]
            assert not ANYWHERE & set(sources), rule
    # Only Ray's own security group (SSH + intra-cluster): no hand-picked groups that could
    # carry other rules.
    for name, node_type in cluster["available_node_types"].items():
        assert "SecurityGroupIds" not in node_type["node_config"], name


def test_every_node_starts_ray_with_token_auth(cluster: Config) -> None:
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in cluster[key] if "ray start" in c]
        assert "RAY_AUTH_MODE=token" in start, key
    assert cluster["file_mounts"].get("~/.ray/auth_token") == "~/.ray/auth_token"


def test_setup_installs_matching_ray_torch_and_this_package(cluster: Config) -> None:
    import ray

    setup = " ".join(cluster["setup_commands"])
    assert re.search(rf"ray\[[^\]]*\]=={re.escape(ray.__version__)}\b", setup), setup
    assert re.search(r"pip install[^;]*\btorch\b", setup), setup
    (mount,) = [remote for remote, local in cluster["file_mounts"].items() if local == "."]
    assert f"pip install -q -e {mount}" in setup
    assert "boto3" in " ".join(cluster["head_setup_commands"])


def test_every_field_of_cluster_yaml_is_commented() -> None:
    # Like Ray's example configs: each key has a comment on the line(s) just above it or on
    # its own line.
    lines = CLUSTER_YAML.read_text().splitlines()
    key = re.compile(r"^\s*(- )?[\w.~/\"-]+:(\s|$)")
    missing = []
    for i, line in enumerate(lines):
        if not key.match(line):
            continue
        above = next((p for p in reversed(lines[:i]) if p.strip()), "")
        if "#" not in line and not above.lstrip().startswith("#"):
            missing.append(f"{i + 1}: {line.strip()}")
    assert not missing, "uncommented fields:\n" + "\n".join(missing)


# --- jobs/runtime_env.yaml ---------------------------------------------------------------------


def test_runtime_env_installs_nothing_and_is_accepted_by_ray() -> None:
    from ray.runtime_env import RuntimeEnv

    env = _load(RUNTIME_ENV_YAML)
    # Packages come from the cluster's setup_commands; working_dir from --working-dir.
    assert set(env) <= {"env_vars", "excludes"}, sorted(env)
    assert all(isinstance(v, str) for v in env.get("env_vars", {}).values())
    RuntimeEnv(**env)  # raises on a wrongly typed field


# --- the fake cluster, for real ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and setsid")
def test_fake_cluster_runs_a_job_and_adds_a_gpu_node() -> None:
    from ray.job_submission import JobStatus

    # A short folder: Ray's unix sockets live under --temp-dir (path limit ~107 bytes).
    workdir = Path(tempfile.mkdtemp(prefix="fsray-"))
    try:
        with private_head(workdir, num_cpus=1, fake_cluster=_load(FAKE_CLUSTER_YAML)) as head:
            address, token = head.address, head.token
            code = (
                "import fairsearch, ray\n"
                "ray.init()\n"
                "where = ray.remote(num_gpus=1)(lambda: ray.get_runtime_context().get_node_id())\n"
                "node = ray.get(where.remote(), timeout=240)\n"
                "gpus = {n['NodeID']: n['Resources'].get('GPU', 0) for n in ray.nodes()}\n"
                "print('FAIRSEARCH', fairsearch.__file__)\n"
                "print('GPU_NODE', node, gpus[node], len(gpus))\n"
            )
            client, job = submit_when_ready(
                address,
                token,
                entrypoint=f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}",
                runtime_env={**_load(RUNTIME_ENV_YAML), "working_dir": str(ROOT)},
            )
            # Without the token the job API refuses.
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{address}/api/jobs/", timeout=10)
            assert refused.value.code == 401

            status = wait_for_job(client, job, timeout_s=300)
            logs = client.get_job_logs(job)
            assert status == JobStatus.SUCCEEDED, logs
            # The GPU task ran on a node the autoscaler added, and the uploaded copy of the
            # package (not an installed one) was imported.
            # The job's log interleaves Ray's own stderr lines with the driver's prints, so a
            # print can land after another writer's partial line: find the marks anywhere.
            ((node_id, gpus, n_nodes),) = re.findall(r"GPU_NODE (\S+) (\S+) (\d+)", logs)
            assert float(gpus) == 1 and int(n_nodes) >= 2
            assert not node_id.endswith("00000")  # the fake head's id
            (pkg_path,) = re.findall(r"FAIRSEARCH (\S+)", logs)
            assert "working_dir_files" in pkg_path
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
