"""Judging one value against a monitor's thresholds. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Callable
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


Show = Callable[[float], str]
# Comparator(value).is_range costs an enum lookup per call: judged for every reading on arrival.
_RANGES = frozenset(c.value for c in Comparator if c.is_range)


def _plain(value: float) -> str:
    return f"{value:g}"


def describe(comparator: str, low: float, high: float | None, show: Show = _plain) -> str:
    """A threshold in words: "above 30 °C", "outside 18 °C..24 °C"."""
    if comparator not in _RANGES:
        return f"{comparator} {show(low)}"
    assert high is not None, "range comparators need an upper bound"
    return f"{comparator} {show(low)}..{show(high)}"


def passes(value: float, t: Thresholds) -> bool:
    """Whether ``judge(value, t)`` passes for a monitor that is not firing, without writing
    its reason (the poller's settled monitors: ``pipeline._settled_again``)."""
    if _breaches(t.comparator, value, t.critical, t.critical_high):
        return False
    return t.warning is None or not _breaches(t.comparator, value, t.warning, t.warning_high)


def judge(value: float, t: Thresholds, *, firing: bool = False, show: Show = _plain) -> Judgement:
    """Fail when the critical threshold is breached; warn on the warning threshold. ``show``
    writes a value (with the monitor's unit and precision) in the reason; a photoperiod's day
    or night is named in it ("is above 20 (critical, night)").

    While firing, a recovery threshold (hysteresis) replaces the critical one for deciding
    whether the value has come back: "fire above 30, resolve only below 28"."""
    shown = show(value)
    critical = describe(t.comparator, t.critical, t.critical_high, show)
    when = f", {t.period}" if t.period else ""
    if firing and t.recovery is not None and t.comparator not in _RANGES:
        still_bad = value > t.recovery if t.comparator == Comparator.ABOVE else value < t.recovery
        if still_bad:
            return Judgement(
                Verdict.FAIL,
                f"{shown} has not recovered past {show(t.recovery)} "
                f"(critical {show(t.critical)}{when})",
            )
    elif _breaches(t.comparator, value, t.critical, t.critical_high):
        return Judgement(Verdict.FAIL, f"{shown} is {critical} (critical{when})")
    if t.warning is not None and _breaches(t.comparator, value, t.warning, t.warning_high):
        crossed = describe(t.comparator, t.warning, t.warning_high, show)
        return Judgement(Verdict.WARN, f"{shown} is {crossed} (warning{when})")
    return Judgement(Verdict.PASS, f"{shown} is within limits (critical {critical}{when})")
