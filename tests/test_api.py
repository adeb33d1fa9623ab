"""``fairsearch.audit``: the audit of a user's own representation, without a run folder or Ray."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fairsearch
from fairsearch.analysis.audit.leakage import Leak, judge_leak

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(probes=["logistic", "gbt"], n_boot=200)


def _data(n: int, leak: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    Z = rng.normal(size=(n, 8))
    Z[:, 0] += leak * q
    return Z, q, y


def test_a_planted_leak_fails() -> None:
    Z, q, y = _data(1000, leak=1.5)
    result = fairsearch.audit(Z, q, y=y, **FAST)
    assert result.status == "fails", result.reasons
    assert result.worst_case.ci_low > 0.7 and result.selected in ("logistic", "gbt")
    assert result.floor is not None and abs(result.floor.value - 0.5) < 0.06
    assert result.mdl_bits is not None and result.mdl_bits < 0.9 * result.uniform_bits
    assert "recovers q" in result.reasons[0]


def test_pure_noise_passes() -> None:
    Z, q, y = _data(1000, leak=0.0)
    result = fairsearch.audit(Z, q, y=y, **FAST)
    assert result.status == "passes", result.reasons
    w = result.worst_case
    assert w.ci_low < 0.5 < w.ci_high  # chance lies inside the interval
    assert result.mdl_bits is not None and result.mdl_bits >= 0.98 * result.uniform_bits


def test_result_is_frozen_and_reads_in_a_notebook() -> None:
    Z, q, _ = _data(300, leak=1.5)
    result = fairsearch.audit(Z, q, probes=["logistic"], n_boot=100, seeds=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = "passes"  # type: ignore[misc]
    text = str(result)
    assert text.splitlines()[0].startswith(f"fairsearch audit: {result.status.upper()}")
    assert "worst case" in text and "selected probe: logistic" in text
    assert result.floor is None and "floor" not in text  # no y, no floor
    assert set(result.probes["probe"]) == {"majority", "logistic", "worst_case"}
    assert repr(result) == text


def test_the_report_judges_a_leak_as_the_api_does() -> None:
    """One judgement: the verdict's leak rule is :func:`judge_leak`, whose reference is the floor
    when it lies above chance and never less than chance."""
    below = Leak("m", "balanced_accuracy", "worst_case", "mlp", 0.52, 0.50, 0.54, 0.5, 0.45)
    assert below.reference == 0.5 and judge_leak(below)[0] == "passes"
    above = Leak("m", "balanced_accuracy", "worst_case", "mlp", 0.75, 0.70, 0.80, 0.5, 0.6)
    status, why = judge_leak(above)
    assert status == "fails" and "above floor + 0.05 = 0.650" in why
    touching = Leak("m", "balanced_accuracy", "worst_case", "mlp", 0.55, 0.52, 0.58, 0.5, None)
    assert judge_leak(touching)[0] == "borderline"


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(probes=["lda"]), r"`probes` must name probes from .*'svm'.* but got \['lda'\]"),
    (dict(probes="logistic"), r"`probes` must be a list of names .* the string 'logistic'"),
    (dict(seeds=0), r"`seeds` must be an integer >= 1, but got 0"),
    (dict(n_boot=1.5), r"`n_boot` must be an integer >= 1, but got 1.5"),
    (dict(y=np.zeros(7)), r"one row each per sample, but got 100, 100 and 7 rows"),
])
def test_bad_arguments_name_the_key_and_value(kwargs: dict, match: str) -> None:
    Z, q, _ = _data(100, leak=0.0)
    with pytest.raises(ValueError, match=match):
        fairsearch.audit(Z, q, **kwargs)


def test_bad_arrays() -> None:
    with pytest.raises(ValueError, match=r"`Z` must be a numeric 2-D array .* shape \(2, 2, 2\)"):
        fairsearch.audit(np.zeros((2, 2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"one row each per sample, but got 10, 9 and None"):
        fairsearch.audit(np.zeros((10, 2)), np.zeros(9))


def test_the_api_imports_no_ray() -> None:
    code = ("import sys, numpy as np, fairsearch\n"
            "rng = np.random.default_rng(0); q = rng.integers(0, 2, 200)\n"
            "r = fairsearch.audit(rng.normal(size=(200, 3)), q, probes=['logistic'], n_boot=50)\n"
            "print(r.status, sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "[]"


@pytest.mark.slow
def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Auditing your own representation"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    code = block.group(1)
    assert len(code.strip().splitlines()) == 5
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("fairsearch audit: FAILS")
    assert "selected probe" in out.stdout


def test_too_few_rows_a_class_names_the_rows_the_audit_needs() -> None:
    """20 rows: one line naming the rows per class, not scikit-learn's failed fits; without the
    MLP probe fewer rows do, and the audit then runs."""
    Z, q, _ = _data(20, leak=0.0)
    with pytest.raises(ValueError, match=r"every class of `q` needs at least 25 rows for probes "
                                         r".*'mlp'.* but got 20 rows with too few in class\(es\) "
                                         r"\{0: \d+, 1: \d+\}.*without 'mlp' \(they need 5 rows"):
        fairsearch.audit(Z, q, n_boot=20)
    assert fairsearch.audit(Z, q, probes=["logistic"], n_boot=20, fold_seeds=1).n_rows == 20


@pytest.mark.parametrize(("lo", "hi", "clause"), [
    (0.4, 0.6, "(the interval contains it)"), (0.6, 0.7, "(the interval is above it)"),
    (0.3, 0.4, "(the interval is below it)")])  # fmt: skip
def test_the_summary_says_where_the_interval_lies_in_plain_words(lo, hi, clause) -> None:
    Z, q, _ = _data(300, leak=0.0)
    result = fairsearch.audit(Z, q, probes=["logistic"], n_boot=50, fold_seeds=1)
    moved = dataclasses.replace(result, worst_case=dataclasses.replace(
        result.worst_case, ci_low=lo, ci_high=hi))
    chance_line = next(line for line in str(moved).splitlines() if "chance" in line)
    assert chance_line.endswith(clause) and "is contains" not in chance_line
