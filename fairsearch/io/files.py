"""Reading a run folder's files: an error names the file and how to recover.

A damaged table or JSON file is never an internal error: the message names the file and the
command that writes it again (``fairsearch repair`` for the search's tables, else re-running the
stage that made it). No Ray here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["RECOVERY", "read_json", "read_parquet", "recovery"]

#: file name -> the command that writes it again (``RUN_DIR`` is filled in)
RECOVERY: dict[str, str] = {
    "trials.parquet": "fairsearch repair {run}",
    "history.parquet": "fairsearch repair {run}",
    "spec.yaml": "restore it from the spec you ran (or start a new run)",
    "pareto.parquet": "fairsearch pareto {run}",
    "pareto.json": "fairsearch pareto {run}",
    "retrain.parquet": "fairsearch retrain {run}",
    "retrain_summary.parquet": "fairsearch retrain {run}",
    "audit_inputs.npz": "fairsearch audit {run}",
    "audit.parquet": "fairsearch audit {run}",
}


def recovery(path: str | Path) -> str:
    """How to get a good copy of the run-folder file ``path`` back."""
    path = Path(path)
    how = RECOVERY.get(path.name)
    if how is None:
        parts = path.parts
        how = "fairsearch retrain {run}" if "retrain" in parts else "re-run the stage that wrote it"
        run = next((Path(*parts[:i]) for i, p in enumerate(parts) if p == "retrain"), path.parent)
    else:
        run = path.parent
    text = how.format(run=run)
    return f"`{text}`" if text.startswith("fairsearch") else text


def _damaged(path: Path, exc: BaseException) -> ValueError:
    return ValueError(f"{path} is damaged or unreadable ({type(exc).__name__}: {exc}); to "
                      f"recover: {recovery(path)}")  # fmt: skip


def read_parquet(path: str | Path) -> Any:
    """``pandas.read_parquet(path)``; ``ValueError`` naming the file and the recovery."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is missing; to recover: {recovery(path)}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise _damaged(path, exc) from None


def read_json(path: str | Path) -> Any:
    """The JSON document at ``path``; ``ValueError`` naming the file and the recovery."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is missing; to recover: {recovery(path)}") from None
    except (OSError, ValueError) as exc:
        raise _damaged(path, exc) from None
