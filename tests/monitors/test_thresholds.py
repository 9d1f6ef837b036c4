from __future__ import annotations

import pytest

from monitors.definition import Thresholds
from monitors.evaluate.thresholds import Verdict, judge


@pytest.mark.parametrize(
    ("thresholds", "value", "verdict"),
    [
        (Thresholds("above", 30), 30.5, Verdict.FAIL),
        (Thresholds("above", 30), 30.0, Verdict.PASS),
        (Thresholds("above", 30, warning=25), 27, Verdict.WARN),
        (Thresholds("below", 10), 9.9, Verdict.FAIL),
        (Thresholds("below", 10, warning=15), 12, Verdict.WARN),
        (Thresholds("below", 10), 10, Verdict.PASS),
        (Thresholds("outside", 18, 26), 17, Verdict.FAIL),
        (Thresholds("outside", 18, 26), 27, Verdict.FAIL),
        (Thresholds("outside", 18, 26), 22, Verdict.PASS),
        (Thresholds("outside", 18, 26, warning=20, warning_high=24), 25, Verdict.WARN),
        (Thresholds("inside", 0, 5), 3, Verdict.FAIL),
        (Thresholds("inside", 0, 5), 6, Verdict.PASS),
    ],
)
def test_each_comparator_judges_values(thresholds, value, verdict) -> None:
    assert judge(value, thresholds).verdict is verdict


def test_a_firing_monitor_resolves_only_past_the_recovery_threshold() -> None:
    t = Thresholds("above", 30, recovery=28)

    assert judge(29, t, firing=True).verdict is Verdict.FAIL
    assert judge(27.9, t, firing=True).verdict is Verdict.PASS
    assert judge(29, t, firing=False).verdict is Verdict.PASS


def test_the_reason_names_the_value_and_the_threshold() -> None:
    assert judge(31.5, Thresholds("above", 30)).reason == "31.5 is above 30 (critical)"
