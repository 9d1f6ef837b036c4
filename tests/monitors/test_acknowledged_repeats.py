"""Nag until fixed: the monitor's repeat_every re-notifies a firing incident until someone
acknowledges it; after that the pipeline writes no "still firing" row (resolution still
notifies)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from monitors.models import Incident, Monitor, Notification
from monitors.notify import acknowledge
from monitors.vocabulary import AckRoute
from tests.monitors.test_pipeline import HOT, due_again, tick, write

pytestmark = pytest.mark.django_db


def test_repeats_stop_once_the_incident_is_acknowledged(hot_monitor, influx_db):
    Monitor.objects.filter(pk=hot_monitor.pk).update(repeat_every=timedelta(minutes=1))
    write(influx_db, HOT)
    tick()
    incident = Incident.objects.get(monitor=hot_monitor)
    later = timezone.now() + timedelta(minutes=2)
    with time_machine.travel(later, tick=False):
        write(influx_db, HOT, ago=1)
        due_again(hot_monitor)
        tick(later)
    repeated = Notification.objects.filter(monitor=hot_monitor, event="repeated")
    assert repeated.count() == 2  # one per channel: it nags while unacknowledged

    acknowledge.acknowledge(incident.pk, via=AckRoute.API)
    even_later = later + timedelta(minutes=2)
    with time_machine.travel(even_later, tick=False):
        write(influx_db, HOT, ago=1)
        due_again(hot_monitor)
        tick(even_later)
    assert repeated.count() == 2
    hot_monitor.refresh_from_db()
    assert hot_monitor.status == "firing"
