"""docs/data.md: its example runs and prints what the page says; its spec's `data` section
loads the file the example wrote; the message for a missing `features` is the one it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fairsearch.data import load_from_spec

PAGE = Path(__file__).resolve().parent.parent / "docs" / "data.md"


def _blocks(lang: str) -> list[str]:
    """The page's fenced blocks opened by ```` ```lang ```` (``""``: a plain fence), in order."""
    fences = re.findall(r"^```(\w*)\n(.*?)^```$", PAGE.read_text(), re.S | re.M)
    return [body for tag, body in fences if tag == lang]


def test_the_data_page_example_runs_and_prints_what_the_page_shows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (code,) = _blocks("python")
    exec(compile(code, str(PAGE), "exec"), {"__name__": "docs_data"})  # noqa: S102
    printed = capsys.readouterr().out
    shown = _blocks("")[0]  # the "Prints:" block follows the example
    assert printed == shown
    (spec,) = (yaml.safe_load(b) for b in _blocks("yaml"))
    data = load_from_spec(spec["data"])
    assert data.X.shape == (300, 3) and data.task == "classification"
    missing = {k: v for k, v in spec["data"].items() if k != "features"}
    message = " ".join(_blocks("")[1].split())
    with pytest.raises(ValueError) as err:
        load_from_spec(missing)
    assert " ".join(str(err.value).split()).startswith(message)
