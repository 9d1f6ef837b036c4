"""Daily maintenance windows: a silence that comes back every day at the same local time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from monitors import services
from monitors.evaluate import pipeline
from monitors.models import Silence, silence_errors
from tests.factories import MonitorFactory, UserFactory

PARIS = ZoneInfo("Europe/Paris")


def window(start: datetime, hours: float) -> Silence:
    return Silence(starts_at=start, ends_at=start + timedelta(hours=hours), daily=True)


def test_a_daily_window_covers_the_same_hours_every_day_and_nothing_before_it():
    first = datetime(2026, 12, 1, 2, 0, tzinfo=PARIS)
    nightly = window(first, 1)
    assert nightly.is_active(first + timedelta(minutes=30))
    assert nightly.is_active(first + timedelta(days=5, minutes=59))
    assert not nightly.is_active(first + timedelta(days=5, hours=1))
    assert not nightly.is_active(first - timedelta(days=1) + timedelta(minutes=30))
    assert nightly.window_at(first + timedelta(days=2, minutes=10)) == (
        first + timedelta(days=2),
        first + timedelta(days=2, hours=1),
    )


def test_a_daily_window_across_midnight_holds_after_midnight():
    late = window(datetime(2026, 12, 1, 23, 0, tzinfo=PARIS), 2)
    assert late.is_active(datetime(2026, 12, 3, 0, 30, tzinfo=PARIS))
    assert not late.is_active(datetime(2026, 12, 3, 1, 30, tzinfo=PARIS))


def test_a_daily_window_keeps_its_local_hour_across_a_clock_change(settings):
    settings.TIME_ZONE = "Europe/Paris"
    timezone.activate(PARIS)
    try:
        nightly = window(datetime(2026, 3, 20, 2, 30, tzinfo=PARIS), 1)
        after_dst = datetime(2026, 4, 2, 2, 45, tzinfo=PARIS)  # summer time since 29 March
        assert nightly.is_active(after_dst)
    finally:
        timezone.deactivate()


def test_a_daily_window_lasts_less_than_a_day():
    start = timezone.now()
    assert silence_errors(start, start + timedelta(hours=25), daily=True) == {
        "ends_at": "a daily window lasts less than a day"
    }
    assert silence_errors(start, start + timedelta(hours=25)) == {}


@pytest.mark.django_db
def test_the_pipeline_holds_a_monitor_inside_its_daily_window_only():
    owner = UserFactory()
    monitor = MonitorFactory(owner=owner)
    now = timezone.now()
    services.silence_create(
        owner=owner,
        monitor=monitor,
        starts_at=now - timedelta(days=3, minutes=10),
        ends_at=now - timedelta(days=3) + timedelta(minutes=20),
        daily=True,
    )
    assert pipeline.silenced_monitor_ids([monitor], now) == {monitor.pk}
    assert pipeline.silenced_monitor_ids([monitor], now + timedelta(hours=1)) == set()
    assert pipeline.silenced_monitor_ids([monitor], now + timedelta(days=1)) == {monitor.pk}


@pytest.mark.django_db
def test_ending_a_daily_window_removes_it():
    owner = UserFactory()
    now = timezone.now()
    silence = services.silence_create(
        owner=owner,
        starts_at=now - timedelta(days=1),
        ends_at=now - timedelta(hours=23),
        daily=True,
    )
    assert services.silence_end(silence=silence) is None
    assert not Silence.objects.exists()
