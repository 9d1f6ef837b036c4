"""POST /monitors/preview: replay a monitor's definition over its history through the same
step as live evaluation, and say what it would have done."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

import alerts_core as ac
from monitors.evaluate import aggregate
from monitors.evaluate.step import step
from monitors.influxdb import client as influx
from monitors.influxdb import explain, observe
from monitors.models import Monitor

logger = logging.getLogger(__name__)


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
        kinds = ac.EventKind
        told = (kinds.FIRED, kinds.RESOLVED, kinds.FLAPPING_STARTED, kinds.WARNING_RAISED)
        counts: dict[str, int] = dict.fromkeys(told, 0)
        for event in self.events:  # what the user would have been told
            if event["kind"] in counts and event["notifies"]:
                counts[event["kind"]] += 1
        firing_s = sum(
            self.interval.total_seconds()
            for e in self.evaluations
            if e["status"] == ac.Status.FIRING
        )
        return {
            "fired": counts[kinds.FIRED],
            "resolved": counts[kinds.RESOLVED],
            "flapped": counts[kinds.FLAPPING_STARTED],
            "warnings": counts[kinds.WARNING_RAISED],
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
    fired, flapped = counts[ac.EventKind.FIRED], counts[ac.EventKind.FLAPPING_STARTED]
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
    if not times:
        result.error = _why_empty(monitor)
        if result.error:
            return result
    try:
        _replay(monitor, result, times, values)
    except (ValueError, ArithmeticError) as exc:  # settings past validation (stored rows)
        logger.warning("backtest of monitor %s failed: %r", monitor.pk, exc)
        result.evaluations, result.events = [], []
        result.error = f"this definition cannot be evaluated: {exc}"
    return result


def _why_empty(monitor: Monitor) -> str | None:
    """What the definition names that the source lacks (None: it all exists)."""
    try:
        return explain.why_empty(monitor)
    except influx.InfluxError as exc:
        logger.info("could not explain an empty preview of %s: %s", monitor.pk, exc)
        return None


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
