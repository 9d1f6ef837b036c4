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
from monitors.influxdb.fleet import points_by_series
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


@dataclass
class FleetBacktest:
    """A fleet monitor's backtest: each series replayed alone, as live evaluation decides it."""

    start: datetime
    end: datetime
    interval: timedelta
    series: dict[str, tuple[dict[str, str], Backtest]] = field(default_factory=dict)
    matched: int = 0  # series with data in the period (at most MAX_SERIES replayed)
    label_keys: list[str] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        each = {key: bt.summary() for key, (_, bt) in self.series.items()}
        fired = sum(s["fired"] for s in each.values())
        devices = sum(1 for s in each.values() if s["fired"])
        text = f"would have {_times(fired, 'fired')}" if fired else "would not have fired"
        if fired:
            text += f" across {devices} series"
        text += f" (of {len(self.series)} series"
        if self.matched > len(self.series):
            text += f"; the first {len(self.series)} of {self.matched} replayed"
        text += ")"
        totals = {k: sum(s[k] for s in each.values()) for k in ("resolved", "flapped", "warnings")}
        return {
            "fired": fired,
            **totals,
            "evaluations": sum(s["evaluations"] for s in each.values()),
            "firing_seconds": sum(s["firing_seconds"] for s in each.values()),
            "series_fired": devices,
            "series_count": len(self.series),
            "series_matched": self.matched,
            "text": text,
        }

    def as_dict(self) -> dict[str, Any]:
        per_series = [
            {
                "key": key,
                "label": " / ".join(tags.get(k, "") for k in self.label_keys),
                "tags": tags,
                **{k: v for k, v in bt.summary().items() if k != "text"},
            }
            for key, (tags, bt) in self.series.items()
        ]
        per_series.sort(key=lambda s: (-s["fired"], -s["firing_seconds"], s["key"]))
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "interval_seconds": self.interval.total_seconds(),
            "summary": self.summary(),
            "series": [],
            "per_series": per_series,
            "evaluations": [],
            "events": [],
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
MAX_SERIES = 200  # series of a fleet monitor replayed in one backtest (in key order)


def backtest(
    monitor: Monitor, *, hours: float, end: datetime | None = None, series_key: str = ""
) -> Backtest | FleetBacktest:
    """Replays the monitor over the last ``hours``: at every interval, the aggregate over the
    preceding window is judged and fed through the same state machine as live evaluation.
    A fleet monitor replays each series alone (``series_key``: only that one, in full)."""
    end = end or timezone.now()
    start = end - timedelta(hours=hours)
    step_every = max(monitor.interval, (end - start) / MAX_EVALUATIONS)
    result = Backtest(start=start, end=end, interval=step_every, series=[])
    if monitor.is_fleet and not monitor.raw_query:
        return _backtest_fleet(monitor, start, end, step_every, series_key)
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


def _backtest_fleet(
    monitor: Monitor, start: datetime, end: datetime, step_every: timedelta, series_key: str
) -> Backtest | FleetBacktest:
    result = FleetBacktest(
        start=start, end=end, interval=step_every, label_keys=list(monitor.group_by)
    )
    try:
        found = points_by_series(monitor, start=start - monitor.window, end=end)
    except influx.InfluxError as exc:
        result.error = f"InfluxDB: {exc}"
        return result
    if series_key:
        one = Backtest(start=start, end=end, interval=step_every, series=[])
        chosen = found.get(series_key)
        if chosen is None:
            one.error = f"no data for series {series_key!r} in the period"
            return one
        _replay_series(monitor, one, chosen.points)
        return one
    result.matched = len(found)
    for key in sorted(found)[:MAX_SERIES]:
        replayed = Backtest(start=start, end=end, interval=step_every, series=[])
        _replay_series(monitor, replayed, found[key].points)
        if replayed.error:
            result.error = replayed.error
            break
        result.series[key] = (found[key].tags, replayed)
    return result


def _replay_series(monitor: Monitor, result: Backtest, points: list[tuple[int, float]]) -> None:
    times, values = [t for t, _ in points], [v for _, v in points]
    result.series = [(t, v) for t, v in points if t > _ms(result.start)]
    try:
        _replay(monitor, result, times, values)
    except (ValueError, ArithmeticError) as exc:
        logger.warning("backtest of monitor %s failed: %r", monitor.pk, exc)
        result.evaluations, result.events = [], []
        result.error = f"this definition cannot be evaluated: {exc}"
