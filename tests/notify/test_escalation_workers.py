"""Escalation with real worker processes: a real Celery worker takes a step at its due time
from the run beat's tick queued for it (no second tick), and a worker killed between two
steps (after the first committed, before its deliveries were queued) neither loses the first
step's notifications nor takes either step twice."""

from __future__ import annotations

import os
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection

from monitors.escalation_policies import StepInput
from monitors.models import Escalation, Notification
from monitors.notify import escalation, tasks
from tests.conftest import start_celery_worker, stop_celery_worker
from tests.factories import ChannelFactory, MonitorFactory, UserFactory
from tests.notify.test_end_to_end import _database_url
from tests.notify.test_escalation import open_incident, policy_of, told, worker_killed_after

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def test_a_real_worker_takes_the_step_at_its_due_time_from_one_tick(receiver, settings):
    owner = UserFactory(username="alice")
    hook = ChannelFactory(owner=owner, name="on call", config={"url": receiver.url})
    policy_of(owner, [StepInput(after_minutes=1, channels=[hook])])
    queue = f"test-escalation-{os.getpid()}"
    settings.CELERY_DELIVERY_QUEUE = queue  # read when a task is sent (growalert.celery.route)
    worker, log = start_celery_worker(
        "escalation",
        DATABASE_URL=_database_url(),
        CELERY_QUEUE=queue,
        WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="true",
    )
    try:
        log_path = Path(log.name)
        assert wait_for(lambda: " ready." in log_path.read_text()), "the worker did not start"
        # due 4 s from now; one tick a second before it (as beat's would be) sees it coming
        # and queues a run at that time
        opened = datetime.now(UTC) - timedelta(minutes=1) + timedelta(seconds=4)
        incident = open_incident(MonitorFactory(owner=owner), at=opened)
        due = opened + timedelta(minutes=1)
        tasks.escalate_due_incidents.apply_async(eta=due - timedelta(seconds=1))  # no other
        assert wait_for(lambda: bool(told(incident)))
        assert wait_for(lambda: bool(receiver.accepted))  # and it was delivered
    finally:
        stop_celery_worker(worker, log)
    # the tick named the due time to wake at (so it had not taken the step itself: a taken
    # row is not due any more), and the run at that time took it, not before
    assert cache.get(f"growalert:escalation-wake:{due.timestamp():.6f}") == 1
    row = Notification.objects.get(incident=incident, event="escalated")
    assert row.created_at >= due
    assert Escalation.objects.get(incident=incident).finished_reason == "every step was taken"
    connection.close()


KILLED_AFTER_COMMIT = textwrap.dedent(
    """
    import time
    import django
    django.setup()
    from monitors.notify import escalation, queue

    def hang(*args, **kwargs):
        print("step committed", flush=True)
        time.sleep(60)

    queue.enqueue = hang  # the step committed; its deliveries are never queued
    print(escalation.take_due(), flush=True)
    """
)


def test_a_worker_killed_between_steps_loses_nothing_and_repeats_nothing():
    owner = UserFactory(username="alice")
    first, second = (ChannelFactory(owner=owner, name=n) for n in ("first", "second"))
    policy_of(
        owner,
        [
            StepInput(after_minutes=1, channels=[first]),
            StepInput(after_minutes=30, channels=[second]),
        ],
    )
    incident = open_incident(
        MonitorFactory(owner=owner), at=datetime.now(UTC) - timedelta(minutes=2)
    )
    escalation.discover()
    with worker_killed_after(KILLED_AFTER_COMMIT, says="step committed"):
        pass  # killed as soon as the first step's transaction committed
    # the first step is written, once, and waits for the sweeper (its task was never queued)
    assert told(incident) == [("first", 1)]
    [row] = Notification.objects.filter(incident=incident, event="escalated")
    assert row.status == Notification.DeliveryStatus.PENDING
    swept = Notification.objects.filter(pk=row.pk, next_attempt_at__lte=datetime.now(UTC))
    assert swept.exists()  # deliver_due_notifications re-queues it once it is LOST_AFTER old
    state = Escalation.objects.get(incident=incident)
    assert (state.next_step, state.finished_at) == (1, None)
    assert escalation.take_due() == 0  # the first step is not taken again
    # the second step, when it falls due, is taken once
    Escalation.objects.filter(incident=incident).update(due_at=datetime.now(UTC))
    assert escalation.take_due() == 1
    assert escalation.take_due() == 0
    assert told(incident) == [("first", 1), ("second", 2)]
    connection.close()
