"""Everything the report reads from a run folder, and which of it is current."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fairsearch.io.files import read_json, read_parquet
from fairsearch.io.lineage import stale_stages
from fairsearch.runfolder.names import config_number
from fairsearch.spec.safe_yaml import read_yaml

__all__ = ["VERDICT_FILE", "RunFiles", "load_run"]

#: The decide stage's output: the recommendation and its verification (docs/schemas.md).
VERDICT_FILE = "verdict.json"

_OPTIONAL = {
    "history": ("history.parquet", "no loss curves: history.parquet is missing"),
    "pareto": ("pareto.parquet", "no Pareto analysis yet: run `fairsearch pareto`"),
    "retrain": ("retrain.parquet", "no retraining yet: run `fairsearch retrain`"),
    "summary": ("retrain_summary.parquet", "no retrain summary: run `fairsearch retrain`"),
    "audit": ("audit.parquet", "no audit yet: run `fairsearch audit`"),
}


@dataclass
class RunFiles:
    """Everything the report reads; ``None`` where a stage has not run yet.

    ``stale`` maps a stage (``retrain``, ``audit``...) to why its outputs no longer follow from
    the current earlier outputs; the report flags those, and the verdict withholds judgement.
    """

    run_dir: Path
    spec: dict[str, Any]
    spec_bytes: bytes
    trials: pd.DataFrame
    history: pd.DataFrame | None = None
    pareto: pd.DataFrame | None = None
    pareto_meta: dict[str, Any] | None = None
    retrain: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    audit: pd.DataFrame | None = None
    missing: list[str] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)
    #: ``retrain/reference.json``: the trivial predictor's scores (None in older folders)
    reference: dict[str, Any] | None = None
    #: ``verdict.json``, the decide stage's output (None before it ran)
    verdict: dict[str, Any] | None = None

    @property
    def objectives(self) -> list[tuple[str, str]]:
        objs = (self.pareto_meta or {}).get("objectives") or self.spec.get("objectives") or []
        return [(o["metric"], o.get("direction", "minimize")) for o in objs]

    @property
    def chosen_number(self) -> int | None:
        """The Optuna trial number of the chosen configuration (``None``: nothing chosen)."""
        tid = (self.pareto_meta or {}).get("chosen_trial_id")
        if tid is None:
            return None
        rows = self.trials[self.trials["trial_id"] == tid]
        return int(rows["number"].iloc[0]) if len(rows) else None

    @property
    def recommended_number(self) -> int | None:
        """The configuration ``verdict.json`` recommends (or names as closest), else the Pareto
        stage's pick."""
        if self.verdict is not None and self.verdict.get("number") is not None:
            return int(self.verdict["number"])
        return self.chosen_number

    @property
    def chosen(self) -> pd.Series | None:
        n = self.chosen_number
        return None if n is None else self.trials[self.trials["number"] == n].iloc[0]

    @property
    def subject_to(self) -> list[str]:
        """The constraints of the rule that picked (``pareto.json``, else the spec)."""
        select = (self.pareto_meta or {}).get("select")
        if select is None:
            select = (self.spec.get("post") or {}).get("select") or {}
        sub = select.get("subject_to") or []
        return [sub] if isinstance(sub, str) else list(sub)

    @property
    def family(self) -> str:
        model = self.spec.get("model")
        return str(model.get("family") if isinstance(model, dict) else model)


def _with_number(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``number`` (the Optuna trial number) from ``config_id`` where it is missing."""
    if "number" not in table and "config_id" in table:
        table = table.assign(number=[config_number(c) for c in table["config_id"]])
    return table


def load_run(run_dir: str | Path) -> RunFiles:
    run = Path(run_dir)
    for name in ("spec.yaml", "trials.parquet"):
        if not (run / name).is_file():
            raise ValueError(f"RUN_DIR {str(run)!r} has no {name}; the report needs a search first")
    raw = (run / "spec.yaml").read_bytes()
    spec = read_yaml(run / "spec.yaml", "spec file") or {}
    files = RunFiles(run, spec, raw, read_parquet(run / "trials.parquet"))
    for attr, (name, why) in _OPTIONAL.items():
        if (run / name).is_file():
            setattr(files, attr, read_parquet(run / name))  # a damaged one names its recovery
        elif attr != "summary":
            files.missing.append(why)
    for attr in ("retrain", "summary"):
        table = getattr(files, attr)
        if table is not None:
            setattr(files, attr, _with_number(table))
    if (run / "pareto.json").is_file():
        files.pareto_meta = read_json(run / "pareto.json")
    if (run / "retrain" / "reference.json").is_file():
        files.reference = read_json(run / "retrain" / "reference.json")
    if (run / VERDICT_FILE).is_file():
        files.verdict = read_json(run / VERDICT_FILE)
    files.stale = stale_stages(run)
    n = files.chosen_number
    if files.pareto_meta is not None and files.retrain is not None and "retrain" not in files.stale:
        done = set(files.retrain["number"].dropna().astype(int))
        if n is not None and n not in done:
            files.stale["retrain"] = f"it has no seeds of the chosen configuration #{n}"
            files.stale.setdefault("audit", "it depends on retrain, which is stale")
    return files
