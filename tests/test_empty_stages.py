"""Every stage after the search survives empty or all-failed inputs with a message (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fairsearch.analysis.audit.stage import run_stage
from fairsearch.analysis.pareto.stage import run_pareto
from fairsearch.analysis.retrain.plan import plan_retrain
from fairsearch.analysis.retrain.stage import run_retrain
from fairsearch.cli import main
from fairsearch.search.recorder import Recorder, write_spec
from fairsearch.search.study import open_study
from fairsearch.spec.schema import parse_spec


def _all_failed_run(tmp_path: Path, n: int = 3) -> Path:
    spec = parse_spec({
        "name": "fail", "data": {"name": "synthetic_regression", "n": 300, "n_train": 200},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": "wrapper_mlp.yaml",
        "search": {"algorithm": "random", "trials": n, "max_concurrent": n},
    })  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    write_spec(spec, run / "spec.yaml")
    rec = Recorder(open_study(spec, run), spec, run)
    for i, item in enumerate([rec.ask() for _ in range(n)]):
        rec.tell(0, {"key": item["key"], "status": "diverged" if i else "failed",
                     "error": f"RuntimeError: out of memory {i}", "started_at": 1.0,
                     "ended_at": 2.0})  # fmt: skip
    rec.close()
    return run


def test_pareto_of_all_failed_trials_writes_an_empty_front(tmp_path: Path, capsys) -> None:
    run = _all_failed_run(tmp_path)
    result = run_pareto(run)
    table = pd.read_parquet(run / "pareto.parquet")
    assert len(table) == 3 and not table["on_front"].any() and not table["chosen"].any()
    summary = json.loads((run / "pareto.json").read_text())
    assert summary["front_size"] == 0 and summary["chosen_trial_id"] is None
    assert summary["hypervolume"] == 0.0
    assert result.notes[0] == ("no completed trial: the front is empty (3 trials: 2 diverged, "
                               "1 failed; first error: RuntimeError: out of memory 0)")
    assert "[pareto] no completed trial: the front is empty" in capsys.readouterr().err
    assert main(["pareto", str(run)]) == 0
    assert "front: 0 of 3 trials" in capsys.readouterr().out


def test_pareto_of_no_trial_at_all(tmp_path: Path) -> None:
    run = _all_failed_run(tmp_path, n=1)
    trials = pd.read_parquet(run / "trials.parquet")
    trials.iloc[:0].to_parquet(run / "trials.parquet")
    result = run_pareto(run)
    assert result.notes == ["no completed trial: the front is empty (no trial has finished)"]
    assert len(pd.read_parquet(run / "pareto.parquet")) == 0


def test_retrain_with_an_empty_front_says_so(tmp_path: Path, capsys) -> None:
    run = _all_failed_run(tmp_path)
    run_pareto(run)
    assert plan_retrain(pd.read_parquet(run / "trials.parquet"),
                        pd.read_parquet(run / "pareto.parquet"), 3) == []
    with pytest.raises(ValueError, match=r"nothing to retrain: the Pareto front of '.*run' is "
                                         r"empty, no trial completed \(3 trials: 2 diverged, "
                                         r"1 failed; first error: RuntimeError: out of memory 0\)"):
        run_retrain(run)
    assert main(["retrain", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fairsearch retrain: error: nothing to retrain" in err and "Traceback" not in err
    assert not (run / "retrain.parquet").exists()


def test_audit_after_every_seed_failed_names_the_reason(tmp_path: Path, capsys) -> None:
    run = _all_failed_run(tmp_path)
    pd.DataFrame({"config_id": ["cfg-1", "cfg-1"], "trial_id": ["t", "t"], "seed": [0, 1],
                  "status": ["failed", "diverged"],
                  "error": ["RuntimeError: CUDA out of memory", "loss is nan at epoch 2"],
                  "duration_s": [1.0, 1.0]}).to_parquet(run / "retrain.parquet")  # fmt: skip
    with pytest.raises(ValueError, match=r"nothing to audit in '.*run': no retrained seed "
                                         r"completed \(2 retrained seeds: 1 failed, 1 diverged; "
                                         r"first error: cfg-1 seed 0: RuntimeError: CUDA out"):
        run_stage(run)
    assert main(["audit", str(run)]) == 2
    assert "nothing to audit" in capsys.readouterr().err
    assert not (run / "audit.parquet").exists()


def test_audit_before_retrain_says_to_retrain(tmp_path: Path) -> None:
    run = _all_failed_run(tmp_path)
    with pytest.raises(ValueError, match="has no retrained models: run `fairsearch retrain`"):
        run_stage(run)
