"""POST /monitors/<id>/test: evaluate a monitor now from its stored state, write nothing,
notify nobody."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

import alerts_core as ac
from monitors.evaluate import fleet
from monitors.evaluate.step import UNREADABLE_STATE, Unevaluable, reason_for, step
from monitors.fleet import series_label
from monitors.influxdb import fleet as influx_fleet
from monitors.influxdb import observe
from monitors.models import Monitor
from monitors.vocabulary import STATUS_ORDER

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DryRun:
    query: str
    value: float | None
    status: str
    previous_status: str
    reason: str
    events: list[str]
    duration_ms: float
    #: a fleet monitor's series, worst first: key, status it would have, value, reason
    series: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        extra = {} if self.series is None else {"series": self.series}
        return extra | {
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
    if monitor.is_fleet:
        return _dry_run_fleet(monitor, started)
    observation = observe.observe(monitor)
    try:
        state = monitor.alert_state()
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


def _dry_run_fleet(monitor: Monitor, started: float) -> DryRun:
    """A fleet monitor's grouped query now: each series decided from its stored state."""
    observation = influx_fleet.observe_fleets([monitor])[monitor.pk]
    decisions, unwatched = fleet.decide_all(monitor, observation, timezone.now())
    status, reason = fleet.summary(
        monitor, [d.state.status for d in decisions], decisions, unwatched
    )
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    decisions.sort(key=lambda d: (rank[d.state.status], d.key))
    worst = decisions[0].value if decisions else None
    return DryRun(
        query=observation.query.display() if observation.query else "",
        value=worst,
        status=status,
        previous_status=str(monitor.status),
        reason=reason,
        events=[
            f"{e.kind} {series_label(d.tags, monitor.group_by)}"
            for d in decisions
            for e in d.events
            if e.notifies
        ],
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        series=[
            {
                "key": d.key,
                "status": d.state.status.value,
                "value": d.value,
                "reason": d.outcome.message,
            }
            for d in decisions
        ],
    )
