"""The package works outside the checkout: shipped specs and spaces, ``fairsearch init``, an
optional LEACE, and (slow) a wheel installed into a fresh virtual environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from fairsearch.cli import main
from fairsearch.data import synthetic_embeddings
from fairsearch.families import get_family
from fairsearch.families.translator import family as translator_family
from fairsearch.spec import SPACES_DIR, load_spec
from fairsearch.spec.shipped import init, shipped

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_files_live_inside_the_package() -> None:
    import fairsearch

    package = Path(fairsearch.__file__).parent
    assert SPACES_DIR.parent == package
    names = shipped()
    assert {"smoke_wrapper", "wrapper_mlp", "names_translator"} <= set(names)


def test_init_copies_a_shipped_spec_that_validates_here(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "smoke_wrapper"]) == 0
    copied = tmp_path / "smoke_wrapper.yaml"
    assert copied.read_bytes() == shipped()["smoke_wrapper"].read_bytes()
    # `space: wrapper_mlp.yaml` is not beside the copy: it resolves to the shipped space
    spec = load_spec(copied)
    assert "mu" in [p.name for p in spec.space]
    with pytest.raises(ValueError, match=r"smoke_wrapper.yaml' already exists: .* --force"):
        init("smoke_wrapper", tmp_path)
    assert init("smoke_wrapper", tmp_path, force=True) == copied


def test_init_names_the_shipped_files_for_an_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"NAME must be a shipped spec or space, one of "
                                         r".*smoke_wrapper.* but got 'smoke_wraper' \(did you "
                                         r"mean 'smoke_wrapper'\?\)"):
        init("smoke_wraper", tmp_path)


def test_init_without_a_name_lists_specs_and_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    specs, spaces = out.split("cluster jobs:")[0].split("search spaces:")
    assert specs.startswith("example specs:")
    assert "smoke_wrapper" in specs and "wrapper_mlp" not in specs
    assert "wrapper_mlp" in spaces and "smoke_wrapper" not in spaces


def test_leace_is_skipped_with_a_note_without_concept_erasure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = synthetic_embeddings(n=300, d=8, seed=0)
    family = get_family("translator")
    assert "leace" in family.baselines(data)  # the extra is installed here
    monkeypatch.setattr(translator_family, "leace_available", lambda: False)
    with pytest.warns(UserWarning, match=r"LEACE baseline is skipped: .*fairsearch\[leace\]"):
        out = family.baselines(data)
    assert set(out) == {"original"}


# ---------------------------------------------------------------------------- the wheel
def _every_listed_name_validates(work: Path, env: dict[str, str]) -> None:
    """Every spec `init` lists, and every job spec `init jobs` writes, validates from the
    wheel: adult_resnet in full (its factory comes from the examples/ that init writes beside
    it), the others without loading data (adult_translator's would train its base network)."""
    assert _run(["fairsearch", "--version"], work, env).startswith("fairsearch ")
    _run(["fairsearch", "init", "jobs"], work, env)
    specs = [n for n, p in shipped().items() if "model" in yaml.safe_load(p.read_text())]
    paths = [f"jobs/{p.name}" for p in sorted((work / "jobs").glob("*.yaml"))
             if "model" in yaml.safe_load(p.read_text())]
    for name in specs:
        if name != "smoke_wrapper":
            _run(["fairsearch", "init", name], work, env)
        paths.append(f"{name}.yaml")
    assert {"jobs/smoke_wrapper.yaml", "jobs/wrapper_full.yaml", "adult_resnet.yaml"} <= set(paths)
    for path in paths:
        extra = [] if path == "adult_resnet.yaml" else ["--no-data"]
        assert _run(["fairsearch", "validate", path, *extra], work, env).startswith("ok: "), path


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 1800) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


#: Run by the new venv's python: exit 1 naming each requirement of the installed wheel (extras
#: aside) that no distribution on its path meets.
_REQUIREMENTS_MET = """
import sys
from importlib.metadata import PackageNotFoundError, distribution, version
from packaging.requirements import Requirement
unmet = []
for line in distribution("fairsearch").requires or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        found = version(req.name)
    except PackageNotFoundError:
        unmet.append(f"{req}: not installed")
        continue
    if not req.specifier.contains(found, prereleases=True):
        unmet.append(f"{req}: {found}")
print(unmet)
sys.exit(1 if unmet else 0)
"""


