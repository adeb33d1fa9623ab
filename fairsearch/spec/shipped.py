"""The example specs and search spaces shipped inside the package, and ``fairsearch init NAME``.

They are package data (``fairsearch/search_spaces/``), so a spec's ``space: wrapper_mlp.yaml``
resolves wherever the package is installed, and ``fairsearch init NAME`` copies one into the
current folder for editing. A spec whose model factory or data loader is one of the shipped
example modules (``examples.tabular_resnet:make_resnet``: ``fairsearch/examples/``) gets that
module copied too, into ``./examples/``: the spec names it as a user names their own package in
the folder they run from (an ``examples/`` file already there is kept). ``fairsearch init jobs``
copies the cluster job files (``fairsearch/jobs/``: ``runtime_env.yaml`` and the job specs)
into ``./jobs/``. Each shipped spec's and space's first line, ``# summary: ...``, is what
``fairsearch init`` (no name) shows beside its name: the family, the data and its size, the
budget and a rough run time.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from fairsearch.spec.safe_yaml import read_yaml
from fairsearch.spec.sections import SPACES_DIR
from fairsearch.spec.space import close_match

__all__ = ["JOBS", "configure", "init", "init_jobs", "main", "shipped", "summary"]

PACKAGE = Path(__file__).resolve().parent.parent
#: The name ``fairsearch init`` takes for the cluster job files.
JOBS = "jobs"
#: The top-level package name the example specs import their example factories from.
EXAMPLES = "examples"

#: The comment that starts every shipped file: its one-line description.
SUMMARY = "# summary:"


def shipped() -> dict[str, Path]:
    """Every shipped YAML file by name (its stem): example specs and search spaces."""
    return {p.stem: p for p in sorted(SPACES_DIR.glob("*.yaml"))} if SPACES_DIR.is_dir() else {}


def summary(path: Path) -> str:
    """The ``# summary: ...`` line of a shipped file ("" when it has none)."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(SUMMARY):
                return line[len(SUMMARY):].strip()
            if not line.startswith("#"):
                break
    return ""


def _is_spec(path: Path) -> bool:
    raw = read_yaml(path, "shipped file")
    return isinstance(raw, dict) and "model" in raw and "data" in raw


def init(name: str, folder: str | Path = ".", *, force: bool = False) -> Path:
    """Copy the shipped file ``name`` (``smoke_wrapper`` or ``smoke_wrapper.yaml``) into
    ``folder``; returns the new path. ``ValueError`` for an unknown name or an existing file."""
    files = shipped()
    stem = Path(name).name.removesuffix(".yaml").removesuffix(".yml")
    if stem not in files:
        raise ValueError(f"NAME must be a shipped spec or space, one of {', '.join(files)}, but "
                         f"got {name!r}{close_match(stem, list(files))}")
    dest = Path(folder) / files[stem].name
    if dest.exists() and not force:
        raise ValueError(f"{str(dest)!r} already exists: edit it, or pass --force to overwrite it")
    shutil.copyfile(files[stem], dest)
    for module in example_modules(files[stem]):
        _copy_example(module, Path(folder))
    return dest


def example_modules(path: Path) -> list[str]:
    """The shipped example modules (``examples.tabular_resnet``) that the spec at ``path`` names
    as its model factory or data loader."""
    raw = read_yaml(path, "shipped file")
    if not isinstance(raw, dict):
        return []
    named = [section.get(key) for section, key in ((raw.get("model"), "factory"),
                                                   (raw.get("data"), "loader"))
             if isinstance(section, dict)]  # fmt: skip
    modules = [p.split(":")[0] for p in named if isinstance(p, str) and ":" in p]
    return [m for m in modules if m.split(".")[0] == EXAMPLES and _example_file(m).is_file()]


def _example_file(module: str) -> Path:
    return PACKAGE.joinpath(*module.split(".")).with_suffix(".py")


def _copy_example(module: str, folder: Path) -> None:
    """``examples/NAME.py`` (and the package's ``__init__.py``) into ``folder``, unless there."""
    package = folder / EXAMPLES
    package.mkdir(exist_ok=True)
    init_file = package / "__init__.py"
    if not init_file.exists():
        shutil.copyfile(PACKAGE / EXAMPLES / "__init__.py", init_file)
    dest = folder.joinpath(*module.split(".")).with_suffix(".py")
    if not dest.exists():
        shutil.copyfile(_example_file(module), dest)


def init_jobs(folder: str | Path = ".", *, force: bool = False) -> Path:
    """Copy the shipped cluster job files (``runtime_env.yaml``, the job specs) into
    ``folder/jobs``; returns that folder. ``ValueError`` when it exists, unless ``force``."""
    dest = Path(folder) / JOBS
    if dest.exists() and not force:
        raise ValueError(f"{str(dest)!r} already exists: pass --force to overwrite its files")
    dest.mkdir(exist_ok=True)
    for path in sorted((PACKAGE / JOBS).glob("*.yaml")):
        shutil.copyfile(path, dest / path.name)
    return dest


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", nargs="?",
                        help="a shipped example spec or space (omit it to list them)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")


def main(args: argparse.Namespace) -> int:
    files = shipped()
    if args.name is None:
        specs = [n for n, p in files.items() if _is_spec(p)]
        spaces = [n for n in files if n not in specs]
        width = max(map(len, files), default=0)
        for title, names in (("example specs", specs), ("search spaces", spaces)):
            print(f"{title}:")
            for n in names:
                print(f"  {n:<{width}}  {summary(files[n])}".rstrip())
        jobs = ", ".join(p.name for p in sorted((PACKAGE / JOBS).glob("*.yaml")))
        print(f"cluster jobs:\n  {JOBS:<{width}}  the files docs/cluster.md names: {jobs}")
        print("`fairsearch init NAME` copies one here; `space: NAME.yaml` in a spec finds a "
              "shipped space without copying it")
        return 0
    if args.name == JOBS:
        dest = init_jobs(force=args.force)
        print(f"wrote {dest}/ (the runtime environment and the job specs); submit as "
              f"docs/cluster.md says, e.g. --runtime-env {JOBS}/runtime_env.yaml")
        return 0
    dest = init(args.name, force=args.force)
    what = "spec" if _is_spec(dest) else "search space"
    print(f"wrote {dest} (the shipped {what} {dest.stem}); edit it, then: "
          + (f"fairsearch validate {dest}" if what == "spec" else
             f"name it in a spec as `space: {dest.name}`"))
    for module in example_modules(dest):
        print(f"{Path(*module.split('.')).with_suffix('.py')}: the model factory or data loader "
              f"the spec names (written unless it was there)")
    return 0
