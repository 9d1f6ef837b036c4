"""Judging one value against a monitor's thresholds. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from alerts_core import Comparator
from monitors.definition import Thresholds


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    reason: str


def _breaches(comparator: str, value: float, low: float, high: float | None) -> bool:
    if comparator == Comparator.ABOVE:
        return value > low
    if comparator == Comparator.BELOW:
        return value < low
    assert high is not None, "range comparators need an upper bound"
    if comparator == Comparator.OUTSIDE:
        return value < low or value > high
    return low <= value <= high  # inside


def _describe(comparator: str, low: float, high: float | None) -> str:
    if not Comparator(comparator).is_range:
        return f"{comparator} {low:g}"
    return f"{comparator} {low:g}..{high:g}"


def judge(value: float, t: Thresholds, *, firing: bool = False) -> Judgement:
    """Fail when the critical threshold is breached; warn on the warning threshold.

    While firing, a recovery threshold (hysteresis) replaces the critical one for deciding
    whether the value has come back: "fire above 30, resolve only below 28"."""
    shown = f"{value:g}"
    if firing and t.recovery is not None and not Comparator(t.comparator).is_range:
        still_bad = value > t.recovery if t.comparator == Comparator.ABOVE else value < t.recovery
        if still_bad:
            return Judgement(
                Verdict.FAIL,
                f"{shown} has not recovered past {t.recovery:g} (critical {t.critical:g})",
            )
    elif _breaches(t.comparator, value, t.critical, t.critical_high):
        crossed = _describe(t.comparator, t.critical, t.critical_high)
        return Judgement(Verdict.FAIL, f"{shown} is {crossed} (critical)")
    if t.warning is not None and _breaches(t.comparator, value, t.warning, t.warning_high):
        crossed = _describe(t.comparator, t.warning, t.warning_high)
        return Judgement(Verdict.WARN, f"{shown} is {crossed} (warning)")
    return Judgement(Verdict.PASS, f"{shown} is within limits")
