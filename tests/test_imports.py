"""What a lane process imports before its first configuration: every module costs start-up
time on every lane, so a regression lane does not import scikit-learn (nor SciPy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LANE_IMPORTS = """
import sys
import fairsearch.executor.lanes, fairsearch.search.trial
from fairsearch.families import get_family
get_family("wrapper"), get_family("translator")
print(sorted(m for m in ("sklearn", "scipy") if m in sys.modules))
"""


def test_a_lane_imports_no_sklearn_until_a_metric_needs_it():
    out = subprocess.run([sys.executable, "-c", LANE_IMPORTS], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
