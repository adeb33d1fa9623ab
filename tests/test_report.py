from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fairsearch.analysis.pareto import run_pareto
from fairsearch.report.writer import write_report

SPEC = {
    "name": "fake",
    "data": {"name": "synthetic_regression", "n": 800, "sha256": "abc123"},
    "model": "wrapper",
    "objectives": [{"metric": "mse", "direction": "minimize"},
                   {"metric": "cka", "direction": "minimize"}],
    "space": {"mu": {"type": "float", "low": 0.0, "high": 10.0}},
    "search": {"algorithm": "nsga2", "trials": 12, "max_concurrent": 2, "seed": 0},
    "post": {"select": {"minimize": "mse", "subject_to": ["cka <= 0.45"]}, "seeds": [0, 1]},
}


def _fake_run(path: Path, *, audit: bool = True, pareto: bool = True) -> Path:
    rng = np.random.default_rng(0)
    n = 12
    mu = np.linspace(0, 8, n)
    trials = pd.DataFrame({
        "trial_id": [f"r_{i:05d}" for i in range(n)], "number": np.arange(n),
        "status": ["completed"] * (n - 1) + ["diverged"], "error": [None] * (n - 1) + ["nan loss"],
        "seed": np.arange(n), "param.mu": mu, "param.lr": 3e-3,
        "objective.mse": 0.09 + 0.14 * mu + rng.normal(0, 0.05, n),
        "objective.cka": 0.62 - 0.036 * mu + rng.normal(0, 0.02, n),
        "metric.r2": 0.9 - 0.05 * mu,
    })
    trials.loc[n - 1, ["objective.mse", "objective.cka"]] = np.nan
    trials.to_parquet(path / "trials.parquet")
    hist = pd.DataFrame([{"trial_id": t, "epoch": e, "total": 2.0 / (e + 1), "task": 1.0 / (e + 1),
                          "dependence": 0.5 + 0.1 / (e + 1)}
                         for t in trials["trial_id"] for e in range(10)])
    hist.to_parquet(path / "history.parquet")
    (path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    if pareto:
        run_pareto(path)
    if audit:
        pd.DataFrame({
            "model": ["original", "original", "cfg-3/seed-0", "cfg-3/seed-0"],
            "target": ["q"] * 4, "probe": ["mlp", "logistic", "mlp", "logistic"],
            "metric": ["balanced_accuracy"] * 4, "value": [0.912, 0.871, 0.734, 0.512],
            "ci_low": [0.881, 0.842, 0.701, 0.468], "ci_high": [0.943, 0.899, 0.766, 0.556],
            "chance": [0.5] * 4,
        }).to_parquet(path / "audit.parquet")
    return path


def test_report_files_and_content(tmp_path: Path) -> None:
    html_path = write_report(_fake_run(tmp_path))
    out = tmp_path / "report"
    for name in ("report.html", "report.md", "report.json", "trade_off.png", "hypervolume.png",
                 "loss_curves.png"):
        assert (out / name).is_file(), name
    page = html_path.read_text()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for number in ("0.734", "[0.701, 0.766]", "0.912"):
        assert number in page and number in (out / "report.md").read_text()
    content = json.loads((out / "report.json").read_text())
    chosen = content["chosen"]
    assert chosen["objective.cka"] <= 0.45
    assert content["manifest"]["data_hash"] == "abc123"
    assert len(content["manifest"]["spec_sha256"]) == 64
    assert content["manifest"]["packages"]["pandas"] == pd.__version__
    pinned = yaml.safe_load(content["reproduce_yaml"])
    assert pinned["space"]["mu"] == {"type": "categorical", "choices": [chosen["param.mu"]]}
    assert pinned["search"]["trials"] == 1
    text = " ".join(content["notice"])
    assert "costs" in text and "mlp" in text and "above chance" in text
    assert content["missing"] == ["no retraining yet: run `fairsearch retrain`"]


def test_report_without_optional_stages(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, audit=False, pareto=False)
    (run / "history.parquet").unlink()
    write_report(run)
    content = json.loads((run / "report" / "report.json").read_text())
    assert content["audit"] is None and content["chosen"] is None
    page = (run / "report" / "report.html").read_text()
    assert "no audit yet" in page and "no Pareto analysis yet" in page
    assert content["figures"] == ["trade_off.png"]


def test_report_cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fairsearch.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "no spec.yaml" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium on PATH")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    html_path = write_report(_fake_run(tmp_path))
    png = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
         "--window-size=1200,2000", html_path.resolve().as_uri()],
        check=True, capture_output=True, timeout=120)
    assert png.is_file() and png.stat().st_size > 10_000
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    assert img.std() > 0.05  # not a blank page
    dark = (img.mean(-1) < 0.5).mean()
    assert dark > 0.005
