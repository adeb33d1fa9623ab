"""The in-process executor: the lanes' contract (Source, work) run here, without Ray, with the
same recorder, study and tables; one seeded spec gives the same trials as on a Ray lane."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairsearch.executor.inprocess import run_inprocess
from fairsearch.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent


class _Items:
    """A minimal Source: a fixed list, results kept."""

    def __init__(self, n: int) -> None:
        self.todo = [{"key": i, "x": float(i)} for i in range(n)]
        self.results: list[dict] = []
        self.pending = 0

    def ask(self, lane: int):
        if not self.todo:
            return None
        self.pending += 1
        return self.todo.pop(0)

    def tell(self, lane: int, result) -> None:
        self.pending -= 1
        self.results.append(dict(result))

    def fail(self, key, reason: str) -> None:
        self.tell(-1, {"key": key, "status": "failed", "error": reason})

    def finished(self) -> bool:
        return not self.todo and not self.pending

    def flush(self) -> None:
        return None


def _work(item, ctx):
    if item["key"] == 2:
        raise ValueError("bad item")
    return {"status": "completed", "metrics": {"y": item["x"] ** 2}, "rows": len(ctx.data)}


def test_every_item_is_told_once_and_an_exception_is_a_failed_result() -> None:
    source = _Items(4)
    assert run_inprocess(source, _work, data=[1, 2, 3]) == 4
    by_key = {r["key"]: r for r in source.results}
    assert sorted(by_key) == [0, 1, 2, 3] and source.finished()
    assert by_key[3]["metrics"] == {"y": 9.0} and by_key[3]["rows"] == 3
    assert by_key[2]["status"] == "failed" and "ValueError: bad item" in by_key[2]["error"]
    assert all(r["lane"] == 0 and r["train_s"] >= 0 and "attempt" in r for r in source.results)


def test_items_train_on_the_threads_of_a_lane_and_the_count_is_restored() -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []
    try:
        run_inprocess(_Items(2), lambda item, ctx: seen.append(torch.get_num_threads()) or {
            "status": "completed", "metrics": {}}, data=[], threads=1)
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _raw(trials: int = 3) -> dict:
    return {
        "name": "local",
        "data": {"name": "synthetic_regression", "n": 300, "n_train": 200, "seed": 0},
        "model": "wrapper",
        "objectives": [{"metric": "mse", "direction": "minimize"},
                       {"metric": "cka", "direction": "minimize"}],
        "space": "wrapper_mlp.yaml",
        "search": {"algorithm": "nsga2", "trials": trials, "max_concurrent": 1, "seed": 0},
        "trial": {"epochs": 2, "batch_size": 64},
    }


SEARCH_HERE = """
import sys
from fairsearch.search.engine import search_inprocess
from fairsearch.spec import parse_spec
import json
run = search_inprocess(parse_spec(json.loads(sys.argv[1])), storage=sys.argv[2])
print(run)
print(sorted(m for m in sys.modules if m.split(".")[0] == "ray"))
"""


@pytest.mark.slow
def test_a_search_runs_in_process_without_ray(tmp_path: Path) -> None:
    import json

    out = subprocess.run([sys.executable, "-c", SEARCH_HERE, json.dumps(_raw()), str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run_line, ray_modules = out.stdout.strip().splitlines()[-2:]
    assert ray_modules == "[]"
    run = Path(run_line)
    trials = pd.read_parquet(run / "trials.parquet")
    assert (trials["status"] == "completed").sum() == 3
    assert (run / "history.parquet").is_file() and (run / "study.journal").is_file()


def _trials(run: Path) -> pd.DataFrame:
    t = pd.read_parquet(run / "trials.parquet").sort_values("number").reset_index(drop=True)
    cols = ["number", "status"] + [c for c in t if c.startswith(("param.", "objective."))]
    return t[cols]


@pytest.mark.slow
@pytest.mark.ray
def test_one_seeded_spec_gives_the_same_trials_on_both_executors(ray_local, tmp_path: Path) -> None:
    from fairsearch.search.engine import run_search, search_inprocess

    spec = parse_spec(_raw())
    on_ray = _trials(run_search(spec, storage=tmp_path / "ray", quiet=True))
    here = _trials(search_inprocess(spec, storage=tmp_path / "local"))
    assert list(here.columns) == list(on_ray.columns)
    pd.testing.assert_frame_equal(here.drop(columns=[c for c in here if c.startswith("objective.")]),
                                  on_ray.drop(columns=[c for c in on_ray if c.startswith("objective.")]))
    for c in (c for c in here if c.startswith("objective.")):
        assert np.allclose(here[c], on_ray[c], rtol=1e-5, atol=1e-7), c


def test_the_spec_chooses_the_executor() -> None:
    assert parse_spec(_raw()).search.executor == "ray"
    raw = _raw()
    raw["search"]["executor"] = "inprocess"
    assert parse_spec(raw).search.executor == "inprocess"
    raw["search"]["executor"] = "local"  # the old name, read as the new one
    assert parse_spec(raw).search.executor == "inprocess"
    raw["search"]["executor"] = "threads"
    with pytest.raises(ValueError, match=r"`search.executor` must be one of ray, inprocess, but got "
                                         r"'threads'"):  # fmt: skip
        parse_spec(raw)
