"""The arrival evaluator's quiet path (devices/arrival/evaluator.py: ``settled``, ``Cached``):
a passing reading of a settled monitor only counts a pass. These check, against alerts_core's
own transition, that what the quiet path folds in is exactly the state ``step`` would build, for
every kind of state, and that every state it refuses would have changed more than that. Pure."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest

import alerts_core as ac
from devices.arrival.evaluator import Cached, settled
from monitors.models import Monitor

T0 = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


def _states() -> list[ac.MonitorState]:
    """Every combination of the fields ``settled`` looks at (and some it does not)."""
    out = []
    for (
        status,
        alerting,
        warning,
        announced,
        failures,
        flapping,
        history,
        fired,
        silenced,
    ) in itertools.product(
        [ac.Status.OK, ac.Status.PENDING, ac.Status.FIRING, ac.Status.WARNING],
        [False, True],
        [False, True],
        [False, True],
        [0, 2],
        [False, True],
        [(0, 0), (0, 21), (0, 5), (1, 21)],
        [None, T0],
        [False, True],
    ):
        out.append(
            ac.MonitorState(
                status=status,
                alerting=alerting,
                warning=warning,
                announced=announced,
                failures=failures,
                passes=3,
                flapping=flapping,
                history=history[0],
                history_len=history[1],
                fired_at=fired,
                since=T0,
                last_notified_at=T0 if announced else None,
                silenced=silenced,
                value=20.0,
                reason="20 is below 30",
            )
        )
    return out


POLICIES = [
    ac.Policy(flap_detection=False),
    ac.Policy(flap_detection=True),
    ac.Policy(pending_for=3, recover_after=2, repeat_every=timedelta(seconds=1)),
]


@pytest.mark.parametrize("policy", POLICIES)
def test_a_settled_state_taking_passes_is_what_the_transition_builds(policy):
    passed = [ac.Outcome.passed(value=v, message=f"{v} is below 30") for v in (20.0, 21.5, 20.0)]
    checked = 0
    for state in _states():
        if not settled(state, policy):
            continue
        expected = state
        for i, outcome in enumerate(passed):
            expected, events = ac.transition(
                expected, outcome, policy, T0 + timedelta(seconds=i + 1), silenced=state.silenced
            )
            assert events == []
        entry = Cached(Monitor(), state, state, 0.0)
        entry.quiet, entry.quiet_outcome = len(passed), passed[-1]
        assert entry.current() == expected
        assert entry.quiet == 0
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("policy", POLICIES)
def test_a_settled_state_only_counts_a_pass_whenever_it_comes(policy):
    """However long after its last change (a repeat interval, a flap window), and silenced or
    not as it was: the quiet path does not look at the time."""
    outcome = ac.Outcome.passed(value=20.0, message="20 is below 30")
    for state in _states():
        if not settled(state, policy):
            continue
        for later in (timedelta(seconds=1), timedelta(hours=5)):
            after, events = ac.transition(
                state, outcome, policy, T0 + later, silenced=state.silenced
            )
            assert events == []
            assert after == dataclasses.replace(
                state, passes=state.passes + 1, value=outcome.value, reason=outcome.message
            )


def test_states_with_something_to_undo_are_not_settled():
    policy = ac.Policy(flap_detection=True)
    base = ac.MonitorState(status=ac.Status.OK, since=T0, history_len=21)
    assert settled(base, policy)
    for change in (
        {"status": ac.Status.PENDING},
        {"alerting": True},
        {"warning": True},
        {"announced": True},
        {"failures": 1},
        {"flapping": True},
        {"history": 1},
        {"history_len": 20},
        {"fired_at": T0},
        {"since": None},
    ):
        assert not settled(dataclasses.replace(base, **change), policy), change
