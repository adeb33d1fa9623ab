"""The ``fairsearch`` console script.

Each sub-command lives in the module that implements it; that module provides
``configure(parser)`` and ``main(args) -> int``. Modules are imported only when their command runs,
so ``fairsearch demo`` never pays for importing Ray.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fairsearch.plugins import import_from_cwd

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("fairsearch.families.wrapper.demo", "sweep mu on the synthetic problem and plot the trade-off"),
    "validate": ("fairsearch.spec.validate", "check a run spec without running anything"),
    "run": ("fairsearch.pipeline", "search -> pareto -> retrain -> audit -> report"),
    "search": ("fairsearch.search.engine", "run only the search stage of a spec"),
    "resume": ("fairsearch.search.engine", "finish an interrupted search in RUN_DIR"),
    "pareto": ("fairsearch.analysis.pareto", "non-dominated sets, hypervolume and the pick for RUN_DIR"),
    "retrain": ("fairsearch.analysis.retrain", "retrain the chosen configurations over several seeds"),
    "audit": ("fairsearch.analysis.audit", "independent probes and group metrics on held-out data"),
    "report": ("fairsearch.report.writer", "write the HTML/Markdown/JSON report of RUN_DIR"),
}


def build_parser(available: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairsearch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if available is not None and name not in available:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if available is not None:
            _configure(module, name, p)
    return parser


def _configure(module: str, name: str, parser: argparse.ArgumentParser) -> None:
    mod = importlib.import_module(module)
    # A module serving several commands exposes configure_<name>/main_<name>.
    configure = getattr(mod, f"configure_{name}", None) or mod.configure
    configure(parser)
    parser.set_defaults(_main=getattr(mod, f"main_{name}", None) or mod.main)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    # Import only the chosen command's module; `--help` alone lists commands without imports.
    parser = build_parser([command] if command in COMMANDS else [])
    if command not in COMMANDS:
        parser = build_parser(None)
    args = parser.parse_args(argv)
    import_from_cwd()  # a spec's factory or loader may live in the folder fairsearch runs from
    if not hasattr(args, "_main"):
        parser.error(f"unknown command {args.command!r}")
    try:
        return int(args._main(args) or 0)
    except ValueError as exc:  # bad user input: one clear line, no traceback
        print(f"fairsearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
