"""The alert state machine: examples worked by hand, then invariants checked by hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts_core import (
    DataPolicy,
    EventKind,
    MonitorState,
    Outcome,
    Policy,
    Status,
    pause,
    redefine,
    resume,
    transition,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PASS, FAIL, WARN = Outcome.passed(1.0), Outcome.failed(9.0, "above 5"), Outcome.degraded(4.0)
NO_DATA, ERROR = Outcome.no_data(), Outcome.error(ConnectionError("refused"))


QUIET = Policy(flap_detection=False)


def run(outcomes, policy=QUIET, *, silenced=None, state=None, step=60):
    """Feeds outcomes one a minute; returns the final state and [(index, kind, notifies)]."""
    state = state or MonitorState()
    log = []
    for i, outcome in enumerate(outcomes):
        quiet = bool(silenced and silenced[i])
        state, events = transition(
            state, outcome, policy, T0 + timedelta(seconds=step * i), silenced=quiet
        )
        log += [(i, e.kind.value, e.notifies) for e in events]
    return state, log


def test_a_failure_fires_at_once_and_a_pass_resolves():
    state, log = run([PASS, FAIL, FAIL, PASS])
    assert log == [(1, "fired", True), (3, "resolved", True)]
    assert state.status is Status.OK
    assert not state.alerting


def test_pending_for_needs_that_many_consecutive_failures():
    policy = Policy(pending_for=3, flap_detection=False)
    state, log = run([FAIL, FAIL, PASS, FAIL, FAIL], policy)
    assert log == []
    assert state.status is Status.PENDING
    assert state.failures == 2
    state, log = run([FAIL, FAIL, FAIL], policy)
    assert log == [(2, "fired", True)]
    assert state.status is Status.FIRING


def test_recover_after_is_hysteresis():
    policy = Policy(recover_after=3, flap_detection=False)
    state, log = run([FAIL, PASS, PASS, FAIL, PASS, PASS, PASS], policy)
    assert log == [(0, "fired", True), (6, "resolved", True)]
    state, _ = run([FAIL, PASS, PASS], policy)
    assert state.status is Status.FIRING
    assert state.passes == 2


def test_repeat_every_renotifies_while_firing():
    policy = Policy(repeat_every=timedelta(minutes=3), flap_detection=False)
    _, log = run([FAIL] * 8, policy)
    assert log == [(0, "fired", True), (3, "repeated", True), (6, "repeated", True)]


def test_degraded_raises_and_clears_a_warning():
    state, log = run([PASS, WARN, WARN, PASS])
    assert log == [(1, "warning_raised", True), (3, "warning_cleared", True)]
    assert state.status is Status.OK


def test_firing_supersedes_a_warning_and_resolving_into_degraded_warns_again():
    state, log = run([WARN, FAIL, WARN])
    assert log == [
        (0, "warning_raised", True),
        (1, "fired", True),
        (2, "resolved", True),
        (2, "warning_raised", True),
    ]
    assert state.status is Status.WARNING


@pytest.mark.parametrize(
    ("policy", "status", "alerting"),
    [
        (DataPolicy.ALERTING, Status.FIRING, True),
        (DataPolicy.OK, Status.OK, False),
        (DataPolicy.STATUS, Status.NO_DATA, False),
        (DataPolicy.KEEP_LAST, Status.OK, False),
    ],
)
def test_no_data_follows_its_policy(policy, status, alerting):
    state, _ = run([PASS, NO_DATA], Policy(no_data=policy, flap_detection=False))
    assert (state.status, state.alerting) == (status, alerting)


def test_errors_never_resolve_an_open_incident_under_the_status_policy():
    state, log = run([FAIL, ERROR, ERROR], Policy(error=DataPolicy.STATUS, flap_detection=False))
    assert log == [(0, "fired", True)]
    assert state.status is Status.ERROR
    assert state.alerting
    state, log = run([PASS], state=state)
    assert log == [(0, "resolved", True)]


def test_keep_last_leaves_a_firing_monitor_firing():
    state, log = run([FAIL, ERROR, ERROR], Policy(error=DataPolicy.KEEP_LAST, flap_detection=False))
    assert state.status is Status.FIRING
    assert log == [(0, "fired", True)]


def test_silence_suppresses_then_notifies_when_it_ends_while_firing():
    outcomes = [PASS, FAIL, FAIL, FAIL, FAIL]
    silenced = [False, True, True, False, False]
    state, log = run(outcomes, silenced=silenced)
    assert log == [(1, "fired", False), (3, "fired", True)]
    assert state.announced


def test_a_silenced_incident_that_resolved_in_the_silence_is_never_told():
    _, log = run([FAIL, PASS, PASS], silenced=[True, True, False])
    assert log == [(0, "fired", False), (1, "resolved", False)]


def test_resolved_during_a_silence_is_told_when_it_ends():
    _, log = run([FAIL, PASS, PASS], silenced=[False, True, False])
    assert log == [(0, "fired", True), (1, "resolved", False), (2, "resolved", True)]


def test_flapping_is_detected_suppresses_notifications_and_says_so():
    policy = Policy(flap_window=5, flap_high=50, flap_low=25)
    state, log = run([FAIL, PASS] * 4, policy)
    kinds = [(k, n) for _, k, n in log]
    assert ("flapping_started", True) in kinds
    start = kinds.index(("flapping_started", True))
    assert all(not n for k, n in kinds[start + 1 :])
    assert state.flapping
    state, log = run([PASS] * 6, policy, state=state)
    assert ("flapping_stopped", True) in [(k, n) for _, k, n in log]
    assert not state.flapping


def test_flap_percent_weights_recent_changes_more():
    recent = MonitorState(history=0b0000000000000000000_01, history_len=21)
    old = MonitorState(history=0b1000000000000000000_00, history_len=21)
    assert recent.flap_percent() == pytest.approx(1.2 * 100 / 20)
    assert old.flap_percent() == pytest.approx(0.8 * 100 / 20)
    assert MonitorState(history_len=3).flap_percent() is None


def test_pausing_a_firing_monitor_ends_its_incident_and_tells_who_heard_it_fire():
    state, _ = run([FAIL])
    paused, events = pause(state, T0)
    assert paused.status is Status.PAUSED
    assert not paused.alerting
    assert not paused.announced
    [event] = events
    assert (event.kind, event.notifies) == (EventKind.PAUSED, True)
    assert (event.previous_status, event.status) == (Status.FIRING, Status.PAUSED)
    assert event.value == 9.0
    assert "paused" in event.message
    assert pause(paused, T0) == (paused, [])  # a second pause: nothing


def test_resume_starts_afresh_with_no_incident():
    state, _ = run([FAIL, FAIL, FAIL])
    paused, _ = pause(state, T0)
    resumed = resume(paused, T0 + timedelta(hours=1))
    later = T0 + timedelta(hours=1)
    assert resumed == MonitorState(status=Status.OK, since=later, reason="resumed")
    assert resume(resumed, T0) is resumed  # not paused: unchanged


def test_pausing_a_quiet_monitor_tells_nobody():
    state, _ = run([PASS, FAIL], Policy(pending_for=2, flap_detection=False))
    assert state.status is Status.PENDING
    paused, events = pause(state, T0)
    assert paused.status is Status.PAUSED
    assert events == []


def test_an_incident_nobody_heard_of_ends_quietly():
    state, _ = run([FAIL], silenced=[True])
    assert state.alerting
    assert not state.announced
    _, events = pause(state, T0)
    assert [(e.kind, e.notifies) for e in events] == [(EventKind.PAUSED, False)]
    state, _ = run([FAIL])
    _, events = redefine(state, T0, silenced=True)  # heard it fire, but silenced now
    assert [(e.kind, e.notifies) for e in events] == [(EventKind.REDEFINED, False)]


def test_redefining_a_firing_monitor_starts_afresh_with_a_redefined_event():
    state, _ = run([FAIL])
    fresh, events = redefine(state, T0)
    assert fresh == MonitorState(status=Status.OK, since=T0, reason="definition changed")
    assert [(e.kind, e.notifies, e.status) for e in events] == [
        (EventKind.REDEFINED, True, Status.OK)
    ]
    paused, _ = pause(state, T0)
    assert redefine(paused, T0) == (paused, [])  # stays paused; its incident already ended


def test_state_round_trips_through_json():
    state, _ = run([FAIL, FAIL, WARN], Policy(recover_after=2))
    assert MonitorState.from_dict(state.to_dict()) == state


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="pending_for"):
        Policy(pending_for=0)
    with pytest.raises(ValueError, match="repeat_every"):
        Policy(repeat_every=timedelta(0))


# ------------------------------------------------------------------------ properties

outcome_st = st.sampled_from([PASS, FAIL, WARN, NO_DATA, ERROR])
data_policy_st = st.sampled_from(list(DataPolicy))
policy_st = st.builds(
    Policy,
    pending_for=st.integers(1, 4),
    recover_after=st.integers(1, 4),
    repeat_every=st.one_of(st.none(), st.integers(1, 5).map(lambda m: timedelta(minutes=m))),
    no_data=data_policy_st,
    error=data_policy_st,
    flap_detection=st.booleans(),
    flap_window=st.integers(3, 10),
)
run_st = st.lists(st.tuples(outcome_st, st.booleans()), min_size=1, max_size=80)


def replay(policy, steps):
    state = MonitorState()
    trace = []
    for i, (outcome, silenced) in enumerate(steps):
        before = state
        state, events = transition(
            state, outcome, policy, T0 + timedelta(minutes=i), silenced=silenced
        )
        trace.append((before, outcome, silenced, state, events))
    return trace


def alternates(kinds):
    open_ = False
    for kind in kinds:
        if kind is EventKind.FIRED:
            if open_:
                return False
            open_ = True
        elif kind is EventKind.RESOLVED:
            if not open_:
                return False
            open_ = False
    return True


@settings(max_examples=300, deadline=None)
@given(policy_st, run_st)
def test_notified_fired_and_resolved_alternate_starting_with_fired(policy, steps):
    told = [e.kind for *_, events in replay(policy, steps) for e in events if e.notifies]
    assert alternates(told)


@settings(max_examples=300, deadline=None)
@given(policy_st, run_st)
def test_state_changes_alternate_too(policy, steps):
    changes = [e.kind for *_, events in replay(policy, steps) for e in events if not e.catch_up]
    assert alternates(changes)


@settings(max_examples=300, deadline=None)
@given(policy_st, run_st)
def test_nothing_notifies_while_silenced_or_flapping(policy, steps):
    for before, _, silenced, after, events in replay(policy, steps):
        loud = [e.kind for e in events if e.notifies]
        if silenced:
            assert loud == []
        if before.flapping and after.flapping:
            assert loud == []
        if after.flapping and not before.flapping:
            assert set(loud) <= {EventKind.FLAPPING_STARTED}


@settings(max_examples=300, deadline=None)
@given(policy_st, run_st)
def test_fires_after_exactly_pending_for_failures_and_resolves_after_recover_after(policy, steps):
    for before, _outcome, _, after, events in replay(policy, steps):
        kinds = {e.kind for e in events if not e.catch_up}
        if EventKind.FIRED in kinds:
            assert after.failures == policy.pending_for
            assert not before.alerting
        if EventKind.RESOLVED in kinds:
            assert after.passes == policy.recover_after
        if before.alerting and after.alerting is False:
            assert EventKind.RESOLVED in kinds
        if after.alerting and not before.alerting:
            assert EventKind.FIRED in kinds
        assert after.alerting == (after.status is Status.FIRING) or after.status in (
            Status.NO_DATA,
            Status.ERROR,
            Status.PAUSED,
        )


def test_the_fast_state_constructor_builds_the_same_frozen_state() -> None:
    import dataclasses

    from alerts_core.state import _new_state

    values = MonitorState(
        status=Status.FIRING,
        alerting=True,
        failures=3,
        since=T0,
        fired_at=T0,
        history=0b101,
        history_len=3,
        value=41.5,
        reason="above 35",
    )
    built = _new_state(*(getattr(values, f.name) for f in dataclasses.fields(MonitorState)))

    assert built == values
    assert hash(built) == hash(values)
    assert repr(built) == repr(values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = Status.OK
