"""Audit units: written as they finish, a killed audit resumes without refitting, Ray tasks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pytest

from fairsearch.analysis.audit.control import CONTROL
from fairsearch.analysis.audit.representations import audit_representations
from fairsearch.analysis.audit.units import SerialExecutor, Settings, Unit, UnitStore
from fairsearch.probes.ladder import CrossFit

PROBES = ("logistic", "knn")


@pytest.fixture(scope="module")
def reps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    q = rng.integers(0, 2, 160)
    leak = rng.normal(size=(160, 4))
    leak[:, 0] += 1.5 * q
    return {"q": q, "y": rng.integers(0, 2, 160), "leak": leak,
            "noise": rng.normal(size=(160, 4))}


class Counting(SerialExecutor):
    """Serial, counting the units it fits; ``stop_after`` units, it dies (a killed audit)."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.fitted: list[Unit] = []
        self.stop_after = stop_after

    def run(self, arrays: Mapping[str, np.ndarray], codes: np.ndarray, k: int,
            units: Sequence[Unit], settings: Settings) -> Iterator[tuple[Unit, CrossFit]]:
        for unit, fits in super().run(arrays, codes, k, units, settings):
            if self.stop_after is not None and len(self.fitted) == self.stop_after:
                raise KeyboardInterrupt("killed")
            self.fitted.append(unit)
            yield unit, fits


def _audit(reps: dict[str, np.ndarray], **kw) -> pd.DataFrame:
    return audit_representations({"leak": reps["leak"], "noise": reps["noise"]}, reps["q"],
                                 y=reps["y"], probes=PROBES, n_boot=50, **kw)


def test_a_killed_audit_resumes_without_refitting_finished_units(reps, tmp_path) -> None:
    fresh = _audit(reps, halving=False)
    store = UnitStore(tmp_path / "audit_units")
    killed = Counting(stop_after=4)
    with pytest.raises(KeyboardInterrupt):
        _audit(reps, executor=killed, store=store, halving=False)
    assert len(killed.fitted) == 4 and len(list(store.folder.glob("*.npz"))) == 4
    resumed = Counting()
    table = _audit(reps, executor=resumed, store=store, halving=False)
    units = {Unit(m, f, r) for m in (CONTROL, "leak", "noise") for f in ("majority", *PROBES)
             for r in (0, 1)}
    assert set(resumed.fitted) == units - set(killed.fitted)  # the 14 left, nothing refitted
    pd.testing.assert_frame_equal(table, fresh)  # same table as an audit never killed
    again = Counting()
    _audit(reps, executor=again, store=store, halving=False)
    assert again.fitted == []


def test_a_unit_whose_inputs_changed_is_fitted_again(reps, tmp_path) -> None:
    store = UnitStore(tmp_path)
    _audit(reps, store=store)
    moved = dict(reps, noise=reps["noise"] + 1e-3)
    counting = Counting()
    _audit(moved, executor=counting, store=store)
    assert {u.representation for u in counting.fitted} == {"noise"}
    other_seed = Counting()
    _audit(reps, executor=other_seed, store=store, seed=1, halving=False)
    assert len(other_seed.fitted) == 3 * 3 * 2  # control, leak, noise x kinds x fold seeds


@pytest.mark.slow
@pytest.mark.ray
def test_units_as_ray_tasks_put_each_array_once(reps, ray_local, monkeypatch) -> None:
    from fairsearch.analysis.audit.on_ray import RayExecutor

    puts: list[tuple[int, ...]] = []
    real_put = ray_local.put

    def counting_put(value, *args, **kwargs):
        puts.append(np.shape(value))
        return real_put(value, *args, **kwargs)

    monkeypatch.setattr(ray_local, "put", counting_put)
    table = _audit(reps, executor=RayExecutor())
    # q, each representation and the shuffled-q control
    assert sorted(puts) == sorted([(160,), (160, 4), (160, 4), (160, 4)])
    pd.testing.assert_frame_equal(table, _audit(reps))


@pytest.mark.slow
@pytest.mark.ray
def test_a_killed_audit_on_ray_resumes_without_refitting(reps, ray_local, tmp_path) -> None:
    from fairsearch.analysis.audit.on_ray import RayExecutor

    class Dying(RayExecutor):
        """Ray tasks; the driver dies after ``stop_after`` finished units (the rest cancelled)."""

        def __init__(self, stop_after: int | None = None) -> None:
            super().__init__()
            self.fitted: list[Unit] = []
            self.stop_after = stop_after

        def run(self, arrays, codes, k, units, settings):
            for unit, fit in super().run(arrays, codes, k, units, settings):
                if self.stop_after is not None and len(self.fitted) == self.stop_after:
                    raise KeyboardInterrupt("killed")
                self.fitted.append(unit)
                yield unit, fit

    store = UnitStore(tmp_path / "audit_units")
    killed = Dying(stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        _audit(reps, executor=killed, store=store, halving=False)
    assert len(list(store.folder.glob("*.npz"))) == 5
    resumed = Dying()
    table = _audit(reps, executor=resumed, store=store, halving=False)
    assert not set(resumed.fitted) & set(killed.fitted) and len(resumed.fitted) == 18 - 5
    pd.testing.assert_frame_equal(table, _audit(reps, halving=False))


def test_halving_skips_a_kind_far_below_the_worst_case_and_says_so(reps) -> None:
    strong = dict(reps, leak=np.c_[reps["leak"][:, :1] * 3.0, reps["leak"][:, 1:]])
    counting = Counting()
    table = _audit(strong, executor=counting)
    seeds = table[table.metric == "fold_seeds"].set_index(["model", "probe"])["value"]
    # majority (0.5) lies far below a strong leak: it gets one fold seed, nothing else is cut
    assert seeds[("leak", "majority")] == 1 and seeds[("leak", "logistic")] == 2
    assert (seeds.xs("noise") == 2).all()
    assert Unit("leak", "majority", 1) not in counting.fitted
    assert len(counting.fitted) == 3 * 3 * 2 - 1


def test_a_unit_fitted_by_another_recipe_is_not_reused(reps, tmp_path, monkeypatch) -> None:
    from fairsearch.probes.ladder import _factory

    store = UnitStore(tmp_path)
    unit, settings = Unit("leak", "knn", 0), Settings(5, 2, 0, "sklearn")
    before = store._key(reps["leak"], reps["q"], unit, settings)
    real = _factory._kind

    def other(name, seed, balanced):  # the knn grid of another version
        est, grid = real(name, seed, balanced)
        return (est.set_params(estimator__kneighborsclassifier__n_neighbors=7), grid
                ) if name == "knn" else (est, grid)

    monkeypatch.setattr(_factory, "_kind", other)
    assert store._key(reps["leak"], reps["q"], unit, settings) != before
