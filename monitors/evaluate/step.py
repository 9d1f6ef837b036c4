"""One evaluation step: an observation becomes an outcome, and alerts_core's pure transition
function decides the new state and the events.

The same step serves the live pipeline (``evaluate.pipeline``), the dry run
(``evaluate.dry_run``: POST /monitors/<id>/test) and the backtest (``evaluate.backtest``:
POST /monitors/preview), so the three can never decide differently.
"""

from __future__ import annotations

import math
from datetime import datetime

import alerts_core as ac
from monitors.evaluate.thresholds import Thresholds, Verdict, judge
from monitors.influxdb.queries import influx_duration
from monitors.models import Monitor

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