@pytest.mark.slow
@pytest.mark.ray  # its `fairsearch run` starts a local Ray
def test_the_wheel_works_in_a_fresh_venv_outside_the_checkout(tmp_path: Path) -> None:
    """Build the wheel, install it into a new venv in a folder with no checkout, then
    `fairsearch init`, `validate` and a small `run` of a shipped spec there.

    The wheel goes in without its dependencies, which the new venv reads from this one's
    site-packages (appended to its path, after its own), and a check says the wheel's
    declared requirements are met (each found, in a version it allows): what is tested is the wheel (its modules, package data and
    console script) outside the checkout; installing the same requirements from the index is
    what `make setup` does. Downloading a gigabyte of them again took this test most of its
    two and a half minutes."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    dist, src = tmp_path / "dist", tmp_path / "src"  # built from a copy: no build/ left here
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "runs", "build", "*.egg-info", "__pycache__", ".*_cache"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(dist), str(src)], tmp_path, env)  # fmt: skip
    wheel = next(dist.glob("fairsearch-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py = str(venv / "bin" / "python")
    _run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp_path, env)
    own = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
               env).strip()  # fmt: skip
    deps = sysconfig.get_paths()["purelib"]  # this venv's: a path entry, its .pth files unread
    (Path(own) / "_dependencies.pth").write_text(deps + "\n")
    _run([py, "-c", _REQUIREMENTS_MET], tmp_path, env)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = _run([py, "-c", "import fairsearch, sys; print(fairsearch.__file__)"], work, env)
    assert str(ROOT) not in where and str(venv) in where  # the installed copy, not the checkout
    _run(["fairsearch", "init", "smoke_wrapper"], work, env)
    spec_path = work / "smoke_wrapper.yaml"
    raw = yaml.safe_load(spec_path.read_text())
    assert raw["space"] == "wrapper_mlp.yaml" and not (work / "wrapper_mlp.yaml").exists()
    raw["search"].update(trials=2, max_concurrent=1)
    raw["post"].update(seeds=[0], top_k=1)
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert _run(["fairsearch", "validate", "smoke_wrapper.yaml"], work, env).startswith("ok: ")
    _every_listed_name_validates(work, env)
    out = _run(["fairsearch", "run", "smoke_wrapper.yaml", "--quiet"], work, env)
    assert "VERDICT:" in out
    reports = list((work / "runs").glob("*/report/report.html"))
    assert len(reports) == 1


def test_every_shipped_file_has_a_one_line_summary_that_init_lists(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`init` with no name lists each file with its `# summary:` line (family, data and size,
    budget, run time): the description lives in the YAML, and a spec's summary names its family."""
    from fairsearch.spec.shipped import summary

    files = shipped()
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    for name, path in files.items():
        text = summary(path)
        assert text, f"{path.name} has no `# summary:` first line"
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [name])
        assert line.endswith(text)
        raw = yaml.safe_load(path.read_text())
        if "model" in raw:
            family = raw["model"] if isinstance(raw["model"], str) else raw["model"]["family"]
            assert text.startswith(family) and "minute" in text, (name, text)
        else:
            assert text.startswith("search space of the "), (name, text)


def test_the_readme_validates_and_runs_the_file_init_writes(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    """README: `fairsearch init NAME`, then `validate`/`run` of the file init wrote, by the
    path init prints."""
    import re

    readme = (ROOT / "README.md").read_text()
    init_line = re.search(r"fairsearch init (\w+).*\n.*fairsearch validate", readme)
    name, after = init_line[1], readme[init_line.start():]
    monkeypatch.chdir(tmp_path)
    assert main(["init", name]) == 0
    written = capsys.readouterr().out.split()[1]
    assert (tmp_path / written).is_file()
    for command in ("validate", "run"):
        used = re.search(rf"fairsearch {command} (\S+\.yaml)", after)[1]
        assert used == written, f"README's `fairsearch {command} {used}` after init {name}"


def test_init_copies_the_example_factory_a_spec_names(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """`init adult_resnet` also writes ./examples/tabular_resnet.py, which its factory
    `examples.tabular_resnet:make_resnet` imports from the folder fairsearch runs from: the spec
    works from a wheel, with no checkout."""
    from fairsearch.spec.shipped import PACKAGE, example_modules

    assert example_modules(shipped()["adult_resnet"]) == ["examples.tabular_resnet"]
    assert example_modules(shipped()["smoke_wrapper"]) == []
    dest = init("adult_resnet", tmp_path)
    copied = tmp_path / "examples" / "tabular_resnet.py"
    assert copied.read_bytes() == (PACKAGE / "examples" / "tabular_resnet.py").read_bytes()
    assert (tmp_path / "examples" / "__init__.py").is_file()
    copied.write_text("# edited\n")
    assert init("adult_resnet", tmp_path, force=True) == dest
    assert copied.read_text() == "# edited\n"  # a user's edited module is never overwritten


def test_init_jobs_copies_every_job_file_the_docs_name(tmp_path: Path) -> None:
    import re

    from fairsearch.spec.shipped import init_jobs

    named = set()
    for doc in (ROOT / "README.md", ROOT / "docs" / "cluster.md"):
        named |= set(re.findall(r"\bjobs/(\w+\.yaml)", doc.read_text()))
    assert {"runtime_env.yaml", "smoke_wrapper.yaml"} <= named
    jobs = init_jobs(tmp_path)
    assert named <= {p.name for p in jobs.glob("*.yaml")}
    with pytest.raises(ValueError, match=r"jobs' already exists: pass --force"):
        init_jobs(tmp_path)
    for name in named - {"runtime_env.yaml", "fake_cluster.yaml"}:
        assert load_spec(jobs / name).name  # job specs validate from the copy
