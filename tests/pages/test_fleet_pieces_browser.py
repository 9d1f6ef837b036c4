"""Fleet monitors' page pieces in Debian's chromium against the real server, Postgres and
InfluxDB: silencing and acknowledging one series from the grid, the dashboard's compact grid
(worst first), the editor's "which series match now" and its day-and-night thresholds."""

from __future__ import annotations

from datetime import time as clock
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.services import profile_update
from monitors.evaluate import dispatch, pipeline
from monitors.models import Incident, Monitor, Silence
from tests.factories import MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in
from tests.pages.test_fleet_browser import write

pytestmark = pytest.mark.django_db(transaction=True)


def evaluated_fleet(owner, influx_db, values: dict[str, float]) -> Monitor:
    source = SourceFactory(owner=owner, name="greenhouse influx", database=influx_db.database)
    monitor = MonitorFactory(
        owner=owner,
        source=source,
        name="any greenhouse too warm",
        tags={},
        group_by=["device"],
        aggregation="max",
        window=timedelta(minutes=1),
        critical=35,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )
    write(influx_db, values)
    for batch in dispatch.claim_batches(now=timezone.now(), size=500):
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])
    return monitor


def test_one_series_is_silenced_from_the_grid_and_the_others_keep_their_button(
    page, alice, influx_db
):
    monitor = evaluated_fleet(
        alice, influx_db, {"greenhouse-1": 20.0, "greenhouse-2": 41.0, "greenhouse-3": 22.0}
    )
    sign_in(page, "alice")
    page.goto(f"/app/monitors/{monitor.pk}")
    page.get_by_label("Silence a series for").select_option("4h")
    before = timezone.now()
    page.get_by_role("button", name="Silence greenhouse-2").click()

    expect(page.locator(".messages")).to_contain_text("Series “greenhouse-2” is silenced until")
    silence = Silence.objects.get(monitor=monitor)
    assert silence.series_key == "device=greenhouse-2"
    assert before + timedelta(hours=4) <= silence.ends_at <= timezone.now() + timedelta(hours=4)
    cell = page.locator("[data-testid=series-grid] li[data-series='device=greenhouse-2']")
    expect(cell.get_by_test_id("series-silenced")).to_have_text("silenced")
    expect(page.get_by_role("button", name="Silence greenhouse-1")).to_be_visible()
    expect(page.locator("#silences")).to_contain_text("Series device=greenhouse-2")


def test_one_series_is_acknowledged_from_the_grid_and_the_other_stays_open(
    page, alice, bob, client_for, influx_db
):
    monitor = evaluated_fleet(
        alice, influx_db, {"greenhouse-1": 20.0, "greenhouse-2": 41.0, "greenhouse-3": 42.0}
    )
    incidents = {i.series_key: i for i in Incident.objects.filter(monitor=monitor)}
    assert sorted(incidents) == ["device=greenhouse-2", "device=greenhouse-3"]
    sign_in(page, "alice")
    page.goto(f"/app/monitors/{monitor.pk}")
    expect(page.get_by_role("button", name="Acknowledge greenhouse-1")).to_have_count(0)
    page.get_by_role("button", name="Acknowledge greenhouse-2").click()

    expect(page.locator(".messages")).to_contain_text(
        "Acknowledged “greenhouse-2”: its escalation and repeats stop."
    )
    acked = Incident.objects.get(pk=incidents["device=greenhouse-2"].pk)
    assert (acked.acknowledged_by, acked.acknowledged_via) == (alice, "page")
    assert Incident.objects.get(pk=incidents["device=greenhouse-3"].pk).acknowledged_at is None
    cell = page.locator("[data-testid=series-grid] li[data-series='device=greenhouse-2']")
    expect(cell.get_by_test_id("series-acknowledged")).to_have_text("acknowledged")
    expect(page.get_by_role("button", name="Acknowledge greenhouse-3")).to_be_visible()
    assert Silence.objects.count() == 0  # the Silence buttons' form was not submitted

    url = f"/app/monitors/{monitor.pk}/series/acknowledge"
    theirs = client_for(bob).post(url, {"series_key": "device=greenhouse-3"})
    assert theirs.status_code == 404
    quiet = client_for(alice).post(url, {"series_key": "device=greenhouse-1"}, follow=True)
    assert "has no open incident to acknowledge" in quiet.content.decode()
    assert Incident.objects.get(pk=incidents["device=greenhouse-3"].pk).acknowledged_at is None


