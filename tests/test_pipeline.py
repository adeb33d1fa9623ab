from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from fairsearch.cli import main
from fairsearch.pipeline import run_pipeline


def test_from_a_later_stage_needs_a_run_folder(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    with pytest.raises(ValueError, match="--from retrain continues a run folder, but got the spec"):
        run_pipeline(spec, start="retrain")
    with pytest.raises(ValueError, match="--from must be one of search, pareto"):
        run_pipeline(spec, start="deploy")
    with pytest.raises(ValueError, match="does not exist"):
        run_pipeline(tmp_path / "nowhere.yaml")
    with pytest.raises(ValueError, match="RUN_DIR must be a run folder with spec.yaml"):
        run_pipeline(tmp_path / "..", start="report")


@pytest.fixture()
def ray_cleanup():
    yield
    import ray

    ray.shutdown()


@pytest.mark.slow
@pytest.mark.ray
def test_run_produces_report_and_stages_rerun_alone(tmp_path, capsys, monkeypatch, ray_cleanup):
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
    out = capsys.readouterr()
    report = out.out.strip().splitlines()[-1]
    for stage in ("search", "pareto", "retrain", "audit", "decide", "report"):
        assert f"[{stage}] done in " in out.err
    run = next((tmp_path / "staging").glob("*/*"))  # staging/<mkdtemp folder>/<run>
    uploaded = remote / run.name
    assert report == f"file://{uploaded}/report/report.html"
    for name in ("report/report.html", "audit.parquet", "stages.json"):
        assert (uploaded / name).is_file(), name
    assert next((uploaded / "retrain").glob("*/seed-0/model.pt")).is_file()
    for name in ("trials.parquet", "pareto.parquet", "retrain.parquet", "audit.parquet"):
        assert (run / name).is_file(), name
    retrain = pd.read_parquet(run / "retrain.parquet")
    assert set(retrain["seed"]) == {0, 1} and retrain["config_id"].nunique() <= 2
    assert {"metric.mse", "test.mse", "status", "duration_s"} <= set(retrain.columns)
    summary = pd.read_parquet(run / "retrain_summary.parquet")
    assert {"metric.mse.mean", "metric.cka.std", "robust_front", "unstable"} <= set(summary.columns)
    audit = pd.read_parquet(run / "audit.parquet")
    assert {"original"} < set(audit["model"])
    timings = json.loads((run / "stages.json").read_text())
    assert set(timings) == {"search", "pareto", "retrain", "audit", "decide", "report"}
    assert (run / "verdict.json").is_file()

    # A stage re-runs alone from the files of the stages before it.
    (run / "report" / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    assert (run / "report" / "report.html").is_file()
    # Retraining again replaces the earlier models, and the audit sees only the new ones.
    again = ["retrain", str(run), "--top-k", "1", "--seeds", "0", "--epochs", "1", "--quiet"]
    assert main(again) == 0
    kept = [p.relative_to(run / "retrain").as_posix() for p in run.glob("retrain/*/seed-*")]
    assert kept == [f"{pd.read_parquet(run / 'retrain.parquet')['config_id'].iloc[0]}/seed-0"]
    assert main(["run", str(run), "--from", "audit", "--quiet"]) == 0
    models = set(pd.read_parquet(run / "audit.parquet")["model"])
    assert len(models) == 2 and "original" in models
    assert json.loads((run / "stages.json").read_text())["search"] == timings["search"]
