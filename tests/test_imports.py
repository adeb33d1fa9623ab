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


#: The driver's side of a search, up to its lanes' first pull: load and check a spec of each
#: family, open the study's recorder and the lane pool's module, claim no warm lane.
DRIVER_IMPORTS = """
import sys
from fairsearch.spec.schema import load_spec
from fairsearch.spec.validate import preflight
import fairsearch.search.engine, fairsearch.executor.lanes, fairsearch.executor.warm
for name in ("wrapper_synthetic", "smoke_translator"):
    spec = load_spec(f"search_spaces/{name}.yaml")
    preflight(spec)
    spec.family.metrics("classification")
fairsearch.executor.warm.fingerprint()
print(sorted(m for m in ("torch", "ray.tune", "sklearn") if m in sys.modules))
"""


def test_a_search_driver_imports_no_torch_nor_tune():
    """The driver checks the spec and drives the lanes without torch (about 2 s to import) or
    Ray Tune (1 s more, for Tune lanes only): warm lanes have them imported already."""
    out = subprocess.run([sys.executable, "-c", DRIVER_IMPORTS], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
