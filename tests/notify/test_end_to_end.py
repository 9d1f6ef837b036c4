"""End to end on real services: a data point crosses a threshold in InfluxDB and the webhook
arrives, signed, within the monitor's interval plus a few seconds — beat, dispatcher, batch
evaluation and delivery all running in a real Celery worker."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing.gating import comp
from monitors.models import Notification
from monitors.notify import webhook
from tests.conftest import start_celery_worker, stop_celery_worker
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory

INTERVAL = 10  # the shortest a user can set by default (MONITOR_MIN_INTERVAL_SECONDS)


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_breach_in_influxdb_reaches_the_webhook_signed_within_the_interval(influx_db, receiver):
    owner = UserFactory(username="grower")
    comp(owner)
    channel = ChannelFactory(owner=owner, config={"url": receiver.url})
    channel.secret = "e2e-secret"
    channel.save()
    monitor = MonitorFactory(
        owner=owner,
        source=SourceFactory(owner=owner, database=influx_db.database),
        aggregation="last",
        window=timedelta(minutes=1),
        interval=timedelta(seconds=INTERVAL),
        critical=35,
        next_due_at=timezone.now(),
    )
    monitor.channels.set([channel])
    influx_db.write("gro01", "temperature", [(2, 21.0)], {"device": "greenhouse-1"})
    queue = f"test-e2e-{os.getpid()}"
    worker, log = start_celery_worker(
        "e2e",
        beat=True,
        DATABASE_URL=_database_url(),
        CELERY_QUEUE=queue,
        WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="true",
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the loop is running: first evaluation done
            monitor.refresh_from_db()
            if monitor.last_evaluated_at is not None:
                break
            time.sleep(0.2)
        assert monitor.status == "ok"

        influx_db.write("gro01", "temperature", [(0, 41.5)], {"device": "greenhouse-1"})
        crossed = time.monotonic()
        while time.monotonic() < crossed + INTERVAL + 10 and not receiver.accepted:
            time.sleep(0.05)
        latency = time.monotonic() - crossed
    finally:
        stop_celery_worker(worker, log)

    assert receiver.accepted, "no webhook arrived"
    assert latency <= INTERVAL + 5, f"webhook after {latency:.1f}s"
    hit = receiver.accepted[0]
    assert webhook.verify("e2e-secret", hit.body, hit.headers["Growalert-Signature"])
    body = hit.json()
    assert body["event"] == "fired"
    assert body["value"] == 41.5
    assert body["monitor"]["id"] == monitor.pk
    assert Notification.objects.get(idempotency_key=body["idempotency_key"]).status == "sent"
