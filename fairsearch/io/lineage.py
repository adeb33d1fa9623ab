"""Which stage outputs of a run folder are current: input fingerprints per finished stage.

Each stage, when it finishes, records the SHA-256 of the files it read (``lineage.json`` in the
run folder). A stage is *stale* when a file it read has changed since (an earlier stage was re-run
with another result), or when a stage it depends on is stale. A re-run that writes identical
files leaves everything after it current. Folders from before this record have no lineage: nothing
is known stale there.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fairsearch.io.atomic import write_atomic

__all__ = ["LINEAGE_FILE", "STAGE_INPUTS", "fingerprint", "lineage_with", "record_stage",
           "stale_stages"]

LINEAGE_FILE = "lineage.json"
#: The files each stage reads, in pipeline order (the report reads every one of them).
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "pareto": ("trials.parquet",),
    "retrain": ("trials.parquet", "pareto.parquet"),
    "audit": ("retrain.parquet",),
    "decide": ("trials.parquet", "pareto.json", "retrain.parquet", "audit.parquet"),
}
#: What each stage depends on (its outputs are stale when one of these is).
UPSTREAM: dict[str, tuple[str, ...]] = {"pareto": (), "retrain": ("pareto",), "audit": ("retrain",),
                                        "decide": ("retrain", "audit")}


def fingerprint(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or ``None`` when it does not exist."""
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(run: Path) -> dict[str, Any]:
    path = run / LINEAGE_FILE
    if not path.is_file():
        return {}
    try:
        lineage = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is damaged ({type(exc).__name__}: {exc}): delete it (every "
                         f"stage is then taken as current) or re-run the stages from pareto, "
                         f"`fairsearch run {run} --from pareto`") from None  # fmt: skip
    return lineage if isinstance(lineage, dict) else {}


def lineage_with(run_dir: str | Path, stage: str, **extra: Any) -> str:
    """The text of ``lineage.json`` once ``stage`` is recorded as finished on the current
    versions of its input files (a staged stage commits it with its outputs)."""
    if stage not in STAGE_INPUTS:
        raise ValueError(f"stage must be one of {', '.join(STAGE_INPUTS)}, but got {stage!r}")
    run = Path(run_dir)
    lineage = _read(run)
    lineage[stage] = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {name: fingerprint(run / name) for name in STAGE_INPUTS[stage]},
        **extra,
    }
    return json.dumps(lineage, indent=2) + "\n"


def record_stage(run_dir: str | Path, stage: str, **extra: Any) -> None:
    """Record that ``stage`` finished on the current versions of its input files."""
    text = lineage_with(run_dir, stage, **extra)
    write_atomic(Path(run_dir) / LINEAGE_FILE, lambda p: p.write_text(text))


def stale_stages(run_dir: str | Path) -> dict[str, str]:
    """Stage -> why its outputs are stale, for every recorded stage that is."""
    run = Path(run_dir)
    lineage = _read(run)
    stale: dict[str, str] = {}
    for stage in STAGE_INPUTS:
        rec = lineage.get(stage)
        if rec is None:
            continue
        changed = [name for name, sha in (rec.get("inputs") or {}).items()
                   if fingerprint(run / name) != sha]
        upstream = [u for u in UPSTREAM[stage] if u in stale]
        if changed:
            stale[stage] = f"{', '.join(changed)} changed after {stage} ran"
        elif upstream:
            stale[stage] = f"it depends on {', '.join(upstream)}, which is stale"
    return stale
