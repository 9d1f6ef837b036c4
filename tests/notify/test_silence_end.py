"""When a silence ends, the inbox ends on the truth: what changed while it lasted is told at the
next check, through the real pipeline and a real SMTP server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.gating import comp
from monitors import services
from monitors.models import Monitor, Notification, Status
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory
from tests.monitors.test_pipeline import COOL, HOT, due_again, tick, write

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def emailed_monitor(influx_db):
    owner = UserFactory(username="grower")
    comp(owner)
    source = SourceFactory(owner=owner, database=influx_db.database)
    monitor = MonitorFactory(
        owner=owner,
        source=source,
        name="Bench 3 air",
        aggregation="last",
        window=timedelta(minutes=1),
        interval=timedelta(seconds=10),
        critical=35,
        unit="°C",
        flap_detection=False,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )
    channel = ChannelFactory(
        owner=owner, kind="email", config={"addresses": ["grower@example.com"]}
    )
    monitor.channels.set([channel])
    return monitor


def check(monitor: Monitor, influx_db, value: float) -> None:
    write(influx_db, value, ago=1)
    due_again(monitor)
    tick()


def subjects(inbox) -> list[str]:
    return [m["Subject"] for m in inbox.messages]


def silence(monitor: Monitor):
    return services.silence_create(
        owner=monitor.owner,
        monitor=monitor,
        starts_at=timezone.now() - timedelta(seconds=1),
        ends_at=timezone.now() + timedelta(hours=1),
        reason="cleaning the sensors",
    )


def test_a_resolve_inside_a_silence_is_told_when_the_silence_ends_early(
    emailed_monitor, influx_db, smtp_inbox, eager
):
    check(emailed_monitor, influx_db, HOT)
    assert subjects(smtp_inbox) == ["[FIRING] Bench 3 air"]

    quiet = silence(emailed_monitor)
    check(emailed_monitor, influx_db, COOL)
    assert subjects(smtp_inbox) == ["[FIRING] Bench 3 air"]  # held by the silence

    services.silence_end(silence=quiet)
    check(emailed_monitor, influx_db, COOL)

    assert subjects(smtp_inbox) == ["[FIRING] Bench 3 air", "[RESOLVED] Bench 3 air"]
    body = smtp_inbox.messages[-1].get_body(("plain",)).get_content()
    assert "resolved during a silence" in body


def test_a_fire_inside_a_silence_then_its_resolve_after_it_both_reach_the_inbox(
    emailed_monitor, influx_db, smtp_inbox, eager
):
    quiet = silence(emailed_monitor)
    check(emailed_monitor, influx_db, HOT)
    assert subjects(smtp_inbox) == []

    services.silence_end(silence=quiet)
    check(emailed_monitor, influx_db, HOT)
    check(emailed_monitor, influx_db, COOL)

    assert subjects(smtp_inbox) == ["[FIRING] Bench 3 air", "[RESOLVED] Bench 3 air"]
    emailed_monitor.refresh_from_db()
    assert emailed_monitor.status == Status.OK


def test_what_a_silence_held_back_is_logged_on_the_monitor(
    emailed_monitor, influx_db, smtp_inbox, eager
):
    silence(emailed_monitor)
    check(emailed_monitor, influx_db, HOT)

    held = Notification.objects.get(monitor=emailed_monitor)
    assert held.status == Notification.DeliveryStatus.SUPPRESSED
    assert held.event == "fired"
    assert "silenced until" in held.last_error
    assert held.attempts == 0
    assert smtp_inbox.messages == []


def test_an_edit_under_a_silence_ends_the_alert_and_the_inbox_hears_it_after_the_silence(
    emailed_monitor, influx_db, smtp_inbox, eager
):
    check(emailed_monitor, influx_db, HOT)
    quiet = silence(emailed_monitor)
    services.monitor_update(monitor=emailed_monitor, critical=50)  # the incident ends, quietly
    assert subjects(smtp_inbox) == ["[FIRING] Bench 3 air"]

    services.silence_end(silence=quiet)
    check(emailed_monitor, influx_db, HOT)  # 41 °C is fine now: below 50 °C

    assert subjects(smtp_inbox) == ["[FIRING] Bench 3 air", "[RESOLVED] Bench 3 air"]


def test_a_pause_under_a_silence_is_told_at_the_first_check_after_the_resume(
    emailed_monitor, influx_db, smtp_inbox, eager
):
    check(emailed_monitor, influx_db, HOT)
    quiet = silence(emailed_monitor)
    services.monitor_set_enabled(monitor=emailed_monitor, enabled=False)
    services.silence_end(silence=quiet)
    services.monitor_set_enabled(monitor=emailed_monitor, enabled=True)
    check(emailed_monitor, influx_db, COOL)

    assert subjects(smtp_inbox) == ["[FIRING] Bench 3 air", "[RESOLVED] Bench 3 air"]
