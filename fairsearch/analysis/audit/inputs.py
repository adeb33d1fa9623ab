"""What the audit of a run folder probes: the frozen test-split outputs of its retrained seeds,
collected once into ``audit_inputs.npz`` and tied to the files they came from.

The cache is used as it is while those files are unchanged, collected again when they changed,
and refused (with the command that rebuilds them) when weights it names are gone: the audit
never rates models whose weights no longer exist.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairsearch.io.atomic import write_atomic
from fairsearch.io.lineage import fingerprint

__all__ = ["SEED_FILES", "SOURCES", "audit_inputs", "collect_inputs"]

#: The array of ``audit_inputs.npz`` that ties it to the files it was collected from: a JSON
#: object, path relative to the run folder -> SHA-256 (``model.pt`` and ``test_repr.npy`` of
#: each retrained seed).
SOURCES = "sources"
#: The files of a completed retrained seed the audit needs (the weights, and what probes see).
SEED_FILES = ("model.pt", "test_repr.npy")


def audit_inputs(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The arrays the audit of a run folder probes (``q``, optional ``y``, ``rep:<model>``,
    ``extra:<name>``...): ``audit_inputs.npz`` as it is when present and still tied to the
    retrained files it was collected from (:func:`_cached_inputs`); otherwise collected from the
    retrain outputs (:func:`collect_inputs`) and written there, with the path and SHA-256 of
    each of those files (``sources``)."""
    run = Path(run_dir)
    path = run / "audit_inputs.npz"
    data = _cached_inputs(run, path)
    if data is None:
        data = collect_inputs(run)

        def save(p: Path) -> None:
            with open(p, "wb") as fh:
                np.savez(fh, **data)

        write_atomic(path, save)
    return data


