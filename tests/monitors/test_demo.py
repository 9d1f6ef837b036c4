"""The demo: load_demo is safe to rerun, and the simulated devices really write to InfluxDB."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from devices import hosted
from devices.ingest import queue
from devices.models import Device
from growalert.demo import gro01, simulate
from monitors.influxdb import client as influx
from monitors.models import Monitor
from tests.monitors.conftest import SeededInflux


@pytest.fixture
def demo_database(settings, django_user_model) -> Iterator[SeededInflux]:
    """The demo admin's hosted database on the deployment's own InfluxDB (throwaway), where
    the demo lives."""
    settings.HOSTED_DATABASE_PREFIX = f"test_demo_{uuid.uuid4().hex[:12]}_"
    settings.DEMO_INGEST_URL = ""  # no web server in tests: the ingest service in-process
    admin = django_user_model.objects.create_user("admin", "admin@growalert.local")
    database = hosted.database_name(admin.pk)
    with influx.InfluxClient(settings.INFLUXDB_URL, trusted=True) as client:
        yield SeededInflux(client, database)
        client.query(
            f"DROP DATABASE {influx.quote_ident(database)}", database=database, method="POST"
        )


@pytest.mark.django_db
def test_load_demo_creates_the_admin_and_monitors_once(demo_database) -> None:
    call_command("load_demo", hours=0.1, stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("load_demo", hours=0.1, stdout=open("/dev/null", "w"))  # noqa: SIM115

    monitors = Monitor.objects.filter(owner__username="admin", device__isnull=True)
    assert monitors.count() == 4
    # and each of the three demo devices its three health monitors (devices/health.py)
    health = Monitor.objects.filter(owner__username="admin", device__isnull=False)
    assert health.count() == 9
    assert all(m.channels.count() == 1 for m in monitors)
    assert all(m.source.database == demo_database.database for m in monitors)
    assert all(m.source.hosted for m in monitors)


@pytest.mark.django_db
def test_live_simulation_posts_every_device_through_ingest(demo_database) -> None:
    call_command("load_demo", hours=0.01, stdout=open("/dev/null", "w"))  # noqa: SIM115
    written = simulate.write_live(lookback_s=10)
    flusher = queue.Flusher(consumer="test")
    while flusher.flush_once():
        pass
    flusher.close()

    rows = demo_database.client.query(
        'SELECT count("temperature") FROM "gro01" WHERE "device_id" != \'\' GROUP BY "device"',
        database=demo_database.database,
    )
    assert written == 3 * 2 or written == 3 * 3
    assert {s.tags["device"] for s in rows[0].series} == set(gro01.DEVICES)
    devices = Device.objects.filter(owner__username="admin")
    assert devices.count() == 3
    assert all(d.battery is not None and d.firmware for d in devices)


def test_greenhouse_2_spikes_for_one_minute_in_three() -> None:
    rng = random.Random(1)
    base = 1_800_000_000_000 - 1_800_000_000_000 % (gro01.SPIKE_PERIOD_S * 1000)

    hot = [
        gro01.reading("greenhouse-2", base + s * 1000, rng)["temperature"] for s in range(0, 60, 5)
    ]
    cool = [
        gro01.reading("greenhouse-2", base + s * 1000, rng)["temperature"]
        for s in range(60, 180, 5)
    ]

    assert min(hot) > 32
    assert max(cool) < 29


def test_line_protocol_escapes_tags_and_rejects_nan() -> None:
    line = influx.line(
        "m x", {"v": 1.5, "n": 2, "ok": True, "s": 'a"b'}, tags={"t,1": "a b=c"}, timestamp_ms=5
    )

    assert line == 'm\\ x,t\\,1=a\\ b\\=c v=1.5,n=2i,ok=true,s="a\\"b" 5'
    with pytest.raises(ValueError, match="NaN"):
        influx.line("m", {"v": float("nan")})
