"""Reads the pages need beyond the apps' selectors: recent series and the charts built on them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.safestring import SafeString

from growalert.pages import charts
from monitors.influxdb import client as influx
from monitors.influxdb import observe
from monitors.models import Incident, Monitor

logger = logging.getLogger(__name__)


def recent_points(monitor: Monitor, *, hours: float) -> list[charts.Point]:
    """The raw points of the monitor's series over the last ``hours``; [] when unavailable."""
    if monitor.raw_query or not monitor.measurement:
        return []
    end = timezone.now()
    try:
        times, values = observe.history(monitor, start=end - timedelta(hours=hours), end=end)
    except (influx.InfluxError, OSError) as exc:
        logger.info("No chart for monitor %s: %s", monitor.pk, exc)
        return []
    return list(zip(times, values, strict=True))


def threshold_lines(monitor: Monitor) -> list[charts.Line]:
    lines = [charts.Line(monitor.critical, f"critical {monitor.critical:g}")]
    if monitor.critical_high is not None:
        lines.append(charts.Line(monitor.critical_high, f"critical {monitor.critical_high:g}"))
    for value in (monitor.warning, monitor.warning_high):
        if value is not None:
            lines.append(charts.Line(value, f"warning {value:g}", kind="warning"))
    return lines


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def monitor_chart(
    monitor: Monitor,
    *,
    hours: float,
    incidents: list[Incident] | None = None,
    width: int = 600,
    height: int = 160,
) -> SafeString:
    bands = [
        charts.Band(int(i.opened_at.timestamp() * 1000), _ms(i.resolved_at), kind=i.severity)
        for i in incidents or []
    ]
    return charts.render(
        charts.Chart(
            points=recent_points(monitor, hours=hours),
            lines=threshold_lines(monitor),
            bands=bands,
            title=f"{monitor.name}, last {hours:g} h",
            width=width,
            height=height,
        )
    )