def _load_outputs(path: Path) -> np.ndarray:
    """A retrained seed's ``test_repr.npy``; ``ValueError`` naming it and the recovery."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path} is damaged or unreadable ({type(exc).__name__}: {exc}); to "
                         f"recover: `fairsearch retrain {path.parents[3]}`") from None  # fmt: skip


def _cached_inputs(run: Path, path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of ``audit_inputs.npz`` (a cache of the retrain outputs), or None when it is
    to be collected again: missing, damaged, or collected from other versions of the retrained
    files than those in ``retrain/`` now (with a warning naming it).

    The cache is tied to the files it was collected from (``sources``: path -> SHA-256 of each
    retrained seed's ``model.pt`` and ``test_repr.npy``): when one of them is gone it is refused
    (``ValueError`` naming them and the command that rebuilds them), never audited as models
    that no longer exist. A cache without ``sources`` (an earlier version's) is collected again
    while the weights its seeds name are there, else refused the same way; one in a folder with
    no retrain outputs at all holds arrays a user brought, audited as they are."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as loaded:
            data = {k: loaded[k] for k in loaded.files}
        sources = json.loads(str(data[SOURCES])) if SOURCES in data else None
        if sources is not None and not isinstance(sources, dict):
            raise ValueError(f"{SOURCES!r} is not a JSON object")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        print(f"warning: {path} is damaged ({type(exc).__name__}: {exc}); collecting it again "
              f"from retrain/", file=sys.stderr)  # fmt: skip
        return None
    if sources is None:
        seeds = [k.removeprefix("rep:") for k in data if k.startswith("rep:") and "/seed-" in k]
        if not seeds or not ((run / "retrain").exists() or (run / "retrain.parquet").exists()):
            return data  # arrays brought by a user, not collected from this folder's retrain
        sources = {f"retrain/{seed}/model.pt": None for seed in seeds}
    missing = [name for name in sources if not (run / name).is_file()]
    if missing:
        raise ValueError(
            f"{path} holds the outputs of retrained models whose files are missing in "
            f"{str(run)!r} ({_names(missing)}): no audit is written for models that no longer "
            f"exist; `fairsearch retrain {run}` rebuilds them (and drops this cache)")
    changed = [name for name, sha in sources.items()
               if sha is None or fingerprint(run / name) != sha]  # fmt: skip
    if changed:
        why = ("has no record of the files it was collected from"
               if all(sha is None for sha in sources.values())
               else f"was collected from other versions of {_names(changed)}")  # fmt: skip
        print(f"warning: {path} {why}; collecting it again from retrain/", file=sys.stderr)
        return None
    return data


def collect_inputs(run_dir: str | Path) -> dict[str, np.ndarray]:
    """Frozen test-split outputs of a run folder, as arrays ``q``, ``y``, ``rep:<model>``...

    Reads ``spec.yaml`` (for the data), and ``retrain/<config>/seed-<s>/test_repr.npy``. Adds
    the family's baselines (the untouched features ``original``; for translators also a LEACE row
    fitted on the train split) and its transfer arrays, and ``sources`` (:data:`SOURCES`): the
    path and SHA-256 of each retrained file read. Refused (``ValueError`` naming them and
    ``fairsearch retrain``) when files of a seed ``retrain.parquet`` names as completed are
    missing: the audit never rates models whose weights are gone.
    """
    from fairsearch.data import load_from_spec
    from fairsearch.spec import load_spec

    run = Path(run_dir)
    spec = load_spec(run / "spec.yaml")
    data = load_from_spec(spec.data)
    test = data.subset("test")
    out: dict[str, np.ndarray] = {"q": np.asarray(test.q)}
    if data.task == "classification":
        out["y"] = np.asarray(test.y)
    for name, rep in spec.family.baselines(data).items():
        out[f"rep:{name}"] = rep
    out.update(spec.family.transfer(data))
    missing, completed = _missing_seed_files(run)
    if missing:
        raise ValueError(_weights_missing(run, missing, completed))
    sources: dict[str, str | None] = {}
    for path in sorted((run / "retrain").glob("*/seed-*/test_repr.npy")):
        out[f"rep:{path.parent.parent.name}/{path.parent.name}"] = _load_outputs(path)
        for name in SEED_FILES:
            sources[(path.parent / name).relative_to(run).as_posix()] = fingerprint(
                path.parent / name)
    if not any(k.startswith("rep:") and "/seed-" in k for k in out):
        raise ValueError(_nothing_to_audit(run))
    out[SOURCES] = np.array(json.dumps(sources, sort_keys=True))
    return out


def _missing_seed_files(run: Path) -> tuple[list[str], int]:
    """The files (relative to ``run``) of retrained seeds that the audit needs and that are
    missing: ``model.pt`` and ``test_repr.npy`` of each seed ``retrain.parquet`` names as
    completed, and ``model.pt`` of each seed whose ``test_repr.npy`` is in ``retrain/``; with
    the number of those seeds."""
    from fairsearch.io.files import read_parquet

    seeds: dict[str, tuple[str, ...]] = {}
    if (run / "retrain.parquet").is_file():
        table = read_parquet(run / "retrain.parquet")
        if {"config_id", "seed", "status"} <= set(table.columns):
            done = table[table["status"].astype(str) == "completed"]
            for config, seed in zip(done["config_id"], done["seed"], strict=True):
                seeds[f"retrain/{config}/seed-{int(seed)}"] = SEED_FILES
    for path in sorted((run / "retrain").glob("*/seed-*/test_repr.npy")):
        seeds.setdefault(path.parent.relative_to(run).as_posix(), ("model.pt",))
    missing = [f"{folder}/{name}" for folder, names in seeds.items() for name in names
               if not (run / folder / name).is_file()]  # fmt: skip
    return missing, len(seeds)


def _names(files: Sequence[str], limit: int = 6) -> str:
    """``a, b, c`` (at most ``limit`` names, then how many more)."""
    shown = ", ".join(files[:limit])
    return shown if len(files) <= limit else f"{shown} and {len(files) - limit} more"


def _weights_missing(run: Path, missing: Sequence[str], completed: int) -> str:
    """The audit's refusal when weights of retrained seeds named by ``retrain.parquet`` (or in
    ``retrain/``) are gone: which files, and the command that rebuilds them."""
    seeds = len({name.rsplit("/", 1)[0] for name in missing})
    if seeds == completed:
        head = (f"nothing to audit in {str(run)!r}: retrain.parquet names {completed} completed "
                f"retrained seeds, but their weights are missing")  # fmt: skip
    else:
        head = (f"cannot audit {str(run)!r}: retrain.parquet names {completed} completed "
                f"retrained seeds, but the weights of {seeds} of them are missing")  # fmt: skip
    return f"{head} ({_names(missing)}); `fairsearch retrain {run}` rebuilds them"


def _nothing_to_audit(run: Path) -> str:
    """Why a run folder has no retrained model to audit."""
    from fairsearch.analysis.pareto.analysis import outcomes

    if not (run / "retrain.parquet").is_file():
        return f"RUN_DIR {str(run)!r} has no retrained models: run `fairsearch retrain` first"
    table = pd.read_parquet(run / "retrain.parquet")
    if "seed" in table and "config_id" in table and "error" in table and len(table):
        table = table.assign(error=[None if e is None or pd.isna(e) else f"{c} seed {s}: {e}"
                                    for c, s, e in zip(table["config_id"], table["seed"],
                                                       table["error"], strict=True)])  # fmt: skip
    return (f"nothing to audit in {str(run)!r}: no retrained seed completed "
            f"({outcomes(table, 'retrained seed')})")
