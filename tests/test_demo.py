from __future__ import annotations

import json

from fairsearch.cli import main
from fairsearch.families.wrapper.demo import sweep


def test_demo_sweep_trades_accuracy_for_independence():
    points, histories, _, _ = sweep(progress=False)
    ckas = [p.cka for p in points]
    assert all(a > b for a, b in zip(ckas, ckas[1:], strict=False)), ckas
    assert points[-1].test_mse > 5 * points[0].test_mse
    # At mu = 0 the wrapper adds nothing: total equals the task term.
    assert all(r.total == r.task for r in histories[0.0])


def test_demo_command_prints_table_and_writes_plots(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--mus", "0", "8", "--epochs", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test MSE" in out and "8.00" in out
    for name in ("tradeoff.png", "loss_decomposition.png", "predictions_vs_q.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert len(json.loads((tmp_path / "results.json").read_text())) == 2


def test_demo_rejects_negative_mu(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--mus", "-1"]) == 2
    assert "every mu must be >= 0" in capsys.readouterr().err
