from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from fairsearch.cli import main


@pytest.mark.slow
@pytest.mark.ray
def test_run_produces_report_and_stages_rerun_alone(tmp_path, capsys, monkeypatch):
    spec = yaml.safe_load(open("search_spaces/smoke_wrapper.yaml"))
    spec["space"] = "search_spaces/wrapper_mlp.yaml"
    spec["search"]["trials"] = 3
    spec["trial"]["epochs"] = 3
    spec["post"].update(top_k=2, seeds=[0, 1])
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    # An object-store URI (file:// here): written to a staging folder, copied after each stage.
    monkeypatch.setenv("FAIRSEARCH_STAGING", str(tmp_path / "staging"))
    remote = tmp_path / "remote"
    assert main(["run", str(path), "--storage", f"file://{remote}", "--quiet"]) == 0
    report = capsys.readouterr().out.strip().splitlines()[-1]
    run = next((tmp_path / "staging").iterdir())
    uploaded = remote / run.name
    assert report == f"file://{uploaded}/report/report.html"
    for name in ("report/report.html", "audit.parquet", "stages.json"):
        assert (uploaded / name).is_file(), name
    assert next((uploaded / "retrain").glob("*/seed-0/model.pt")).is_file()
    for name in ("trials.parquet", "pareto.parquet", "retrain.parquet", "audit.parquet"):
        assert (run / name).is_file(), name
    retrain = pd.read_parquet(run / "retrain.parquet")
    assert set(retrain["seed"]) == {0, 1} and retrain["config_id"].nunique() <= 2
    audit = pd.read_parquet(run / "audit.parquet")
    assert {"original"} < set(audit["model"])
    # A stage re-runs alone from the files of the stages before it.
    (run / "report" / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    assert (run / "report" / "report.html").is_file()
    assert set(json.loads((run / "stages.json").read_text())) >= {"search", "retrain", "report"}
