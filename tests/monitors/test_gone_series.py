"""Forgetting a fleet monitor's gone series: a series with no data for longer than
RETENTION_GONE_SERIES_DAYS, not firing and with no open incident, is deleted by the retention
run; a series that comes back afterwards joins again as new (real Postgres and InfluxDB)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitors import retention
from monitors.models import Incident, SeriesState
from tests.factories import MonitorFactory
from tests.monitors.test_fleet import COOL, again, fleet_monitor, series, write  # noqa: F401
from tests.monitors.test_pipeline import tick

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _age(settings):
    settings.RETENTION_GONE_SERIES_DAYS = 7
    settings.RETENTION_PAUSE_SECONDS = 0


def row(monitor, key, *, status="no_data", value=None, evaluated_days_ago=8.0):
    return SeriesState.objects.create(
        monitor=monitor,
        key=f"device={key}",
        tags={"device": key},
        status=status,
        last_value=value,
        last_evaluated_at=timezone.now() - evaluated_days_ago * DAY,
    )


def test_only_series_gone_past_the_age_and_settled_are_forgotten():
    monitor = MonitorFactory(tags={}, group_by=["device"])
    gone = row(monitor, "gone")
    gone_ok = row(monitor, "gone-ok", status="ok")  # a no-data policy that reads as OK
    recent = row(monitor, "recent", evaluated_days_ago=6.9)
    reporting = row(monitor, "reporting", status="ok", value=21.0)  # steady: not rewritten
    firing = row(monitor, "firing", status="firing")
    failing = row(monitor, "failing", status="error")
    with_incident = row(monitor, "with-incident")
    Incident.objects.create(
        monitor=monitor, series_key=with_incident.key, opened_at=timezone.now() - 9 * DAY
    )
    resolved = row(monitor, "resolved")
    Incident.objects.create(
        monitor=monitor,
        series_key=resolved.key,
        opened_at=timezone.now() - 9 * DAY,
        resolved_at=timezone.now() - 8 * DAY,
    )

    assert retention.dry_run(only={"gone_series"}) == {"gone_series": 3}
    report = retention.run(only={"gone_series"})

    assert report.deleted == {"gone_series": 3}
    kept = set(SeriesState.objects.values_list("key", flat=True))
    assert kept == {s.key for s in (recent, reporting, firing, failing, with_incident)}
    assert not {gone.key, gone_ok.key, resolved.key} & kept


def test_an_age_of_zero_keeps_gone_series(settings):
    settings.RETENTION_GONE_SERIES_DAYS = 0
    monitor = MonitorFactory(tags={}, group_by=["device"])
    row(monitor, "gone", evaluated_days_ago=3000)
    assert retention.run(only={"gone_series"}).deleted == {"gone_series": 0}
    assert SeriesState.objects.count() == 1


def test_a_forgotten_series_that_comes_back_joins_as_new(fleet_monitor, influx_db, settings):  # noqa: F811
    fleet_monitor.no_data_policy = "status"  # a gone series shows No data, notifies nobody
    fleet_monitor.save()
    write(influx_db, {"greenhouse-1": COOL, "greenhouse-2": COOL})
    tick()
    # greenhouse-2 stops: its points are gone, so the next tick finds no data for it
    influx_db.client.query(
        'DROP SERIES FROM "gro01" WHERE "device" = \'greenhouse-2\'',
        database=influx_db.database,
        method="POST",
    )
    write(influx_db, {"greenhouse-1": COOL})
    again(fleet_monitor)
    gone = series(fleet_monitor)["greenhouse-2"]
    assert (gone.status, gone.last_value) == ("no_data", None)
    SeriesState.objects.filter(pk=gone.pk).update(last_evaluated_at=timezone.now() - 8 * DAY)

    assert retention.run(only={"gone_series"}).deleted == {"gone_series": 1}
    assert set(series(fleet_monitor)) == {"greenhouse-1"}

    write(influx_db, {"greenhouse-2": 22.5})
    again(fleet_monitor)
    back = series(fleet_monitor)["greenhouse-2"]
    assert back.pk != gone.pk
    assert (back.status, back.last_value, back.state_version) == ("ok", 22.5, 1)
