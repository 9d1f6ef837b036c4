"""A fleet monitor on a computed series: VPD (and dew point) that /ingest adds to every GRO-01
reading (devices/derived.py) are fields of the hosted data like any other, so one GROUP BY per
tick judges each device's VPD; the editor offers both fields."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.gating import comp
from devices import derived, hosted, services
from devices.series import SERVER_TAG
from monitors import services as monitor_services
from monitors.models import SeriesState
from tests.devices.test_health import send, tick

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def grower(django_user_model):
    user = django_user_model.objects.create_user("grower", "grower@example.com", "pw-long-enough")
    comp(user)
    return user


def test_a_fleet_monitor_on_vpd_judges_each_device_by_its_computed_vpd(grower):
    dry, dry_key = services.device_add(owner=grower, name="dry bench")
    humid, humid_key = services.device_add(owner=grower, name="humid bench")
    send(dry_key, "gro01 temperature=30,humidity=40")  # VPD 2.5461 kPa
    send(humid_key, "gro01 temperature=22,humidity=85")  # VPD 0.3965 kPa
    monitor = monitor_services.monitor_create(
        owner=grower,
        source=hosted.hosted_source(owner_id=grower.pk),
        name="VPD too high on any bench",
        measurement="gro01",
        field=derived.VPD,
        tags={},
        group_by=[SERVER_TAG],
        aggregation="last",
        window=timedelta(minutes=5),
        comparator="above",
        critical=1.6,
        interval=timedelta(minutes=1),
    )

    tick()

    rows = {s.tags[SERVER_TAG]: s for s in SeriesState.objects.filter(monitor=monitor)}
    assert {k: r.status for k, r in rows.items()} == {str(dry.pk): "firing", str(humid.pk): "ok"}
    assert rows[str(dry.pk)].last_value == round(derived.vpd(30.0, 40.0), 4)
    assert rows[str(humid.pk)].last_value == round(derived.vpd(22.0, 85.0), 4)


def test_a_fleet_monitor_on_dew_point_uses_the_same_grouped_query(grower):
    cold, key = services.device_add(owner=grower, name="cold corner")
    send(key, "gro01 temperature=12,humidity=95")  # dew point 11.2 °C: condensation near
    monitor = monitor_services.monitor_create(
        owner=grower,
        source=hosted.hosted_source(owner_id=grower.pk),
        name="condensation risk",
        measurement="gro01",
        field=derived.DEW_POINT,
        tags={},
        group_by=[SERVER_TAG],
        aggregation="last",
        window=timedelta(minutes=5),
        comparator="above",
        critical=11.0,
        interval=timedelta(minutes=1),
    )

    tick()

    [row] = SeriesState.objects.filter(monitor=monitor)
    assert row.tags == {SERVER_TAG: str(cold.pk)}
    assert row.status == "firing"
    assert row.last_value == round(derived.dew_point(12.0, 95.0), 3)
