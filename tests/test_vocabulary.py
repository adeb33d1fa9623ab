"""One vocabulary: every name a stage writes has its words where the name is made (a family's
``metric_info``, the audit's terms), and the report keeps no table of names of its own."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fairsearch.analysis.audit.stage import TransferSource, audit_representations
from fairsearch.data import synthetic_embeddings, synthetic_regression
from fairsearch.families import FAMILIES, Metric, TrialSettings, get_family, train_one
from fairsearch.families._metrics import ROLES
from fairsearch.probes.registry import AUDIT_METRICS, PROBES
from fairsearch.report.glossary import glossary_entries
from fairsearch.runfolder.names import metric_label, model_label, probe_label

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("family", "data"), [
    ("wrapper", synthetic_regression(n=200, seed=0, n_train=150)),
    ("translator", synthetic_embeddings(n=300, d=8, seed=0)),
])
def test_every_metric_and_history_term_a_family_reports_is_declared(family: str, data) -> None:
    fam = get_family(family)
    out = train_one(fam, {}, data, TrialSettings(epochs=1, batch_size=64))
    reported = set(out["metrics"]) | {k for row in out["history"] for k in row} - {"epoch"}
    assert reported, "the family reported nothing"
    undeclared = reported - set(fam.metric_info)
    assert not undeclared, f"{family} reports {sorted(undeclared)} without a metric_info entry"
    assert set(fam.metrics(None)) <= set(fam.metric_info)
    for name, info in fam.metric_info.items():
        assert metric_label(name) == info.label
    assert set(fam.baselines(data)) <= set(fam.baseline_labels)


def test_a_metric_name_means_one_thing_in_every_family() -> None:
    seen: dict[str, Metric] = {}
    for fam in FAMILIES.values():
        for name, info in fam.metric_info.items():
            assert seen.setdefault(name, info) == info, f"{name} declared two ways"
        for name in set(fam.metric_info) & set(AUDIT_METRICS):  # e.g. f1: the same words
            assert fam.metric_info[name].label == AUDIT_METRICS[name].label, name


def test_metric_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match=r"`direction` must be 'maximize' or 'minimize', but got 'up'"):
        Metric("x", "up", "utility")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`role` must be one of utility, leakage, loss, check, "
                                         r"but got 'fun'"):
        Metric("x", "minimize", "fun")  # type: ignore[arg-type]


def _names_in(table) -> tuple[set[str], set[str]]:
    probes = {str(p).split("@")[0] for p in table["probe"]}
    metrics = {str(m).partition("[")[0] for m in table["metric"]}
    return probes, metrics


def test_every_probe_and_metric_a_real_audit_writes_has_a_term() -> None:
    rng = np.random.default_rng(0)
    n = 240
    q, y, extra = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 3, n)
    Z = rng.normal(size=(n, 4)) + q[:, None]
    source = TransferSource(rng.normal(size=(100, 4)), {"extra": rng.integers(0, 3, 100)})
    categorical = audit_representations({"original": Z, "trial-3/seed-0": 0.5 * Z}, q, y=y,
                                        probes=("logistic",), extras={"extra": extra},
                                        transfer_source=source, n_boot=20, repeats=1)
    continuous = audit_representations({"original": Z}, rng.normal(size=n), n_boot=20)
    for table in (categorical, continuous):
        probes, metrics = _names_in(table)
        assert probes - set(PROBES) == set(), "probes without a term in analysis/terms.py"
        assert metrics - set(AUDIT_METRICS) == set(), "metrics without a term"
    probes, metrics = _names_in(categorical)
    assert "mdl" in probes and probe_label("mdl") == "online code"
    glossary = dict(glossary_entries(probes | metrics))
    assert "online code" in glossary and "mdl" not in glossary  # the real name is explained
    assert {model_label(m) for m in categorical["model"]} >= {"original", "#3 seed 0", "floor"}


def test_the_report_keeps_no_table_of_metric_or_probe_names() -> None:
    names = {n for fam in FAMILIES.values() for n, info in fam.metric_info.items()
             if info.role != "loss"} | set(PROBES) | set(AUDIT_METRICS)
    names -= {"model", "kernel"} | set(ROLES)  # words the report uses for other things
    for path in sorted((ROOT / "fairsearch" / "report").glob("*.py")):
        text = path.read_text()
        keys = set(re.findall(r'"([a-z_]+)"\s*:', text))  # dict-literal keys
        assert not keys & names, f"{path.name} keys a table by {sorted(keys & names)}"
