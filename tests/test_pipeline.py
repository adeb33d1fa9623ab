from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from fairsearch.cli import main


@pytest.mark.slow
@pytest.mark.ray
def test_run_produces_report_and_stages_rerun_alone(tmp_path, capsys):
    spec = yaml.safe_load(open("search_spaces/smoke_wrapper.yaml"))
    spec["space"] = "search_spaces/wrapper_mlp.yaml"
    spec["search"]["trials"] = 3
    spec["trial"]["epochs"] = 3
    spec["post"].update(top_k=2, seeds=[0, 1])
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    storage = tmp_path / "runs"
    assert main(["run", str(path), "--storage", str(storage), "--quiet"]) == 0
    report = capsys.readouterr().out.strip().splitlines()[-1]
    run = next(storage.iterdir())
    assert report.endswith("report/report.html") and (run / "report" / "report.html").is_file()
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
