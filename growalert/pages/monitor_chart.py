"""A monitor page's chart: its series over the last day, shaded where it was in trouble
(incidents) and where it was silenced (one-off silences and daily windows, of the monitor or
of all the account's monitors), and the small view that serves the chart alone, so the page
redraws it without a reload when the live counter moves (static/js/chart.js); that answer is
cached per monitor, change and minute, so many open tabs cost one InfluxDB read per change."""

from __future__ import annotations

import time
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from growalert.pages import data
from growalert.pages import live as live_pages
from monitors import selectors
from monitors.models import Incident, Monitor
from shared.auth import owner_of

HOURS = 24
CACHE_SECONDS = 120
SILENCES_SHOWN = 100  # silences that can shade one chart (a daily window counts once)


def chart_for(
    request: HttpRequest, monitor: Monitor, incidents: list[Incident] | None = None
) -> SafeString:
    """The chart of a single-series monitor ("" for a fleet monitor: its page shows a grid)."""
    if monitor.is_fleet:
        return SafeString("")
    if incidents is None:
        incidents = list(
            selectors.incident_list(owner=owner_of(request), monitor_id=monitor.pk)[:50]
        )
    since = timezone.now() - timedelta(hours=HOURS)
    silences = list(
        selectors.silence_list(owner=owner_of(request))
        .filter(Q(monitor_id=monitor.pk) | Q(monitor__isnull=True), series_key="")
        .filter(Q(ends_at__gt=since) | Q(daily=True))
        .order_by("-starts_at")[:SILENCES_SHOWN]
    )
    return data.monitor_chart(monitor, hours=HOURS, incidents=incidents, silences=silences)


@login_required
@require_GET
def monitor_chart(request: HttpRequest, monitor_id: int) -> HttpResponse:
    """The chart's HTML alone (a ``<figure>``), for the page to swap in."""
    monitor = get_object_or_404(selectors.monitor_list(owner=owner_of(request)), pk=monitor_id)
    # Every open tab of the page asks after the same change: one InfluxDB read per monitor,
    # change and minute (the live counter names the change; the minute moves the window on).
    version = live_pages.version_of(monitor.owner_id, live_pages.monitor_page(monitor.pk))
    zone = timezone.get_current_timezone_name()
    key = f"chart:{monitor.pk}:{version}:{int(time.time() // 60)}:{zone}"
    html = cache.get(key) if version is not None else None
    if not isinstance(html, str):
        html = str(chart_for(request, monitor))
        if version is not None:
            cache.set(key, html, CACHE_SECONDS)
    return HttpResponse(html, headers={"Cache-Control": "private, no-cache"})
