"""What the held-out rows resolve, other labels given away, and how the verdict says both."""

from __future__ import annotations

import pandas as pd
import pytest

from fairsearch.analysis.audit.leakage import MARGIN, Leak
from fairsearch.analysis.audit.resolution import Resolution, other_label_leaks, resolution_of
from fairsearch.analysis.decide.verify import judge as _judge


def _audit(half: float, rows: int = 800) -> pd.DataFrame:
    base = dict(model="resolution", target="q", probe="leak_free", ci_low=float("nan"),
                ci_high=float("nan"), chance=0.5, floor=float("nan"), selected="")
    need = round(rows * (half / MARGIN) ** 2)
    extra = [dict(model="m", target="race", probe="logistic", metric="balanced_accuracy",
                  value=0.378, ci_low=0.34, ci_high=0.41, chance=0.25, floor=float("nan"),
                  selected=""),
             dict(model="m", target="age", probe="logistic", metric="balanced_accuracy",
                  value=0.53, ci_low=0.49, ci_high=0.57, chance=0.5, floor=float("nan"),
                  selected=""),
             dict(model="m", target="control", probe="logistic", metric="balanced_accuracy",
                  value=0.9, ci_low=0.88, ci_high=0.92, chance=0.5, floor=float("nan"),
                  selected="")]
    return pd.DataFrame([dict(base, metric="held_out_rows", value=rows),
                         dict(base, metric="ci_half_width", value=half),
                         dict(base, metric="rows_to_resolve", value=need, chance=MARGIN),
                         *extra])


def _leak(lo: float, hi: float, floor: float | None = 0.481) -> Leak:
    return Leak("m", "balanced_accuracy", "worst_case", "knn", (lo + hi) / 2, lo, hi, 0.5, floor)


def test_resolution_is_read_and_judged_against_chance_never_a_lower_floor() -> None:
    res = resolution_of(_audit(0.055))
    assert res == Resolution(800, 0.055, 968, MARGIN)
    # the floor 0.481 lies below chance, so the reference is chance: 0.5 + 0.055 > 0.55
    assert not res.resolves(_leak(0.45, 0.56))
    assert resolution_of(_audit(0.04)).resolves(_leak(0.45, 0.56))
    assert resolution_of(_audit(0.055)).resolves(_leak(0.45, 0.56, floor=0.53))  # ref 0.53
    assert resolution_of(pd.DataFrame(columns=["model", "probe", "metric", "value"])) is None


def test_other_labels_beyond_chance_and_margin_are_named() -> None:
    leaks = other_label_leaks(_audit(0.05), "m")
    assert [x.label for x in leaks] == ["race"]  # age's interval holds chance; control is not one
    assert "gives away race: 0.378 [0.340, 0.410]" in leaks[0].sentence()
    assert "chance of 0.250" in leaks[0].sentence()


@pytest.mark.parametrize(("half", "doubts", "status"), [
    (0.055, False, "unresolved"), (0.055, True, "borderline"), (0.03, False, "borderline"),
])
def test_a_straddling_leak_the_rows_cannot_resolve_is_said_so(half, doubts, status) -> None:
    res = resolution_of(_audit(half))
    rule = {0: True, 1: not doubts}
    got, why = _judge(2, 2, rule, True, None, _leak(0.452, 0.559), True, resolution=res)
    assert got == status, why
    unresolved = "the data cannot resolve the margin: 800 held-out rows resolve a leak only to"
    assert (unresolved in why) == (half > 0.05), why
    if half > 0.05:
        assert "about 968 held-out rows would resolve it" in why
        assert "borderline" not in why


def test_a_leak_above_the_margin_still_fails_whatever_the_resolution() -> None:
    got, why = _judge(2, 2, {0: True, 1: True}, True, None, _leak(0.62, 0.70), True,
                      resolution=resolution_of(_audit(0.055)))
    assert got == "fails" and "recovers q" in why


def test_a_rule_held_by_some_seeds_is_said_once_among_the_doubts() -> None:
    """The retrain summary's 'holds for some seeds only' repeats the per-seed count: dropped
    where the count is given, its other reasons kept."""
    unstable = "adversary_bacc std 0.02 > 25% of its range 0.07; 'adversary_bacc <= 0.63' " \
               "holds for some seeds only"
    got, why = _judge(3, 3, {4: False, 5: True, 6: True}, True, unstable, None, True)
    assert got == "borderline"
    assert "the rule holds for 2 of 3 seeds" in why and "some seeds only" not in why, why
    assert "unstable over seeds (adversary_bacc std 0.02 > 25% of its range 0.07)" in why, why
    got, why = _judge(3, 3, {4: True, 5: True, 6: True}, True, unstable, None, True)
    assert "some seeds only" in why, why  # no count to repeat: the clause stays
    got, why = _judge(3, 3, {4: False, 5: True, 6: True}, True,
                      "'adversary_bacc <= 0.63' holds for some seeds only", None, True)
    assert "unstable over seeds" not in why and "2 of 3 seeds" in why, why
