"""The console script: no traceback reaches a user; exit 2 for bad input, 1 for internal errors
(with a hint), 130 for Ctrl-C; ``--debug`` / FAIRSEARCH_DEBUG=1 show the traceback; a closed
stdout pipe ends quietly."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fairsearch import cli

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "search_spaces" / "smoke_wrapper.yaml"


def _fake_command(monkeypatch: pytest.MonkeyPatch, raise_: BaseException) -> None:
    """Make `fairsearch validate` raise ``raise_``."""
    import fairsearch.spec.validate as validate

    def boom(args: argparse.Namespace) -> int:
        raise raise_

    monkeypatch.setattr(validate, "main", boom)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FAIRSEARCH_DEBUG", "RAY_ADDRESS")}
    return {**env, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize(("error", "code", "line"), [
    (ValueError("`trial.epochs` must be an integer >= 1, but got 0"), 2,
     "fairsearch validate: error: `trial.epochs` must be an integer >= 1, but got 0"),
    (FileNotFoundError(2, "No such file or directory", "/data/x.parquet"), 2,
     "fairsearch validate: error: /data/x.parquet: No such file or directory"),
    (PermissionError(13, "Permission denied", "/root/runs"), 2,
     "fairsearch validate: error: /root/runs: Permission denied"),
    (IsADirectoryError(21, "Is a directory", "runs"), 2,
     "fairsearch validate: error: runs: Is a directory"),
    (KeyError("config_id"), 1, "fairsearch validate: internal error: KeyError: 'config_id'"),
    (RuntimeError("ray died"), 1, "fairsearch validate: internal error: RuntimeError: ray died"),
])  # fmt: skip
def test_errors_become_one_line_and_an_exit_code(monkeypatch, capsys, error, code, line) -> None:
    monkeypatch.delenv("FAIRSEARCH_DEBUG", raising=False)
    _fake_command(monkeypatch, error)
    assert cli.main(["validate", "x.yaml"]) == code
    err = capsys.readouterr().err
    assert err.splitlines()[0] == line
    assert "Traceback" not in err
    if code == 1:
        assert "re-run with --debug (or FAIRSEARCH_DEBUG=1) for the traceback" in err
    else:
        assert len(err.splitlines()) == 1


def test_yaml_and_parquet_library_errors_are_bad_input(monkeypatch, capsys) -> None:
    import pyarrow as pa
    import yaml

    for error in (yaml.YAMLError("mapping values are not allowed here"),
                  pa.ArrowInvalid("Parquet magic bytes not found in footer"),
                  OSError("Unexpected end of stream")):  # pyarrow's ArrowIOError is OSError  # fmt: skip
        _fake_command(monkeypatch, error)
        assert cli.main(["validate", "x.yaml"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("fairsearch validate: error: ") and "Traceback" not in err
        assert str(error) in err


@pytest.mark.parametrize("how", ["flag", "flag-after", "env"])
def test_debug_shows_the_traceback(monkeypatch, capsys, how) -> None:
    _fake_command(monkeypatch, KeyError("config_id"))
    argv = ["validate", "x.yaml"]
    if how == "flag":
        argv = ["--debug", *argv]
    elif how == "flag-after":
        argv = [*argv, "--debug"]
    else:
        monkeypatch.setenv("FAIRSEARCH_DEBUG", "1")
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'config_id'" in err
    assert "re-run with --debug" not in err


def test_keyboard_interrupt_exits_130(monkeypatch, capsys) -> None:
    _fake_command(monkeypatch, KeyboardInterrupt())
    assert cli.main(["validate", "x.yaml"]) == 130
    assert capsys.readouterr().err.strip() == ("fairsearch validate: interrupted by SIGINT: what "
                                               "finished before it is kept; re-run the command "
                                               "to continue")


def test_unknown_command_and_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["deploy"])
    assert e.value.code == 2
    assert cli.main(["validate"]) == 2  # SPEC missing
    err = capsys.readouterr().err
    assert "SPEC is required" in err and "Traceback" not in err


def test_broken_pipe_exits_quietly(tmp_path: Path) -> None:
    """`fairsearch validate --show SPEC | head -1`: no BrokenPipeError, no traceback."""
    cmd = [sys.executable, "-m", "fairsearch.cli", "validate", "--show", "--no-data", str(SMOKE)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            cwd=tmp_path)  # fmt: skip
    proc.stdout.close()  # the reader goes away before anything is written
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert err == ""
    assert proc.returncode == 1


def test_a_real_subprocess_gets_exit_2_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "fairsearch.cli", "validate", str(bad)],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"fairsearch validate: error: spec file '{bad}' is not valid "
                                  "YAML at line 2")  # fmt: skip
    assert "Traceback" not in proc.stderr + proc.stdout


def test_sigint_in_a_subprocess_exits_130(tmp_path: Path) -> None:
    # Python's own Ctrl-C handler, even where the test runner was started with SIGINT ignored
    # (a shell's background job): that is what a user's terminal gives the command
    code = ("import signal, sys, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from fairsearch import cli\nimport fairsearch.spec.validate as v\n"
            "def slow(args):\n    print('ready', flush=True); time.sleep(30)\n"
            "v.main = slow\nsys.exit(cli.main(['validate', 'x.yaml']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(2)  # SIGINT, as Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err


def test_validate_reads_the_old_executor_name_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`search.executor: local` (now `inprocess`) is no error: validate says what to write instead."""
    import yaml

    raw = yaml.safe_load(SMOKE.read_text())
    raw.setdefault("search", {})["executor"] = "local"
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(raw))
    assert cli.main(["validate", "--no-data", str(old)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok: ")
    assert "note: `search.executor: local` is deprecated and read as `inprocess`" in err
    assert "write `executor: inprocess`" in err


def test_version_and_a_help_that_says_what_the_tool_does(capsys) -> None:
    from fairsearch import __version__

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"fairsearch {__version__}"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "console script" not in out
    assert "trade-off between accuracy and fairness of a PyTorch model" in out
    assert "start with `fairsearch init`" in out


def test_ctrl_c_in_validate_says_nothing_was_written(monkeypatch, capsys) -> None:
    import fairsearch.spec.validate as validate

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(validate, "_validate", interrupted)
    assert cli.main(["validate", "x.yaml"]) == 130
    err = capsys.readouterr().err
    assert "interrupted by SIGINT: validate writes nothing" in err
    assert "what finished before it is kept" not in err
