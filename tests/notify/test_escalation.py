"""Escalation: steps taken on a controlled clock, the last one repeated until someone
acknowledges, working hours by the owner's time zone, resolution and silences, a worker killed
mid-step (the due row is taken again, once), and the policy service's bounds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.models import Profile
from monitors import escalation_policies
from monitors.escalation_policies import PolicyInput, StepInput
from monitors.models import MAX_STEPS, Escalation, EscalationStep, Incident, Notification, Silence
from monitors.notify import acknowledge, escalation
from monitors.vocabulary import AckRoute
from tests.factories import ChannelFactory, MonitorFactory, UserFactory
from tests.notify.test_end_to_end import _database_url

pytestmark = pytest.mark.django_db

OPENED = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)  # a Wednesday


def policy_of(owner, steps, *, repeat=None, default=True, name=None, at=None):
    """A policy written before the incidents of the test open (escalation covers incidents
    that open while their policy exists)."""
    with time_machine.travel(at or OPENED - timedelta(hours=1), tick=False):
        return escalation_policies.policy_save(
            owner=owner,
            data=PolicyInput(
                name=name or f"on call {owner.pk}",
                steps=steps,
                repeat_minutes=repeat,
                is_default=default,
            ),
        )


def open_incident(monitor, at=OPENED):
    return Incident.objects.create(monitor=monitor, opened_at=at, summary="31 °C, above 30 °C")


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def channels(owner):
    return {
        name: ChannelFactory(owner=owner, name=name)
        for name in ("first", "second", "office", "night")
    }


def take(at):
    with time_machine.travel(at, tick=False):
        escalation.discover()
        return escalation.run_due()


def told(incident):
    rows = Notification.objects.filter(incident=incident, event="escalated")
    return sorted((n.channel.name, n.payload["escalation"]["step"]) for n in rows)


def test_steps_follow_the_clock_and_the_last_repeats_until_acknowledged(owner, channels):
    policy_of(
        owner,
        [
            StepInput(after_minutes=15, channels=[channels["second"]]),
            StepInput(after_minutes=5, channels=[channels["first"]]),  # kept in minute order
        ],
        repeat=10,
    )
    incident = open_incident(MonitorFactory(owner=owner))
    minute = timedelta(minutes=1)

    assert take(OPENED + 4 * minute).taken == 0
    assert take(OPENED + 5 * minute).taken == 1
    assert told(incident) == [("first", 1)]
    assert take(OPENED + 14 * minute).taken == 0
    take(OPENED + 15 * minute)
    assert told(incident) == [("first", 1), ("second", 2)]
    assert take(OPENED + 24 * minute).taken == 0
    take(OPENED + 25 * minute)
    repeats = Notification.objects.filter(incident=incident, payload__escalation__repeat=1)
    assert [n.channel.name for n in repeats] == ["second"]

    with time_machine.travel(OPENED + 26 * minute, tick=False):
        acknowledge.acknowledge(incident.pk, via=AckRoute.API, by=owner)
    assert take(OPENED + 60 * minute).taken == 0
    assert Notification.objects.filter(incident=incident, event="escalated").count() == 3
    row = Escalation.objects.get(incident=incident)
    assert row.finished_reason == "acknowledged"


def test_the_tick_queues_a_run_at_each_coming_due_time_once(owner, channels):
    """Beat's tick looks 1.5 s ahead and names the due times to wake at (one per 100 ms, its
    latest); the next tick does not queue them again; the run at that time takes the steps."""
    policy_of(
        owner,
        [
            StepInput(after_minutes=5, channels=[channels["first"]]),
            StepInput(after_minutes=7, channels=[channels["second"]]),
        ],
    )
    first = open_incident(MonitorFactory(owner=owner))
    second = open_incident(MonitorFactory(owner=owner), at=OPENED + timedelta(milliseconds=30))
    due = OPENED + timedelta(minutes=5, milliseconds=30)
    one_second = timedelta(seconds=1)
    with time_machine.travel(due - 1.2 * one_second, tick=False):
        tick = escalation.tick()
    assert (tick.taken, tick.wakes) == (0, [due])
    with time_machine.travel(due - 0.4 * one_second, tick=False):
        assert escalation.tick().wakes == []  # the tick before queued it
    with time_machine.travel(due - timedelta(milliseconds=1), tick=False):
        assert escalation.take_due() == 1  # the first incident's step only
    with time_machine.travel(due, tick=False):
        assert escalation.take_due() == 1
        assert escalation.tick().wakes == []  # the next steps are two minutes away
    assert told(first) == told(second) == [("first", 1)]
    with time_machine.travel(OPENED + timedelta(minutes=7) - one_second, tick=False):
        assert escalation.tick().wakes == [OPENED + timedelta(minutes=7, milliseconds=30)]


def test_a_step_taken_twice_writes_its_notifications_once(owner, channels):
    policy_of(owner, [StepInput(after_minutes=1, channels=[channels["first"]])])
    incident = open_incident(MonitorFactory(owner=owner))
    take(OPENED + timedelta(minutes=2))
    Escalation.objects.filter(incident=incident).update(next_step=0, finished_at=None)
    take(OPENED + timedelta(minutes=2))  # a replay of the same step: same idempotency keys
    assert told(incident) == [("first", 1)]


def test_working_hours_steps_follow_the_owners_time_zone(owner, channels):
    Profile.objects.update_or_create(user=owner, defaults={"time_zone": "America/New_York"})
    policy_of(
        owner,
        [
            StepInput(after_minutes=5, channels=[channels["office"]], hours="working"),
            StepInput(after_minutes=5, channels=[channels["night"]], hours="after"),
        ],
        at=OPENED - timedelta(hours=3),
    )
    # 14:00 UTC is 09:00 in New York on a Wednesday: working hours
    day = open_incident(MonitorFactory(owner=owner))
    take(OPENED + timedelta(minutes=5))
    take(OPENED + timedelta(minutes=5))
    assert told(day) == [("office", 1)]
    # its message shows times in the owner's zone
    [row] = Notification.objects.filter(incident=day, event="escalated")
    assert row.payload["time_zone"] == "America/New_York"
    # 12:00 UTC is 07:00 in New York: after hours (it would be working hours in UTC)
    early = OPENED - timedelta(hours=2)
    night = open_incident(MonitorFactory(owner=owner), at=early)
    take(early + timedelta(minutes=5))
    take(early + timedelta(minutes=5))
    assert told(night) == [("night", 2)]


def test_a_resolved_incident_is_not_escalated(owner, channels):
    policy_of(owner, [StepInput(after_minutes=5, channels=[channels["first"]])])
    incident = open_incident(MonitorFactory(owner=owner))
    with time_machine.travel(OPENED + timedelta(minutes=1), tick=False):
        escalation.discover()
    Incident.objects.filter(pk=incident.pk).update(resolved_at=OPENED + timedelta(minutes=3))
    assert take(OPENED + timedelta(minutes=5)).taken == 1
    assert told(incident) == []
    assert Escalation.objects.get(incident=incident).finished_reason == "resolved"


def test_escalation_waits_while_the_monitor_is_silenced(owner, channels):
    policy_of(owner, [StepInput(after_minutes=5, channels=[channels["first"]])])
    monitor = MonitorFactory(owner=owner)
    incident = open_incident(monitor)
    Silence.objects.create(
        owner=owner, monitor=monitor, starts_at=OPENED, ends_at=OPENED + timedelta(minutes=30)
    )
    take(OPENED + timedelta(minutes=5))
    assert told(incident) == []
    take(OPENED + timedelta(minutes=31))
    assert told(incident) == [("first", 1)]


def test_a_monitors_own_policy_wins_over_the_default_and_others_are_not_touched(owner, channels):
    policy_of(owner, [StepInput(after_minutes=5, channels=[channels["first"]])])
    own = policy_of(
        owner, [StepInput(after_minutes=2, channels=[channels["night"]])], name="own", default=False
    )
    mine = open_incident(MonitorFactory(owner=owner, escalation_policy=own))
    stranger = UserFactory(username="charlie")
    theirs = open_incident(MonitorFactory(owner=stranger))  # charlie has no policy
    take(OPENED + timedelta(minutes=5))
    assert told(mine) == [("night", 1)]
    assert not Escalation.objects.filter(incident=theirs).exists()


def test_an_incident_opened_before_its_policy_existed_is_not_escalated(owner, channels):
    incident = open_incident(MonitorFactory(owner=owner), at=OPENED - timedelta(days=1))
    policy_of(owner, [StepInput(after_minutes=5, channels=[channels["first"]])], at=OPENED)
    take(OPENED + timedelta(minutes=10))
    assert told(incident) == []


def test_policy_bounds_are_sentences(owner, channels):
    stranger_channel = ChannelFactory(owner=UserFactory(username="charlie"))
    with pytest.raises(ValidationError) as caught:
        policy_of(
            owner,
            [
                StepInput(after_minutes=0, channels=[channels["first"]]),
                StepInput(after_minutes=5, channels=[]),
                StepInput(after_minutes=6, channels=[stranger_channel]),
            ],
            repeat=0,
        )
    errors = caught.value.message_dict
    assert errors["steps"] == [
        "step 1: the minutes must be between 1 and 10080 minutes (7 days).",
        "step 2: choose at least one channel or member to notify.",
        "step 3: a channel is not one of yours.",
    ]
    assert errors["repeat_minutes"] == ["must be between 1 and 1440 minutes (1 day)"]
    too_many = [StepInput(after_minutes=n + 1, channels=[channels["first"]]) for n in range(11)]
    with pytest.raises(ValidationError, match=f"at most {MAX_STEPS} steps"):
        policy_of(owner, too_many)
    assert not EscalationStep.objects.exists()


def test_one_default_policy_per_owner(owner, channels):
    step = [StepInput(after_minutes=5, channels=[channels["first"]])]
    first = policy_of(owner, step)
    second = policy_of(owner, step, name="second")
    first.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)


KILLED_WORKER = textwrap.dedent(
    """
    import sys, time
    import django
    django.setup()
    from monitors.notify import escalation

    def hang(*args, **kwargs):
        print("holding the step", flush=True)
        time.sleep(60)

    escalation._insert_outbox = hang  # the step's rows are claimed and advanced, not committed
    escalation.run_due()
    """
)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_step_leaves_the_row_due_and_it_is_taken_once():
    owner = UserFactory(username="alice")
    channels = [ChannelFactory(owner=owner, name=n) for n in ("first", "second")]
    policy_of(owner, [StepInput(after_minutes=1, channels=channels)])
    incident = open_incident(
        MonitorFactory(owner=owner), at=datetime.now(UTC) - timedelta(minutes=2)
    )
    escalation.discover()
    with worker_killed_after(KILLED_WORKER, says="holding the step"):
        assert escalation.run_due().taken == 0  # the worker holds the row: skipped, not waited on
    deadline = time.monotonic() + 10
    taken = 0
    while not taken and time.monotonic() < deadline:  # Postgres notices the dead backend
        taken = escalation.run_due().taken
    assert taken == 1
    assert escalation.run_due().taken == 0
    assert told(incident) == [("first", 1), ("second", 1)]
    connection.close()


@contextmanager
def worker_killed_after(script: str, *, says: str) -> Iterator[None]:
    """A Django process runs ``script`` against the test database; once it prints ``says`` the
    block runs, then the process is killed with SIGKILL (as a crashed worker is)."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "growalert.settings",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == says
        yield
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
