"""The monitor editor's live preview and the dashboard after a monitor fires, in Debian's
chromium against the real server, Postgres and InfluxDB."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from monitors.evaluate import dispatch, pipeline
from monitors.models import Incident, Monitor, Status
from tests.factories import MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

DEVICE = {"device": "greenhouse-1"}


def a_day_with_one_hot_hour(influx_db) -> None:
    """Every 5 minutes for 24 h at 20 °C, except 40 °C from 7 h to 6 h ago."""
    points = [(ago, 40.0 if 6 * 3600 <= ago < 7 * 3600 else 20.0) for ago in range(60, 86400, 300)]
    influx_db.write("gro01", "temperature", points, DEVICE)


def test_the_editor_preview_redraws_as_the_threshold_changes(page, alice, influx_db, screenshot):
    source = SourceFactory(owner=alice, name="greenhouse influx", database=influx_db.database)
    a_day_with_one_hot_hour(influx_db)
    sign_in(page, "alice")
    page.goto("/app/monitors/new")
    page.get_by_label("Name").fill("greenhouse-1 too warm")
    page.get_by_label("Source").select_option(str(source.pk))
    page.get_by_label("Measurement").fill("gro01")
    page.get_by_label("Field").fill("temperature")
    page.get_by_label("Tags").fill("device=greenhouse-1")
    page.get_by_label("Window").fill("5m")
    page.get_by_label("Check every").fill("1m")
    page.get_by_label("Critical threshold").fill("30")
    # a point every 5 minutes leaves some 5 m windows empty: about breaches only, not gaps
    page.get_by_label("When there is no data").select_option("status")

    summary = page.locator("#preview-summary")
    expect(summary).to_contain_text("would have fired once")
    expect(page.locator("#preview-chart line.mark-fired")).to_have_count(1)
    expect(page.locator("#preview-chart line.threshold-critical")).to_have_count(1)
    screenshot(page, "fires-once")

    page.get_by_label("Critical threshold").fill("50")
    expect(summary).to_contain_text("would not have fired")
    expect(page.locator("#preview-chart line.mark-fired")).to_have_count(0)
    screenshot(page, "never-fires")

    page.get_by_label("Critical threshold").fill("30")
    page.get_by_label("Warning threshold").fill("35")
    page.get_by_role("button", name="Create monitor").click()
    expect(page.locator("#id_warning_error")).to_contain_text("Must be below critical")
    page.get_by_label("Warning threshold").fill("25")
    page.get_by_role("button", name="Create monitor").click()
    monitor = Monitor.objects.get(owner=alice)
    page.wait_for_url(f"**/app/monitors/{monitor.pk}")
    expect(page.get_by_role("heading", name="greenhouse-1 too warm")).to_be_visible()


def test_the_dashboard_shows_a_monitor_that_fired_first_on_a_phone(
    browser, live_server, alice, influx_db, screenshot
):
    source = SourceFactory(owner=alice, database=influx_db.database)
    due = timezone.now() - timedelta(seconds=1)
    MonitorFactory(owner=alice, source=source, name="a quiet bench", critical=100, next_due_at=due)
    hot = MonitorFactory(
        owner=alice,
        source=source,
        name="z greenhouse-1 too warm",
        aggregation="max",
        window=timedelta(minutes=1),
        critical=35,
        flap_detection=False,
        next_due_at=due,
    )
    influx_db.write("gro01", "temperature", [(300, 22.0), (120, 24.0), (5, 41.0)], DEVICE)
    for batch in dispatch.claim_batches(now=timezone.now(), size=500):
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])
    assert Incident.objects.get().monitor == hot

    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = context.new_page()
    sign_in(page, "alice")
    cards = page.locator(".monitor-card")
    expect(cards.first).to_have_attribute("data-status", Status.FIRING)
    expect(cards.first).to_contain_text("Firing")
    expect(cards.first).to_contain_text("41")
    expect(cards.first.locator("svg line.threshold-critical")).to_have_count(1)
    expect(page.get_by_role("heading", name="Open incidents (1)")).to_be_visible()
    screenshot(page, "phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the dashboard scrolls sideways on a phone"

    cards.first.get_by_role("link").click()
    expect(page.get_by_test_id("status")).to_have_text("Firing")
    expect(page.get_by_text("still open")).to_be_visible()
    context.close()
