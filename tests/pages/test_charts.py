"""Charts a grower can read: time and value axes with the unit, gaps drawn as gaps, a long
spiky series reduced to an envelope under visible thresholds, incidents shaded, and a readout
on hover or tap (in Debian's chromium, at desktop and phone widths)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from growalert.pages import charts
from monitors.models import Incident
from tests.factories import MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in, watch_csp

HOUR = 3600_000
NOW = 1_764_000_000_000  # epoch ms


def every_5_min(hours: float, *, missing: tuple[float, float] | None = None) -> list[charts.Point]:
    points = []
    for k in range(int(hours * 12)):
        t = NOW - int(hours * HOUR) + k * 300_000
        if missing and NOW - missing[0] * HOUR <= t < NOW - missing[1] * HOUR:
            continue
        points.append((t, 20.0 + (k % 7) * 0.5))
    return points


def test_a_gap_in_the_data_cuts_the_line_into_separate_segments():
    points = every_5_min(24, missing=(10, 6))
    assert [len(run) for run in charts.segments(points)] == [12 * 14, 12 * 6]
    svg = charts.render(charts.Chart(points=points, start=NOW - 24 * HOUR, end=NOW))
    assert svg.count('<path class="series"') == 2
    assert "1 gap" in svg


def test_steady_data_is_one_segment():
    assert len(charts.segments(every_5_min(24))) == 1


def test_axes_carry_times_and_values_with_the_unit():
    svg = charts.render(
        charts.Chart(
            points=every_5_min(24),
            lines=[charts.Line(30.0, "critical 30 °C")],
            unit="°C",
            start=NOW - 24 * HOUR,
            end=NOW,
        )
    )
    y_labels = re.findall(r'class="tick tick-y"[^>]*>([^<]+)<', svg)
    x_labels = re.findall(r'class="tick tick-x"[^>]*>([^<]+)<', svg)
    assert len(y_labels) >= 3
    assert all(label.endswith("°C") for label in y_labels)
    assert len(x_labels) >= 3
    assert all(re.fullmatch(r"\w{3} \d\d:\d\d", label) for label in x_labels)


def test_a_long_spiky_series_becomes_an_envelope_below_the_threshold_lines():
    spiky = [(NOW - 24 * HOUR + k * 10_000, 20.0 + (25.0 if k % 2 else 0.0)) for k in range(8640)]
    svg = charts.render(
        charts.Chart(
            points=spiky,
            lines=[charts.Line(35.0, "critical 35")],
            start=NOW - 24 * HOUR,
            end=NOW,
        )
    )
    assert '<path class="envelope"' in svg
    # drawn later = on top: the threshold stays visible over the envelope and the line
    assert svg.index('class="threshold threshold-critical"') > svg.index('class="envelope"')
    assert svg.index('class="threshold threshold-critical"') > svg.index('class="series"')
    series = re.search(r'<path class="series" d="([^"]+)"', svg)
    assert series is not None
    assert series.group(1).count("L") < 600  # one point per pixel column at most, not 8,640


def test_an_incident_is_shaded_over_its_stretch_of_time():
    svg = charts.render(
        charts.Chart(
            points=every_5_min(24),
            bands=[charts.Band(NOW - 3 * HOUR, NOW - 2 * HOUR, "critical")],
            start=NOW - 24 * HOUR,
            end=NOW,
        )
    )
    band = re.search(
        r'<rect class="band band-critical" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg
    )
    assert band is not None
    assert float(band.group(2)) > 10  # an hour of 24 on a ~550 px plot


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1100, 390])
def test_the_monitor_chart_has_axes_gaps_shading_and_a_readout(
    browser, live_server, alice, influx_db, screenshot, csp_violations, width
):
    now_s = timezone.now()
    # every 5 min for 24 h at 20-23 °C, nothing from 10 h to 6 h ago
    points = [
        (ago, 20.0 + (ago // 300) % 4)
        for ago in range(60, 86400, 300)
        if not 6 * 3600 <= ago < 10 * 3600
    ]
    influx_db.write("gro01", "temperature", points, {"device": "greenhouse-1"})
    source = SourceFactory(owner=alice, database=influx_db.database)
    monitor = MonitorFactory(
        owner=alice, source=source, name="greenhouse-1 temperature", critical=30
    )
    Incident.objects.create(
        monitor=monitor,
        opened_at=now_s - timedelta(hours=3),
        resolved_at=now_s - timedelta(hours=2),
        summary="too warm",
    )
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": 900},
        is_mobile=width < 500,
        has_touch=width < 500,
    )
    page = watch_csp(context, csp_violations)
    sign_in(page, "alice")
    page.goto(f"/app/monitors/{monitor.pk}")
    chart = page.locator("figure[data-chart]")
    expect(chart.locator("svg .axis-x text.tick").first).to_be_visible()
    assert chart.locator("svg .axis-x text.tick").count() >= 3
    assert chart.locator("svg .axis-y text.tick").count() >= 3
    expect(chart.locator("svg path.series")).to_have_count(2)
    expect(chart.locator("svg rect.band")).to_have_count(1)
    expect(chart.locator("svg line.threshold-critical")).to_have_count(1)
    box = chart.locator("svg").bounding_box()
    assert box is not None
    assert box["width"] <= width
    if width < 500:
        chart.locator("svg").tap(position={"x": box["width"] * 0.9, "y": box["height"] / 2})
    else:
        chart.locator("svg").hover(position={"x": box["width"] * 0.9, "y": box["height"] / 2})
    expect(chart.locator(".chart-readout")).to_have_text(re.compile(r"\d\d:\d\d · 2\d\.\d"))
    expect(chart.locator("svg line.cursor")).to_have_count(1)
    screenshot(page, f"chart-{width}")
    context.close()
    assert csp_violations == []
