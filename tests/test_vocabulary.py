"""One vocabulary: every name a stage writes has its words where the name is made (a family's
``metric_info``, the audit's terms), and the report keeps no table of names of its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from fairsearch.analysis.audit.representations import audit_representations
from fairsearch.analysis.audit.split_probes import TransferSource
from fairsearch.data import synthetic_embeddings, synthetic_regression
from fairsearch.families import FAMILIES, Metric, TrialSettings, get_family, train_one
from fairsearch.families._metrics import ROLES
from fairsearch.probes.registry import AUDIT_METRICS, KINDS, PROBE_KINDS, PROBES
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


#: Literals naming several probe kinds that are a choice made where they stand, not a copy of
#: the vocabulary: (module, enclosing function) -> why.
_CHOICES = {
    ("fairsearch/families/translator/family.py", "leak_engines"):
        "the leak objective's engine per kind on a CPU, measured in bench_search_objective",
}


def _literals(tree: ast.AST) -> list[tuple[str | None, ast.AST]]:
    """Every node of ``tree`` with the name of the function it is in (None at module level)."""
    out: list[tuple[str | None, ast.AST]] = []

    def visit(node: ast.AST, where: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) \
                else where
            out.append((inner, child))
            visit(child, inner)

    visit(tree, None)
    return out


def _copies(path: Path) -> list[str]:
    """Literal collections holding two or more probe kind names, and probe kind labels spelled
    out, in the module at ``path``."""
    names = set(PROBE_KINDS)
    labels = {kind.label for name, kind in KINDS.items() if kind.label != name}
    found = []
    for where, node in _literals(ast.parse(path.read_text())):
        elts: list[ast.expr | None] = []
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elts = list(node.elts)
        elif isinstance(node, ast.Dict):
            elts = list(node.keys)
        hits = [e.value for e in elts if isinstance(e, ast.Constant) and e.value in names]
        rel = path.relative_to(ROOT).as_posix()
        if len(hits) >= 2 and (rel, where) not in _CHOICES:
            found.append(f"{rel}:{node.lineno} lists {hits}")
        if isinstance(node, ast.Constant) and node.value in labels:
            found.append(f"{rel}:{node.lineno} spells the label {node.value!r}")
    return found


def test_each_probe_name_and_label_is_written_once() -> None:
    """The registry is the only module that lists probe kinds or spells their labels: every
    other reads them from it."""
    registry = ROOT / "fairsearch" / "probes" / "registry.py"
    assert _copies(registry), "the check finds nothing even in the registry"
    copies = [c for path in sorted((ROOT / "fairsearch").rglob("*.py")) if path != registry
              for c in _copies(path)]
    assert not copies, "a second copy of the probe vocabulary:\n" + "\n".join(copies)


def test_the_registry_needs_neither_torch_nor_scikit_learn() -> None:
    import subprocess
    import sys

    code = ("import sys; import fairsearch.probes.registry; "
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]
