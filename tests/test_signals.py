"""A remembered interrupt is raised again on the timer's ticks, but never inside an import."""

from __future__ import annotations

import importlib
import signal
import sys

import pytest

from fairsearch.io import signals

_MODULE = """
import sys
from fairsearch.io import signals
# an import in progress: a tick here must wait (a C++ extension's callbacks run in such frames)
try:
    signals._repeat(signal_number, sys._getframe())
    RAISED = False
except signals.Interrupted:
    RAISED = True
"""


def test_a_repeated_interrupt_waits_until_no_import_is_running(tmp_path, monkeypatch):
    (tmp_path / "slow_to_import.py").write_text(
        _MODULE.replace("signal_number", str(int(signal.SIGALRM))))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(signals, "_RECEIVED", [int(signal.SIGINT)])
    module = importlib.import_module("slow_to_import")
    assert module.RAISED is False
    with pytest.raises(signals.Interrupted) as caught:  # outside the import: raised
        signals._repeat(signal.SIGALRM, sys._getframe())
    assert caught.value.exit_code == 130


def test_no_interrupt_received_raises_nothing():
    assert signals.received() is None
    signals._repeat(signal.SIGALRM, sys._getframe())
