"""A fleet monitor in Debian's chromium against the real server, Postgres and InfluxDB: the
editor takes group-by tags and previews per series; the page shows a grid of series, worst
first, at desktop width and on a 390 px phone."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from monitors.evaluate import dispatch, pipeline
from monitors.influxdb import client as influx
from monitors.models import Monitor
from tests.factories import MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def write(influx_db, values: dict[str, float], *, spread_s: int = 0) -> None:
    """One point per device now (and every 5 minutes over ``spread_s`` seconds before)."""
    now_ms = int(time.time() * 1000)
    lines = [
        influx.line(
            "gro01", {"temperature": v}, tags={"device": d}, timestamp_ms=now_ms - ago * 1000
        )
        for d, v in values.items()
        for ago in range(5, spread_s + 6, 300)
    ]
    influx_db.client.write(lines, database=influx_db.database)


def test_the_editor_creates_a_fleet_monitor_with_a_per_series_preview(page, alice, influx_db):
    source = SourceFactory(owner=alice, name="greenhouse influx", database=influx_db.database)
    write(influx_db, {"greenhouse-1": 20.0, "greenhouse-2": 41.0, "shed": 41.0}, spread_s=3600)
    sign_in(page, "alice")
    page.goto("/app/monitors/new")
    page.get_by_label("Name").fill("any greenhouse too warm")
    page.get_by_label("Source").select_option(str(source.pk))
    page.get_by_label("Measurement").fill("gro01")
    page.get_by_label("Field").fill("temperature")
    page.get_by_label("One alert per").fill("device")
    page.get_by_label("Only series").fill("device=greenhouse-*")
    page.get_by_label("Window").fill("5m")
    page.get_by_label("Check every").fill("1m")
    page.get_by_label("Critical threshold").fill("30")
    page.get_by_label("When there is no data").select_option("status")

    summary = page.locator("#preview-summary")
    expect(summary).to_contain_text("would have fired once across 1 series (of 2 series)")
    expect(page.locator("#preview-chart li[data-series]")).to_have_count(2)
    expect(page.locator("#preview-chart li").first).to_contain_text("greenhouse-2: fired once")

    page.get_by_role("button", name="Create monitor").click()
    monitor = Monitor.objects.get(owner=alice)
    page.wait_for_url(f"**/app/monitors/{monitor.pk}")
    assert monitor.group_by == ["device"]
    assert monitor.series_filter == {"device": ["greenhouse-*"]}
    expect(page.get_by_test_id("series-summary")).to_contain_text("One alert per device")


@pytest.mark.parametrize("width", [1100, 390])
def test_the_monitor_page_shows_its_series_worst_first(
    browser, live_server, alice, influx_db, width
):
    source = SourceFactory(owner=alice, database=influx_db.database)
    monitor = MonitorFactory(
        owner=alice,
        source=source,
        name="any greenhouse too warm",
        tags={},
        group_by=["device"],
        aggregation="max",
        window=timedelta(minutes=1),
        critical=35,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )
    values = {f"greenhouse-{n:02}": 20.0 + n for n in range(1, 13)}
    values["greenhouse-07"] = 41.5
    write(influx_db, values)
    for batch in dispatch.claim_batches(now=timezone.now(), size=500):
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])

    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": 900},
        is_mobile=width < 500,
    )
    page = context.new_page()
    sign_in(page, "alice")
    page.goto(f"/app/monitors/{monitor.pk}")
    expect(page.get_by_test_id("status")).to_have_text("Firing")
    cells = page.locator("[data-testid=series-grid] li")
    expect(cells).to_have_count(12)
    expect(cells.first).to_have_attribute("data-series", "device=greenhouse-07")
    expect(cells.first).to_contain_text("Firing")
    expect(cells.first).to_contain_text("41.5")
    expect(cells.nth(1)).to_contain_text("OK")
    expect(page.get_by_test_id("series-summary")).to_contain_text("12 series · 1 firing · 11 ok")
    width_now = page.evaluate("document.documentElement.scrollWidth")
    assert width_now <= width, "the page scrolls sideways"
    context.close()
