"""study.db damaged -> check_study names the repair command; repair rebuilds it from trials.parquet."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from fairsearch.cli import main
from fairsearch.search.recorder import RECORD, Recorder, open_study, write_spec
from fairsearch.search.repair import check_study, repair_study, study_problem
from fairsearch.spec.schema import parse_spec

SPACE = {
    "mu": {"type": "float", "low": 0.0, "high": 10.0, "step": 0.5},
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "width": {"type": "int", "low": 8, "high": 64},
    "dependence": {"type": "categorical", "choices": ["cka", "hsic"]},
    "sigma_f": {"type": "float", "low": 0.2, "high": 5.0, "when": {"dependence": "cka"}},
}


def _run_folder(tmp_path: Path) -> Path:
    """A run folder with 6 finished trials (4 completed, 1 failed, 1 diverged) and one left
    running (a gap in the numbers), recorded without Ray."""
    spec = parse_spec({
        "name": "rep", "data": {"name": "synthetic_regression", "n": 300, "n_train": 200},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": {k: v for k, v in SPACE.items() if k != "width"},
        "search": {"algorithm": "random", "trials": 8, "max_concurrent": 8},
    })  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    write_spec(spec, run / "spec.yaml")
    rec = Recorder(open_study(spec, run), spec, run)
    asked = [rec.ask() for _ in range(7)]
    for i, item in enumerate(asked):
        if i == 5:
            continue  # still running when the study breaks
        status = {3: "failed", 4: "diverged"}.get(i, "completed")
        rec.tell(0, {"key": item["key"], "status": status, "seed": 0, "node": "n1",
                    "metrics": {"mse": 0.1 * (i + 1), "cka": 1.0 / (i + 1), "r2": 0.5}
                    if status == "completed" else {},
                    "error": None if status == "completed" else f"boom {i}",
                    "started_at": 1000.0 + i, "ended_at": 1010.0 + i,
                    "history": [{"epoch": 0, "loss": 1.0}]})  # fmt: skip
    rec.close()
    return run


def test_healthy_study_passes(tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    assert study_problem(run / "study.db") is None
    check_study(run)
    assert repair_study(run) is None  # nothing to do


@pytest.mark.parametrize("damage", [b"this is not a database" * 50, b""])
def test_corrupt_study_names_the_repair_command(tmp_path: Path, damage: bytes) -> None:
    run = _run_folder(tmp_path)
    (run / "study.db").write_bytes(damage)
    with pytest.raises(ValueError, match=rf"study.db in '{run}' is corrupt \(.+\): run "
                                         rf"`fairsearch repair {run}` to rebuild it from "
                                         r"trials.parquet"):
        check_study(run)


def test_missing_tables_are_named(tmp_path: Path) -> None:
    import sqlite3

    run = _run_folder(tmp_path)
    with sqlite3.connect(run / "study.db") as con:
        con.execute("DROP TABLE trial_values")
    assert study_problem(run / "study.db") == "tables missing: trial_values"


def test_repair_rebuilds_the_same_trials(tmp_path: Path, capsys) -> None:
    run = _run_folder(tmp_path)
    url = f"sqlite:///{run / 'study.db'}"
    before = optuna.load_study(study_name="rep", storage=url).get_trials()
    table = pd.read_parquet(run / "trials.parquet")
    (run / "study.db").write_bytes(b"\x00garbage" * 100)
    assert main(["repair", str(run)]) == 0
    out = capsys.readouterr().out
    assert "rebuilt" in out and "6 trials (4 completed, 1 gaps filled as interrupted)" in out
    assert len(list(run.glob("study.db.corrupt-*"))) == 1
    check_study(run)
    after = optuna.load_study(study_name="rep", storage=url).get_trials()
    done = [t for t in before if t.state.is_finished()]
    rebuilt = {t.number: t for t in after}
    assert sum(t.state == TrialState.COMPLETE for t in after) == 4
    for t in done:  # same numbers, states, values, parameters and attributes
        r = rebuilt[t.number]
        assert r.state == t.state and r.values == t.values
        assert r.params == t.params
        assert r.distributions == t.distributions
        got, want = r.user_attrs[RECORD], t.user_attrs[RECORD]
        for key in ("status", "error", "metrics", "seed", "node", "history"):
            assert got.get(key) == want.get(key), key
        assert math.isclose(got["started_at"], want["started_at"])
        assert math.isclose(got["ended_at"], want["ended_at"])
    assert rebuilt[5].state == TrialState.FAIL and RECORD not in rebuilt[5].user_attrs
    # The recorder reads the rebuilt study back into the same table.
    spec_rows = pd.read_parquet(run / "trials.parquet")
    pd.testing.assert_frame_equal(spec_rows, table)
    # A resumed search continues from it: the gap counts as interrupted, outside the budget.
    from fairsearch.spec.schema import load_spec

    spec = load_spec(run / "spec.yaml")
    rec = Recorder(open_study(spec, run, resume=True), spec, run)
    assert rec.done() == 6 and rec.counts["interrupted"] == 1
    rec.write_tables()
    again = pd.read_parquet(run / "trials.parquet")
    pd.testing.assert_frame_equal(again[again["number"] != 5].reset_index(drop=True), table)


def test_repair_needs_trials_parquet(tmp_path: Path, capsys) -> None:
    (tmp_path / "spec.yaml").write_text("name: x\n")
    assert main(["repair", str(tmp_path)]) == 2
    assert "has no trials.parquet: cannot rebuild its study" in capsys.readouterr().err