def test_the_dashboard_card_of_a_fleet_monitor_shows_its_worst_series_first(page, alice, influx_db):
    values = {f"greenhouse-{n:02}": 20.0 + n for n in range(1, 16)}
    values["greenhouse-09"] = 41.5
    evaluated_fleet(alice, influx_db, values)
    sign_in(page, "alice")
    page.goto("/app/")
    mini = page.get_by_test_id("series-mini").locator("li")
    expect(mini).to_have_count(12)  # the 12 worst of 15
    expect(mini.first).to_have_attribute("data-series", "device=greenhouse-09")
    expect(mini.first).to_contain_text("Firing")
    expect(mini.first).to_contain_text("41.5")
    expect(mini.nth(1)).to_have_attribute("data-series", "device=greenhouse-01")


def test_the_editor_lists_the_series_that_match_now_as_the_filter_is_typed(page, alice, influx_db):
    source = SourceFactory(owner=alice, name="greenhouse influx", database=influx_db.database)
    write(influx_db, {"greenhouse-1": 20.0, "greenhouse-2": 21.0, "shed": 19.0})
    sign_in(page, "alice")
    page.goto("/app/monitors/new")
    page.get_by_label("Source").select_option(str(source.pk))
    page.get_by_label("Measurement").fill("gro01")
    page.get_by_label("One alert per").fill("device")
    match = page.get_by_test_id("series-match")
    expect(match).to_have_text("Matches 3 series now: greenhouse-1, greenhouse-2, shed.")
    page.get_by_label("Only series").fill("device=greenhouse-*")
    expect(match).to_have_text("Matches 2 series now: greenhouse-1, greenhouse-2.")
    page.get_by_label("Only series").fill("device=barn")
    expect(match).to_have_text("Matches no series now.")
    page.get_by_label("One alert per").fill("")
    expect(match).to_be_hidden()


def test_the_editor_sets_day_and_night_thresholds_in_the_accounts_time_zone(page, alice):
    profile_update(user=alice, time_zone="Europe/Amsterdam")
    source = SourceFactory(owner=alice, name="greenhouse influx")
    sign_in(page, "alice")
    page.goto("/app/monitors/new")
    expect(page.locator("#photoperiod")).to_contain_text("in Europe/Amsterdam")
    page.get_by_label("Name").fill("warm at night")
    page.get_by_label("Source").select_option(str(source.pk))
    page.get_by_label("Measurement").fill("gro01")
    page.get_by_label("Field").fill("temperature")
    page.get_by_label("Window").fill("5m")
    page.get_by_label("Check every").fill("1m")
    page.get_by_label("Critical threshold").fill("30")
    page.get_by_label("Lights on (day from)").fill("06:00")
    page.get_by_role("button", name="Create monitor").click()
    expect(page.locator("#form-errors")).to_be_visible()
    expect(page.locator("#photoperiod")).to_contain_text(
        "Lights on and lights off go together: give both or neither."
    )

    page.get_by_label("Lights off (night from)").fill("20:00")
    page.locator("#id_night_critical").fill("20")  # "Night critical high" shares the words
    page.get_by_role("button", name="Create monitor").click()
    monitor = Monitor.objects.get(owner=alice)
    page.wait_for_url(f"**/app/monitors/{monitor.pk}")
    assert (monitor.lights_on, monitor.lights_off) == (clock(6), clock(20))
    assert monitor.night_critical == 20.0
