"""The monitor page's chart in Debian's chromium: silences shaded in their own shade (a one-off
silence once, a daily maintenance window on each day it opened) beside the incident shading,
both in the legend; and the chart redrawn with its new data, without a reload, when the live
counter says something changed. Desktop and phone widths; the SVG is what is checked."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Route, expect

from growalert.pages import charts, data
from monitors import live, services
from monitors.models import Incident, Silence
from tests.factories import MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in, watch_csp
from tests.pages.test_live import (
    a_hot_monitor,
    assert_not_reloaded,
    evaluate_due,
    heat_up,
    mark_page,
)

HOUR_MS = 3_600_000


@pytest.mark.django_db
def test_a_daily_window_is_shaded_on_each_day_and_a_one_off_silence_once(alice):
    monitor = MonitorFactory(owner=alice)
    now = timezone.now()
    daily = Silence(
        owner=alice,
        monitor=monitor,
        starts_at=now - timedelta(days=3, hours=2),
        ends_at=now - timedelta(days=3, hours=1),
        daily=True,
    )
    once = Silence(
        owner=alice, starts_at=now - timedelta(hours=5), ends_at=now - timedelta(hours=4)
    )
    start, end = int((now - timedelta(hours=24)).timestamp() * 1000), int(now.timestamp() * 1000)

    bands = data.silence_bands([daily, once], start, end)

    assert all(b.kind == "silence" for b in bands)
    daily_bands = sorted(b.start for b in bands[:-1])
    assert len(daily_bands) in (1, 2)  # today's window, and yesterday's if it reaches in
    assert abs(max(daily_bands) - (end - 2 * HOUR_MS)) < 60_000  # 2 h ago today, an hour long
    assert bands[-1].end is not None
    assert bands[-1].end - bands[-1].start == HOUR_MS
    svg = charts.render(
        charts.Chart(points=[(start, 1.0), (end, 2.0)], bands=bands, start=start, end=end)
    )
    assert svg.count('class="band band-silence"') == len(bands)
    assert '<span class="legend-item legend-band-silence">silenced</span>' in svg


def test_a_daily_windows_shading_does_not_move_with_the_pages_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"  # the site's zone: where the evaluation reads "daily"
    now = timezone.now()
    daily = Silence(
        starts_at=now - timedelta(days=30, hours=3),
        ends_at=now - timedelta(days=30, hours=2),
        daily=True,
    )
    start, end = now - timedelta(hours=24), now
    site = daily.windows_between(start, end)
    with timezone.override("Pacific/Auckland"):  # an account's zone, activated by a page
        assert daily.windows_between(start, end) == site
    assert [daily.window_at(opens) for opens, _ in site] == site  # what the evaluation sees


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1100, 390])
def test_the_monitor_chart_shades_silences_and_incidents_with_a_legend(
    browser, live_server, alice, influx_db, screenshot, csp_violations, width
):
    points = [(ago, 20.0 + (ago // 300) % 4) for ago in range(60, 86400, 300)]
    influx_db.write("gro01", "temperature", points, {"device": "greenhouse-1"})
    source = SourceFactory(owner=alice, database=influx_db.database)
    monitor = MonitorFactory(
        owner=alice, source=source, name="greenhouse-1 temperature", critical=30
    )
    now = timezone.now()
    Incident.objects.create(
        monitor=monitor,
        opened_at=now - timedelta(hours=3),
        resolved_at=now - timedelta(hours=2),
        summary="too warm",
    )
    services.silence_create(
        owner=alice,
        monitor=monitor,
        starts_at=now - timedelta(hours=8),
        ends_at=now - timedelta(hours=7),
    )
    services.silence_create(  # every day at the same time, half an hour, since last week
        owner=alice,
        monitor=monitor,
        starts_at=now - timedelta(days=7, hours=12),
        ends_at=now - timedelta(days=7, hours=11, minutes=30),
        daily=True,
        reason="cleaning",
    )
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, is_mobile=width < 500
    )
    page = watch_csp(context, csp_violations)
    sign_in(page, "alice")
    page.goto(f"/app/monitors/{monitor.pk}")

    chart = page.locator("figure[data-chart]")
    expect(chart.locator("svg rect.band-critical")).to_have_count(1)
    expect(chart.locator("svg rect.band-silence")).to_have_count(2)  # 8 h ago, and 12 h ago
    titles = chart.locator("svg rect.band-silence title").all_text_contents()
    assert all(t.startswith("silenced ") for t in titles)
    silence_fill = chart.locator("svg rect.band-silence").first.evaluate(
        "el => getComputedStyle(el).fill"
    )
    incident_fill = chart.locator("svg rect.band-critical").evaluate(
        "el => getComputedStyle(el).fill"
    )
    assert silence_fill != incident_fill  # shaded distinctly
    legend = chart.locator(".chart-legend")
    expect(legend.locator(".legend-band-critical")).to_have_text("incident")
    expect(legend.locator(".legend-band-silence")).to_have_text("silenced")
    expect(legend.locator(".legend-band-silence")).to_be_visible()
    screenshot(page, f"silences-{width}")
    context.close()
    assert csp_violations == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1100, 390])
def test_the_monitor_chart_refreshes_its_data_without_a_reload(
    browser, live_server, alice, influx_db, screenshot, csp_violations, width
):
    monitor = a_hot_monitor(alice, influx_db)
    evaluate_due()
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, is_mobile=width < 500
    )
    page = watch_csp(context, csp_violations)
    sign_in(page, "alice")
    page.goto(f"/app/monitors/{monitor.pk}")
    holder = page.locator("[data-chart-refresh]")
    figure = holder.locator("figure[data-chart]")
    before = json.loads(figure.get_attribute("data-points") or "[]")
    assert [v for _, v in before] == [22.0, 24.0]
    expect(holder.locator("svg rect.band")).to_have_count(0)
    mark_page(page)

    heat_up(monitor, influx_db)  # 41 °C arrives, the monitor fires: the counter moves

    expect(holder).to_have_attribute("data-chart-version", re.compile(r"[1-9]"), timeout=8000)
    after = json.loads(holder.locator("figure[data-chart]").get_attribute("data-points") or "[]")
    assert [v for _, v in after] == [22.0, 24.0, 41.0]
    expect(holder.locator("svg rect.band-critical")).to_have_count(1)  # the new incident
    expect(page.get_by_test_id("status")).to_have_text("Firing")
    assert_not_reloaded(page)
    holder.locator("svg").focus()  # the readout works on the new chart: the latest point
    expect(holder.locator(".chart-readout")).to_contain_text("41.0")
    screenshot(page, f"refreshed-{width}")
    context.close()
    assert csp_violations == []


@pytest.mark.django_db
def test_the_chart_view_answers_only_the_owner(alice, bob, client_for):
    monitor = MonitorFactory(owner=alice)
    assert client_for(alice).get(f"/app/monitors/{monitor.pk}/chart").status_code == 200
    assert client_for(bob).get(f"/app/monitors/{monitor.pk}/chart").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_chart_is_not_fetched_again_for_a_refresh_of_the_same_version(page, alice, influx_db):
    """The page's once-a-minute full answer (times move on) carries the version it has: the
    chart stays (20 open monitor pages would each fetch theirs every minute, bench_live); a
    moved counter still fetches it."""
    monitor = a_hot_monitor(alice, influx_db)
    evaluate_due()
    sign_in(page, "alice")
    chart_requests: list[str] = []
    page.on("request", lambda r: chart_requests.append(r.url) if r.url.endswith("/chart") else 0)
    page.goto(f"/app/monitors/{monitor.pk}")
    page.evaluate(
        "window.__live = [];"
        "document.addEventListener('growalert:live', e => { window.__live.push(e.detail); })"
    )

    def full_answer(route: Route) -> None:  # as the minute's refresh gets it: no If-None-Match
        headers = {k: v for k, v in route.request.headers.items() if k != "if-none-match"}
        route.fulfill(response=route.fetch(headers=headers))

    page.route("**/app/live/monitors/*", full_answer)
    deadline = time.monotonic() + 10
    while page.evaluate("window.__live.length") < 3:  # three full answers, the same version
        assert time.monotonic() < deadline, "the page got no live answers"
        page.wait_for_timeout(100)
    page.unroute("**/app/live/monitors/*")
    assert [d["changed"] for d in page.evaluate("window.__live")][:3] == [False] * 3
    assert chart_requests == []

    live.changed([alice.pk], [monitor.pk])  # the monitor's counter moves: the chart follows
    deadline = time.monotonic() + 10
    while not chart_requests:
        assert time.monotonic() < deadline, "the chart was not fetched after a change"
        page.wait_for_timeout(100)
    assert page.evaluate("window.__live[window.__live.length - 1].changed") is True
