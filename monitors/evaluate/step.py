"""One evaluation step: an observation becomes an outcome, and alerts_core's pure transition
function decides the new state and the events.

The same step serves the live pipeline (``evaluate.pipeline``), the dry run
(``evaluate.dry_run``: POST /monitors/<id>/test) and the backtest (``evaluate.backtest``:
POST /monitors/preview), so the three can never decide differently.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import alerts_core as ac
from monitors import display
from monitors.definition import Thresholds
from monitors.evaluate import time_zones
from monitors.evaluate.thresholds import Verdict, judge
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


def outcome_for(
    monitor: Monitor,
    *,
    value: float | None,
    error: Exception | None,
    firing: bool,
    thresholds: Thresholds | None = None,
) -> ac.Outcome:
    """What one observation means for the state machine (``thresholds``: the monitor's, when
    the caller already has them: a fleet monitor judges thousands of series per tick)."""
    if error is not None:
        return ac.Outcome.error(error, message=f"InfluxDB: {error}")
    if value is None:
        return ac.Outcome.no_data(message=f"no data in the last {_window_text(monitor)}")
    judgement = judge(value, thresholds or monitor.thresholds(), firing=firing, show=monitor.show)
    if judgement.verdict is Verdict.FAIL:
        return ac.Outcome.failed(value=value, message=judgement.reason)
    if judgement.verdict is Verdict.WARN:
        return ac.Outcome.degraded(value=value, message=judgement.reason)
    return ac.Outcome.passed(value=value, message=judgement.reason)


def _window_text(monitor: Monitor) -> str:
    return display.duration(monitor.window)


# Outcomes by (value, firing) for one set of rules (one fleet monitor's tick): an outcome is a
# pure function of them, and thousands of series read the same few values (a reason's text
# costs more than the whole state transition). Only outcomes without an error are kept.
Judged = dict[tuple[float | None, bool], ac.Outcome]


def step(
    monitor: Monitor,
    state: ac.MonitorState,
    *,
    value: float | None,
    error: Exception | None,
    now: datetime,
    silenced: bool = False,
    rules: tuple[ac.Policy, Thresholds | None] | None = None,
    judged: Judged | None = None,
) -> tuple[ac.MonitorState, list[ac.Event], ac.Outcome]:
    """One evaluation: observation -> outcome -> alerts_core transition. ``rules``: the
    monitor's policy and its thresholds at ``now`` (None: picked here, day or night), when the
    caller has built them once for many series or ticks. ``judged``: outcomes already decided
    with these same rules (see ``Judged``)."""
    policy, thresholds = rules if rules is not None else (monitor.policy(), None)
    if thresholds is None:  # day or night: decided by the moment of this evaluation
        thresholds = monitor.thresholds_at(now, time_zones.of(monitor))
    firing = state.status == ac.Status.FIRING
    memo = (value, firing)
    outcome = judged.get(memo) if judged is not None and error is None else None
    if outcome is None:
        outcome = outcome_for(
            monitor, value=value, error=error, firing=firing, thresholds=thresholds
        )
        if judged is not None and error is None:
            judged[memo] = outcome
    new_state, events = ac.transition(state, outcome, policy, now, silenced=silenced)
    return new_state, events, outcome


def significant(state: ac.MonitorState, pending_for: int, recover_after: int) -> tuple[Any, ...]:
    """What of a state the next transition can tell apart. The value and reason only
    describe; ``failures`` is read only below ``pending_for`` (reaching it fires) and
    ``passes`` only below ``recover_after`` (reaching it resolves), so their counts past those
    are the same state: a steady series is not rewritten every tick."""
    return (
        state.status,
        state.alerting,
        state.warning,
        min(state.failures, pending_for),
        min(state.passes, recover_after),
        state.since,
        state.fired_at,
        state.last_notified_at,
        state.announced,
        state.silenced,
        state.flapping,
        state.history,
        state.history_len,
    )
