"""A damaged study -> check_study names the repair command; repair rebuilds it from trials.parquet.

The study is ``study.journal`` (Optuna's journal); run folders of earlier versions hold a SQLite
``study.db``, which is still read, resumed and repaired (into a journal)."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from fairsearch.cli import main
from fairsearch.search.recorder import Recorder, write_spec
from fairsearch.search.repair import check_study, repair_study, study_problem
from fairsearch.search.study import load_run_study, open_study, study_file
from fairsearch.search.tables import RECORD
from fairsearch.spec.schema import parse_spec

SPACE = {
    "mu": {"type": "float", "low": 0.0, "high": 10.0, "step": 0.5},
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "width": {"type": "int", "low": 8, "high": 64},
    "dependence": {"type": "categorical", "choices": ["cka", "hsic"]},
    "sigma_f": {"type": "float", "low": 0.2, "high": 5.0, "when": {"dependence": "cka"}},
}


def _run_folder(tmp_path: Path, legacy: bool = False) -> Path:
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
    if legacy:  # what earlier versions wrote: the same study in SQLite
        optuna.create_study(study_name="rep", storage=f"sqlite:///{run / 'study.db'}",
                            directions=["minimize", "minimize"])  # fmt: skip
        assert study_file(run) == run / "study.db"
    rec = Recorder(open_study(spec, run, resume=legacy), spec, run)
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
    assert study_file(run) == run / "study.journal" and not (run / "study.db").exists()
    assert study_problem(run / "study.journal") is None
    check_study(run)
    assert repair_study(run) is None  # nothing to do


def _insert_line(path: Path, at: int, line: bytes) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:at] + [line] + lines[at:]))


@pytest.mark.parametrize("damage", ["garbage", "empty", "middle line", "not an operation",
                                    "no study"])  # fmt: skip
def test_corrupt_study_names_the_repair_command(tmp_path: Path, damage: str) -> None:
    run = _run_folder(tmp_path)
    journal = run / "study.journal"
    if damage == "garbage":
        journal.write_bytes(b"this is not a journal\n" * 50)
    elif damage == "empty":
        journal.write_bytes(b"")
    elif damage == "middle line":
        _insert_line(journal, 3, b'{"op_code": 5, "worker_id": "x", "trial_id": \n')
    elif damage == "not an operation":
        _insert_line(journal, 3, b"[1, 2, 3]\n")
    else:
        journal.write_bytes(b"".join(journal.read_bytes().splitlines(keepends=True)[1:]))
    with pytest.raises(ValueError, match=rf"study.journal in '{run}' is corrupt \(.+\): run "
                                         rf"`fairsearch repair {run}` to rebuild it from "
                                         r"trials.parquet"):
        check_study(run)


def test_an_append_cut_short_by_a_kill_is_dropped_on_resume(tmp_path: Path) -> None:
    """kill -9 during an append leaves a torn last line and Optuna's lock: resuming drops both
    (the operation never happened) and the study goes on; without that, the next append would
    glue onto the torn line and the journal would no longer load."""
    run = _run_folder(tmp_path)
    journal = run / "study.journal"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code":4,"worker_id":"w","trial_id":6,"sta')
    (run / "study.journal.lock").symlink_to(journal)
    assert study_problem(journal) is None
    check_study(run)
    from fairsearch.spec.schema import load_spec

    spec = load_spec(run / "spec.yaml")
    rec = Recorder(open_study(spec, run, resume=True), spec, run)
    assert journal.read_bytes().startswith(whole) and not (run / "study.journal.lock").exists()
    item = rec.ask()
    rec.tell(0, {"key": item["key"], "status": "completed", "metrics": {"mse": 0.5, "cka": 0.5}})
    rec.close()
    check_study(run)
    assert len(load_run_study(run).trials) == 8


def test_a_torn_line_followed_by_more_is_corruption(tmp_path: Path) -> None:
    """The negative control of the test above: what happens when the tail is not dropped."""
    run = _run_folder(tmp_path)
    journal = run / "study.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]) + lines[-1][:-5] + lines[-1])
    assert "is not a journal operation" in study_problem(journal)


def test_repair_rebuilds_the_same_trials(tmp_path: Path, capsys) -> None:
    run = _run_folder(tmp_path)
    before = load_run_study(run).get_trials()
    table = pd.read_parquet(run / "trials.parquet")
    (run / "study.journal").write_bytes(b"\x00garbage" * 100)
    assert main(["repair", str(run)]) == 0
    out = capsys.readouterr().out
    assert "rebuilt" in out and "6 trials (4 completed, 1 gaps filled as interrupted)" in out
    assert len(list(run.glob("study.journal.corrupt-*"))) == 1
    check_study(run)
    after = load_run_study(run, "rep").get_trials()
    _same_trials(before, after)
    # The recorder reads the rebuilt study back into the same table.
    pd.testing.assert_frame_equal(pd.read_parquet(run / "trials.parquet"), table)
    # A resumed search continues from it: the gap counts as interrupted, outside the budget.
    from fairsearch.spec.schema import load_spec

    spec = load_spec(run / "spec.yaml")
    rec = Recorder(open_study(spec, run, resume=True), spec, run)
    assert rec.done() == 6 and rec.counts["interrupted"] == 1
    rec.write_tables()
    again = pd.read_parquet(run / "trials.parquet")
    pd.testing.assert_frame_equal(again[again["number"] != 5].reset_index(drop=True), table)


def _same_trials(before: list, after: list) -> None:
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


# ----------------------------------------------------------------------------- older run folders
def test_a_legacy_sqlite_study_is_read_checked_and_repaired_into_a_journal(tmp_path: Path,
                                                                           capsys) -> None:  # fmt: skip
    import sqlite3

    run = _run_folder(tmp_path, legacy=True)
    assert not (run / "study.journal").exists()
    assert study_problem(run / "study.db") is None
    before = load_run_study(run).get_trials()
    assert len(before) == 7
    table = pd.read_parquet(run / "trials.parquet")
    with sqlite3.connect(run / "study.db") as con:
        con.execute("DROP TABLE trial_values")
    assert study_problem(run / "study.db") == "tables missing: trial_values"
    (run / "study.db").write_bytes(b"this is not a database" * 50)
    with pytest.raises(ValueError, match=rf"study.db in '{run}' is corrupt \(sqlite: .+\)"):
        check_study(run)
    assert main(["repair", str(run)]) == 0
    assert f"rebuilt {run / 'study.journal'}" in capsys.readouterr().out
    assert len(list(run.glob("study.db.corrupt-*"))) == 1 and not (run / "study.db").exists()
    assert study_file(run) == run / "study.journal"
    _same_trials(before, load_run_study(run).get_trials())
    pd.testing.assert_frame_equal(pd.read_parquet(run / "trials.parquet"), table)


def test_repair_needs_trials_parquet(tmp_path: Path, capsys) -> None:
    (tmp_path / "spec.yaml").write_text("name: x\n")
    assert main(["repair", str(tmp_path)]) == 2
    assert "has no trials.parquet: cannot rebuild its study" in capsys.readouterr().err


def test_repair_keeps_a_repeat_and_the_trial_it_repeats(tmp_path: Path) -> None:
    from fairsearch.spec.schema import load_spec

    run = _run_folder(tmp_path)
    spec = load_spec(run / "spec.yaml")
    rec = Recorder(open_study(spec, run, resume=True), spec, run)
    rec.recover()
    rec.study.enqueue_trial(load_run_study(run).trials[0].params)  # a copy of trial 0
    assert rec.ask()["params"] == load_run_study(run).trials[5].params  # the retry comes first
    assert rec.ask() is None  # the copy is told trial 0's result: the budget is met
    rec.interrupt_pending()
    rec.close()
    table = pd.read_parquet(run / "trials.parquet")
    assert table["same_as"].dropna().tolist() == [0]
    (run / "study.journal").write_bytes(b"\x00garbage" * 100)
    assert main(["repair", str(run)]) == 0
    (run / "trials.parquet").unlink()  # rewritten from the rebuilt study alone
    Recorder(open_study(spec, run, resume=True), spec, run).write_tables()
    pd.testing.assert_frame_equal(pd.read_parquet(run / "trials.parquet"), table)
