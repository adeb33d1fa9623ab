"""Derived data (the Adult base-network embeddings) is built once with progress on stderr, then
read from a cache keyed by its lineage: arguments, source files and the code that builds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fairsearch.data import synthetic_embeddings
from fairsearch.data.derived import CACHE_ENV, cached


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def test_built_once_with_progress_then_read_from_the_cache(
        cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "source.csv"
    source.write_text("a,b\n1,2\n")
    builds: list[int] = []

    def build(progress):  # a stand-in for training the base network
        builds.append(1)
        progress("epoch 1/1")
        return synthetic_embeddings(n=200, d=4, seed=0)

    first = cached("toy", {"seed": 0}, [source], build)
    err = capsys.readouterr().err
    assert "fairsearch: building toy once" in err and "fairsearch: toy: epoch 1/1" in err
    again = cached("toy", {"seed": 0}, [source], build)
    assert len(builds) == 1 and capsys.readouterr().err == ""  # read back, silently
    assert np.array_equal(again.X, first.X) and np.array_equal(again.q, first.q)
    (lineage,) = cache.glob("toy-*.json")
    assert '"seed": 0' in lineage.read_text() and "source.csv" in lineage.read_text()
    cached("toy", {"seed": 1}, [source], build)  # another argument: built anew
    source.write_text("a,b\n1,3\n")
    cached("toy", {"seed": 0}, [source], build)  # a changed source file: built anew
    assert len(builds) == 3


def test_a_damaged_cache_is_built_again(cache: Path, capsys: pytest.CaptureFixture) -> None:
    data = synthetic_embeddings(n=200, d=4, seed=0)
    cached("toy", {}, [], lambda progress: data)
    (path,) = cache.glob("toy-*.parquet")
    path.write_bytes(b"not parquet")
    capsys.readouterr()
    again = cached("toy", {}, [], lambda progress: data)
    assert "cannot be read" in capsys.readouterr().err
    assert np.array_equal(again.X, data.X)
