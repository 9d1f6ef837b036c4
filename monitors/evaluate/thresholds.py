"""Judging one value against a monitor's thresholds. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Thresholds:
    comparator: str  # above, below, outside, inside
    critical: float
    critical_high: float | None = None
    warning: float | None = None
    warning_high: float | None = None
    recovery: float | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    reason: str


def _breaches(comparator: str, value: float, low: float, high: float | None) -> bool:
    if comparator == "above":
        return value > low
    if comparator == "below":
        return value < low
    assert high is not None, "range comparators need an upper bound"
    if comparator == "outside":
        return value < low or value > high
    return low <= value <= high  # inside


def _describe(comparator: str, low: float, high: float | None) -> str:
    if comparator in ("above", "below"):
        return f"{comparator} {low:g}"
    return f"{comparator} {low:g}..{high:g}"


def judge(value: float, t: Thresholds, *, firing: bool = False) -> Judgement:
    """Fail when the critical threshold is breached; warn on the warning threshold.

    While firing, a recovery threshold (hysteresis) replaces the critical one for deciding
    whether the value has come back: "fire above 30, resolve only below 28"."""
    shown = f"{value:g}"
    if firing and t.recovery is not None and t.comparator in ("above", "below"):
        still_bad = value > t.recovery if t.comparator == "above" else value < t.recovery
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
