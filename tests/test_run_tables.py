"""The run folder's tables are declared once (fairsearch.runfolder.tables) and checked when written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fairsearch.runfolder.tables import TABLES, check_table, write_table

DOCS = Path(__file__).resolve().parent.parent / "docs" / "schemas.md"


def test_the_stages_write_every_declared_table_as_declared(tiny_runs) -> None:
    run = tiny_runs["audit"]
    for name, schema in TABLES.items():
        table = pd.read_parquet(run / name)
        assert len(table), name
        assert schema.problems(table) == [], name


def test_a_renamed_column_is_refused_where_it_is_written(tiny_runs, tmp_path) -> None:
    table = pd.read_parquet(tiny_runs["audit"] / "retrain.parquet").rename(
        columns={"config_id": "config"})
    with pytest.raises(ValueError, match=r"retrain.parquet .*'config_id' is missing.*"
                                         r"'config' is not declared"):  # fmt: skip
        write_table(table, tmp_path / "retrain.parquet")
    assert not any(tmp_path.iterdir())


def test_a_column_of_the_wrong_kind_is_refused(tiny_runs) -> None:
    table = pd.read_parquet(tiny_runs["audit"] / "pareto.parquet")
    table["on_front"] = table["on_front"].map({True: "yes", False: "no"})
    with pytest.raises(ValueError, match=r"'on_front' holds \w+, not bool"):
        check_table(table, "pareto.parquet")


def test_columns_named_by_the_run_are_declared_by_prefix(tiny_runs) -> None:
    trials = pd.read_parquet(tiny_runs["search"] / "trials.parquet")
    check_table(trials.assign(**{"metric.extra": 0.5}), "trials.parquet")
    with pytest.raises(ValueError, match=r"'metric.extra' holds \w+, not float"):
        check_table(trials.assign(**{"metric.extra": "high"}), "trials.parquet")


def test_every_declared_table_is_described_for_a_person() -> None:
    text = DOCS.read_text()
    assert [name for name in TABLES if f"`{name}`" not in text] == []
