"""The demo account: its GRO-01 devices, their hosted source, an email channel and monitors."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User

from devices import hosted
from growalert.demo import devices as demo
from monitors import services
from monitors.models import Channel, Monitor

DEMO_SOURCE = "Local InfluxDB (demo)"


def ensure_demo_monitors(*, owner: User) -> list[Monitor]:
    """Creates the demo devices, channel and monitors once; later runs leave them as they are.
    The monitors read the account's hosted source, where the demo devices' readings go."""
    # The channel first: the devices' health monitors take the account's channels.
    channel, _ = Channel.objects.get_or_create(
        owner=owner,
        name="Demo email",
        defaults={"kind": Channel.Kind.EMAIL, "config": {"addresses": [owner.email]}},
    )
    demo.ensure_demo_devices(owner=owner)
    source = hosted.hosted_source(owner_id=owner.pk)
    hosted.ensure_database(source.database)
    # Monitors made before the devices posted to /ingest read the old demo database.
    Monitor.objects.filter(
        owner=owner, source__name=DEMO_SOURCE, source__url=settings.INFLUXDB_URL
    ).update(source=source)
    existing = {m.name: m for m in Monitor.objects.filter(owner=owner, source=source)}
    created = []
    for spec in _specs():
        if spec["name"] in existing:
            continue
        created.append(
            services.monitor_create(owner=owner, source=source, channels=[channel], **spec)
        )
    return created


def _specs() -> list[dict[str, object]]:
    common = {"measurement": "gro01", "interval": timedelta(seconds=10), "recover_after": 2}
    return [
        {
            **common,
            "name": "Greenhouse 2 too hot",
            "description": "Its vent sticks for a minute every ten minutes: watch it fire.",
            "field": "temperature",
            "tags": {"device": "greenhouse-2"},
            "aggregation": "mean",
            "window": timedelta(seconds=20),
            "comparator": "above",
            "critical": 32.0,
            "warning": 29.0,
            "recovery": 30.0,
            "pending_for": 2,
        },
        {
            **common,
            "name": "Greenhouse 1 temperature out of range",
            "field": "temperature",
            "tags": {"device": "greenhouse-1"},
            "aggregation": "mean",
            "window": timedelta(minutes=1),
            "comparator": "outside",
            "critical": 10.0,
            "critical_high": 35.0,
        },
        {
            **common,
            "name": "Nursery soil too dry",
            "field": "soil_moisture",
            "tags": {"device": "nursery"},
            "aggregation": "last",
            "window": timedelta(minutes=1),
            "comparator": "below",
            "critical": 20.0,
            "warning": 25.0,
        },
        {
            **common,
            "name": "Greenhouse 1 humidity p90",
            "field": "humidity",
            "tags": {"device": "greenhouse-1"},
            "aggregation": "percentile",
            "percentile": 90.0,
            "window": timedelta(minutes=5),
            "comparator": "above",
            "critical": 95.0,
        },
    ]
