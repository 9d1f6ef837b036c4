"""A monitor's evaluation goes through alerts_core: observations become outcomes, and
alerts_core's pure transition function decides the new state and the events.

Used three ways: ``dry_run`` (POST /monitors/<id>/test: evaluate now, notify nobody),
``backtest`` (POST /monitors/preview: replay history) and the Celery pipeline.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

import alerts_core as ac
from monitors import aggregate, influx, observe
from monitors.models import Monitor
from monitors.thresholds import Thresholds, Verdict, judge

logger = logging.getLogger(__name__)

# Reasons a monitor's owner reads (status_reason) when it could not be evaluated.
UNREADABLE_STATE = (
    "this monitor could not be evaluated: its stored state was unreadable; it was reset"
)
UNEXPECTED = (
    "this monitor could not be evaluated: an unexpected error occurred; "
    "it will be tried again at its next check"
)


class Unevaluable(Exception):
    """A monitor that cannot be evaluated; the message is the reason its owner reads."""

    def __init__(self, reason: str, *, reset: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.reset = reason, reset


def reason_for(monitor: Monitor, exc: BaseException, *, default: str = UNEXPECTED) -> str:
    """Why a monitor could not be evaluated, as its owner reads it: the setting out of its
    bounds when there is one (a row planted past validation), else ``default``."""
    if isinstance(exc, Unevaluable):
        return exc.reason
    for name, message in monitor.out_of_range().items():
        return (
            f"this monitor could not be evaluated: its {name} {message}; edit the monitor to fix it"
        )[:500]
    return default


# ---------------------------------------------------------------- monitor -> alerts_core

_DATA_POLICY = {
    "alerting": ac.DataPolicy.ALERTING,
    "ok": ac.DataPolicy.OK,
    "keep_last": ac.DataPolicy.KEEP_LAST,
    "status": ac.DataPolicy.STATUS,
}


def policy_for(monitor: Monitor) -> ac.Policy:
    return ac.Policy(
        pending_for=monitor.pending_for,
        recover_after=monitor.recover_after,
        repeat_every=monitor.repeat_every,
        no_data=_DATA_POLICY[monitor.no_data_policy],
        error=_DATA_POLICY[monitor.error_policy],
        flap_detection=monitor.flap_detection,
    )


def thresholds_of(monitor: Monitor) -> Thresholds:
    """Raises ValueError for a threshold that is not a finite number (a row planted past
    validation): every comparison with NaN is false, so it would silently never fire."""
    for value in (
        monitor.critical,
        monitor.critical_high,
        monitor.warning,
        monitor.warning_high,
        monitor.recovery,
    ):
        if value is not None and not math.isfinite(value):
            raise ValueError("a threshold is not a finite number")
    return Thresholds(
        comparator=monitor.comparator,
        critical=monitor.critical,
        critical_high=monitor.critical_high,
        warning=monitor.warning,
        warning_high=monitor.warning_high,
        recovery=monitor.recovery,
    )


def state_of(monitor: Monitor) -> ac.MonitorState:
    return ac.MonitorState.from_dict(monitor.state) if monitor.state else ac.MonitorState()


def outcome_for(
    monitor: Monitor, *, value: float | None, error: Exception | None, firing: bool
) -> ac.Outcome:
    """What one observation means for the state machine."""
    if error is not None:
        return ac.Outcome.error(error, message=f"InfluxDB: {error}")
    if value is None:
        return ac.Outcome.no_data(message=f"no data in the last {_window_text(monitor)}")
    judgement = judge(value, thresholds_of(monitor), firing=firing)
    if judgement.verdict is Verdict.FAIL:
        return ac.Outcome.failed(value=value, message=judgement.reason)
    if judgement.verdict is Verdict.WARN:
        return ac.Outcome.degraded(value=value, message=judgement.reason)
    return ac.Outcome.passed(value=value, message=judgement.reason)


def _window_text(monitor: Monitor) -> str:
    from monitors.queries import influx_duration

    return influx_duration(monitor.window)


def step(
    monitor: Monitor,
    state: ac.MonitorState,
    *,
    value: float | None,
    error: Exception | None,
    now: datetime,
    silenced: bool = False,
) -> tuple[ac.MonitorState, list[ac.Event], ac.Outcome]:
    """One evaluation: observation -> outcome -> alerts_core transition."""
    outcome = outcome_for(
        monitor, value=value, error=error, firing=state.status == ac.Status.FIRING
    )
    new_state, events = ac.transition(state, outcome, policy_for(monitor), now, silenced=silenced)
    return new_state, events, outcome


# ---------------------------------------------------------------- dry run (/test)


@dataclass(frozen=True)
class DryRun:
    query: str
    value: float | None
    status: str
    previous_status: str
    reason: str
    events: list[str]
    duration_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "value": self.value,
            "status": self.status,
            "previous_status": self.previous_status,
            "reason": self.reason,
            "would_notify": self.events,
            "duration_ms": self.duration_ms,
        }


def dry_run(monitor: Monitor) -> DryRun:
    """Evaluates the monitor now from its stored state; writes nothing, notifies nobody.

    A monitor that cannot be evaluated (stored values past validation, an unreadable state)
    answers status error with the reason the pipeline would give, not an exception."""
    started = time.perf_counter()
    try:
        return _dry_run(monitor, started)
    except Exception as exc:
        logger.warning("dry run of monitor %s failed: %r", monitor.pk, exc)
        return DryRun(
            query="",
            value=None,
            status=ac.Status.ERROR.value,
            previous_status=str(monitor.status),
            reason=reason_for(monitor, exc),
            events=[],
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )


def _dry_run(monitor: Monitor, started: float) -> DryRun:
    observation = observe.observe(monitor)
    try:
        state = state_of(monitor)
    except Exception as exc:
        raise Unevaluable(UNREADABLE_STATE) from exc
    new_state, events, outcome = step(
        monitor,
        state,
        value=observation.value,
        error=observation.error,
        now=timezone.now(),
    )
    return DryRun(
        query=observe.shown_query(monitor, observation),
        value=observation.value,
        status=str(new_state.status),
        previous_status=str(state.status),
        reason=outcome.message,
        events=[str(e.kind) for e in events if e.notifies],
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )


# ---------------------------------------------------------------- backtest (/preview)


@dataclass
class Backtest:
    start: datetime
    end: datetime
    interval: timedelta
    series: list[tuple[int, float]]
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        counts = dict.fromkeys(("fired", "resolved", "flapping_started", "warning_raised"), 0)
        for event in self.events:  # what the user would have been told
            if event["kind"] in counts and event["notifies"]:
                counts[event["kind"]] += 1
        firing_s = sum(
            self.interval.total_seconds() for e in self.evaluations if e["status"] == "firing"
        )
        return {
            "fired": counts["fired"],
            "resolved": counts["resolved"],
            "flapped": counts["flapping_started"],
            "warnings": counts["warning_raised"],
            "evaluations": len(self.evaluations),
            "firing_seconds": firing_s,
            "text": _summary_text(counts),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "interval_seconds": self.interval.total_seconds(),
            "summary": self.summary(),
            "series": [{"time": t, "value": v} for t, v in self.series],
            "evaluations": self.evaluations,
            "events": self.events,
            "error": self.error,
        }


def _times(n: int, word: str) -> str:
    return f"{word} {'once' if n == 1 else 'twice' if n == 2 else f'{n} times'}"


def _summary_text(counts: dict[str, int]) -> str:
    fired, flapped = counts["fired"], counts["flapping_started"]
    text = f"would have {_times(fired, 'fired')}" if fired else "would not have fired"
    if flapped:
        text += f", {_times(flapped, 'flapped')}"
    return text


MAX_EVALUATIONS = 10_080  # a week at one-minute steps


def backtest(monitor: Monitor, *, hours: float, end: datetime | None = None) -> Backtest:
    """Replays the monitor over the last ``hours``: at every interval, the aggregate over the
    preceding window is judged and fed through the same state machine as live evaluation."""
    end = end or timezone.now()
    start = end - timedelta(hours=hours)
    step_every = max(monitor.interval, (end - start) / MAX_EVALUATIONS)
    result = Backtest(start=start, end=end, interval=step_every, series=[])
    if monitor.raw_query:
        result.error = "backtests need a structured definition (measurement and field)"
        return result
    try:
        times, values = observe.history(monitor, start=start - monitor.window, end=end)
    except influx.InfluxError as exc:
        result.error = f"InfluxDB: {exc}"
        return result
    result.series = [(t, v) for t, v in zip(times, values, strict=True) if t > _ms(start)]
    try:
        _replay(monitor, result, times, values)
    except (ValueError, ArithmeticError) as exc:  # settings past validation (stored rows)
        logger.warning("backtest of monitor %s failed: %r", monitor.pk, exc)
        result.evaluations, result.events = [], []
        result.error = f"this definition cannot be evaluated: {exc}"
    return result


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _replay(monitor: Monitor, result: Backtest, times: list[int], values: list[float]) -> None:
    step_ms = int(result.interval.total_seconds() * 1000)
    at_ms = list(range(_ms(result.start) + step_ms, _ms(result.end) + 1, step_ms))
    aggregates = aggregate.sliding(
        times,
        values,
        at_ms=at_ms,
        window_ms=int(monitor.window.total_seconds() * 1000),
        name=monitor.aggregation,
        pct=monitor.percentile,
    )
    state = ac.MonitorState()
    for t, value in zip(at_ms, aggregates, strict=True):
        now = datetime.fromtimestamp(t / 1000, tz=UTC)
        state, events, outcome = step(monitor, state, value=value, error=None, now=now)
        result.evaluations.append(
            {"time": t, "value": value, "status": str(state.status), "reason": outcome.message}
        )
        result.events.extend(
            {"time": t, "kind": str(e.kind), "value": value, "notifies": e.notifies} for e in events
        )
