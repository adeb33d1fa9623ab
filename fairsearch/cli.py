"""The ``fairsearch`` console script.

Each sub-command lives in the module that implements it; that module provides
``configure(parser)`` and ``main(args) -> int``. Modules are imported only when their command runs,
so ``fairsearch demo`` never pays for importing Ray.

No traceback reaches a user: bad input (a ``ValueError`` such as a ``SpecError``, a missing or
unreadable user path, a YAML or Parquet error) prints one ``fairsearch CMD: error: ...`` message
and exits 2; anything else is an internal error, printed on one line with a hint, exit 1.
``--debug`` (anywhere on the command line) or ``FAIRSEARCH_DEBUG=1`` shows the traceback.
SIGINT (Ctrl-C) exits 130 and SIGTERM 143, from every command and stage, with one line saying
what was kept and how to continue (:mod:`fairsearch.io.signals`); a Ray this process started is
shut down first, so no Ray process is left behind. A closed stdout pipe (``fairsearch validate --show SPEC | head -1``) exits quietly.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from fairsearch.io import signals
from fairsearch.plugins import import_from_cwd

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("fairsearch.families.wrapper.demo", "sweep mu on the synthetic problem and plot the trade-off"),
    "init": ("fairsearch.spec.shipped", "copy a shipped example spec (or space) here to edit"),
    "validate": ("fairsearch.spec.validate", "check a run spec without running anything"),
    "run": ("fairsearch.pipeline", "search -> pareto -> retrain -> audit -> decide -> report"),
    # search and resume go through the pipeline module: it checks the spec, data, resources and
    # study before handing over to fairsearch.search.engine.
    "search": ("fairsearch.pipeline", "run only the search stage of a spec"),
    "resume": ("fairsearch.pipeline", "finish an interrupted search in RUN_DIR"),
    "up": ("fairsearch.executor.warm", "start a local Ray (127.0.0.1 only) that every command joins"),
    "down": ("fairsearch.executor.head", "stop the local Ray `fairsearch up` started"),
    "repair": ("fairsearch.search.repair", "rebuild a corrupt study of RUN_DIR from trials.parquet"),
    "pareto": ("fairsearch.analysis.pareto.stage", "non-dominated sets, hypervolume and the pick for RUN_DIR"),
    "retrain": ("fairsearch.analysis.retrain.stage", "retrain the chosen configurations over several seeds"),
    "audit": ("fairsearch.analysis.audit.stage", "independent probes and group metrics on held-out data"),
    "decide": ("fairsearch.analysis.decide.stage", "choose among the retrained candidates, verify the pick, write verdict.json"),
    "report": ("fairsearch.report.writer", "write the HTML/Markdown/JSON report of RUN_DIR"),
}

#: What ``fairsearch --help`` says the tool does, and where a new user starts.
DESCRIPTION = (
    "Search the trade-off between accuracy and fairness of a PyTorch model (a fair model wrapper "
    "or an embedding translator) on Ray, retrain the best configurations over fresh seeds, audit "
    "them with independent probes and report which one to deploy.")  # fmt: skip
EPILOG = ("start with `fairsearch init` (the shipped example specs), then `fairsearch validate "
          "SPEC` and `fairsearch run SPEC`; `fairsearch COMMAND --help` for one command")

#: Exit codes.
EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 2, 1, 130
DEBUG_ENV = "FAIRSEARCH_DEBUG"


def build_parser(available: Sequence[str] | None = None) -> argparse.ArgumentParser:
    from fairsearch import __version__

    parser = argparse.ArgumentParser(prog="fairsearch", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"fairsearch {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error (or set {DEBUG_ENV}=1)")  # fmt: skip
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


def is_bad_input(exc: BaseException) -> bool:
    """True for errors caused by what the user gave or the machine it runs on (exit 2): a
    ``ValueError`` (``SpecError``, pyarrow's ``ArrowInvalid``), an ``OSError`` (a missing or
    unreadable path, a truncated Parquet file, a refused connection), a YAML error; False for
    internal ones (exit 1)."""
    if isinstance(exc, ValueError | OSError):
        return True
    module = type(exc).__module__ or ""
    return module.split(".")[0] in ("yaml", "pyarrow")  # a YAML or Parquet file of the user's


def describe(exc: BaseException) -> str:
    """One or two lines naming what went wrong and where (no traceback)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return (f"{where}no space left on device: free disk space, then re-run the command "
                f"(finished outputs are kept)")  # fmt: skip
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, ValueError) or not is_bad_input(exc):
        return text
    return f"{type(exc).__name__}: {text}"


def _debug(argv: list[str]) -> tuple[list[str], bool]:
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    return [a for a in argv if a != "--debug"], debug


def main(argv: Sequence[str] | None = None) -> int:
    argv, debug = _debug(list(sys.argv[1:] if argv is None else argv))
    command = next((a for a in argv if not a.startswith("-")), None)
    where = f"fairsearch {command}" if command in COMMANDS else "fairsearch"
    with signals.handled():
        return _main(argv, debug, command, where)


def _main(argv: list[str], debug: bool, command: str | None, where: str) -> int:
    try:
        if command not in (None, "up", "down"):  # before any module imports Ray
            from fairsearch.executor.head import prepare_environment

            prepare_environment()
        # Import only the chosen command's module; `--help` alone lists commands without imports.
        parser = build_parser([command] if command in COMMANDS else None)
        args = parser.parse_args(argv)
        import_from_cwd()  # a spec's factory or loader may live in the folder fairsearch runs from
        if not hasattr(args, "_main"):
            parser.error(f"unknown command {args.command!r}")
        code = int(args._main(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return code
    except KeyboardInterrupt as exc:
        signals.settle()
        _stop_ray()
        signum = getattr(exc, "signum", None) or signals.received() or signal.SIGINT
        note = getattr(exc, "note", "") or ("what finished before it is kept; re-run the "
                                            "command to continue")  # fmt: skip
        print(f"{where}: interrupted by {signal.Signals(signum).name}: {note}", file=sys.stderr)
        return 128 + int(signum)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Python's docs: point stdout at devnull
        # so that the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the one place where every error becomes a message
        if debug:
            traceback.print_exc()
        if is_bad_input(exc):
            print(f"{where}: error: {describe(exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"{where}: internal error: {type(exc).__name__}: {describe(exc)}", file=sys.stderr)
        if not debug:
            print(f"{where}: this is a bug in fairsearch; re-run with --debug (or "
                  f"{DEBUG_ENV}=1) for the traceback and report it", file=sys.stderr)  # fmt: skip
        return EXIT_INTERNAL


def _stop_ray() -> None:
    """Shut down the Ray this process started or joined (a local one's processes end with it)."""
    ray = sys.modules.get("ray")
    if ray is None:
        return
    start = sys.modules.get("fairsearch.executor.ray_start")  # loaded by whatever started Ray
    try:
        if start is not None:
            start.shutdown_ray()
        elif ray.is_initialized():
            ray.shutdown()
    except Exception:  # noqa: BLE001, S110 - best effort on the way out
        pass


def entry() -> None:
    """The ``fairsearch`` command: :func:`main`, then an exit that skips tearing the interpreter
    down (collecting and finalising torch's, pandas' and Optuna's modules: 0.5 to 2 s after a
    search). Everything is written by then: files are closed when written, the threads that
    are not daemons are joined as the interpreter would, Ray is shut down, logs and the
    standard streams are flushed."""
    import logging
    import threading

    code = main()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    _stop_ray()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed pipe: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
