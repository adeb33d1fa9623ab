"""The checks that run while Ray starts: they use one BLAS thread (OpenBLAS shuts its pool down
before each fork of Ray's start, and a threaded BLAS call in flight then never returns), and when
they fail, no lane starts on the Ray that comes up afterwards."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from fairsearch import pipeline


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_the_checks_run_on_one_blas_thread_until_ray_is_up(monkeypatch) -> None:
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl controls")
    seen: dict[str, list[int]] = {}

    class Starting:
        def __init__(self, address, then=None) -> None:  # noqa: ANN001
            pass

        def wait(self) -> None:
            seen["wait"] = _blas_threads()

    def preflight(spec, address=None) -> None:  # noqa: ANN001
        seen["preflight"] = _blas_threads()
        assert np.ones((64, 64)) @ np.ones(64) is not None

    monkeypatch.setattr("fairsearch.executor.ray_start.RayStart", Starting)
    monkeypatch.setattr("fairsearch.spec.validate.preflight", preflight)
    monkeypatch.setattr("fairsearch.io.signals.install", lambda: None)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = object()
    with threadpool_limits(2, user_api="blas"):  # `make test` starts the pool at one thread
        assert set(_blas_threads()) == {2}
        assert pipeline._before_search(lambda: spec, None) is spec
    assert set(seen["preflight"]) == {1}
    assert set(seen["wait"]) == {1}


def test_checks_that_fail_before_ray_is_up_start_no_lanes(monkeypatch) -> None:
    """Ray comes up after the checks failed (it takes seconds): its start-up step starts neither
    the lanes' dispatcher nor lanes, which a refused run would only close again (25 s)."""
    started: list[str] = []

    class Starting:
        def __init__(self, address, then=None) -> None:  # noqa: ANN001
            self.then = then

        def wait(self) -> None:  # pragma: no cover - the checks fail first
            raise AssertionError("waited for Ray after the checks failed")

        def abandon(self, before_shutdown=None) -> None:  # noqa: ANN001
            self.then()  # Ray is up now, after the failure
            before_shutdown()

    def preflight(spec, address=None) -> None:  # noqa: ANN001
        raise ValueError("`trial.gpus_per_worker`: this machine has 0")

    monkeypatch.setattr("fairsearch.executor.ray_start.RayStart", Starting)
    monkeypatch.setattr("fairsearch.spec.validate.preflight", preflight)
    monkeypatch.setattr("fairsearch.executor.dispatcher.prepare_dispatcher",
                        lambda: started.append("dispatcher"))  # fmt: skip
    monkeypatch.setattr("fairsearch.search.engine.prestart_lanes",
                        lambda spec: started.append("lanes"))  # fmt: skip
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ValueError, match="gpus_per_worker"):
        pipeline._before_search(lambda: object(), None)
    assert started == []


_RACE = textwrap.dedent("""
    import subprocess, sys, threading, time
    import numpy as np
    from threadpoolctl import threadpool_limits
    done = threading.Event()
    def fork_while_computing():
        while not done.is_set():
            subprocess.run(["true"], preexec_fn=lambda: None)  # a fork, as Ray's start does
    threading.Thread(target=fork_while_computing, daemon=True).start()
    z, w = np.ones((4000, 16)), np.ones((16, 384))
    with threadpool_limits(limits=1, user_api="blas"):
        end = time.time() + float(sys.argv[1])
        while time.time() < end:
            z @ w
    done.set()
    print("finished")
""")


@pytest.mark.slow
def test_one_blas_thread_survives_forks_from_another_thread() -> None:
    """The guard itself: matrix products under the limit while another thread forks finish."""
    proc = subprocess.run([sys.executable, "-c", _RACE, "5"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.stdout.strip() == "finished", proc.stderr
