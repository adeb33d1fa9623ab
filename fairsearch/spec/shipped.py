"""The example specs and search spaces shipped inside the package, and ``fairsearch init NAME``.

They are package data (``fairsearch/search_spaces/``), so a spec's ``space: wrapper_mlp.yaml``
resolves wherever the package is installed, and ``fairsearch init NAME`` copies one into the
current folder for editing.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from fairsearch.spec.safe_yaml import read_yaml
from fairsearch.spec.sections import SPACES_DIR
from fairsearch.spec.space import close_match

__all__ = ["configure", "init", "main", "shipped"]


def shipped() -> dict[str, Path]:
    """Every shipped YAML file by name (its stem): example specs and search spaces."""
    return {p.stem: p for p in sorted(SPACES_DIR.glob("*.yaml"))} if SPACES_DIR.is_dir() else {}


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
        print("example specs:  " + ", ".join(specs))
        print("search spaces:  " + ", ".join(spaces))
        print("`fairsearch init NAME` copies one here; `space: NAME.yaml` in a spec finds a "
              "shipped space without copying it")
        return 0
    dest = init(args.name, force=args.force)
    what = "spec" if _is_spec(dest) else "search space"
    print(f"wrote {dest} (the shipped {what} {dest.stem}); edit it, then: "
          + (f"fairsearch validate {dest}" if what == "spec" else
             f"name it in a spec as `space: {dest.name}`"))
    return 0
