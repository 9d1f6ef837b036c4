"""Reads the pages need beyond the apps' selectors: recent series and the charts built on them."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.safestring import SafeString

from growalert.pages import charts
from monitors.influxdb import client as influx
from monitors.influxdb import observe
from monitors.models import Incident, Monitor, Silence

logger = logging.getLogger(__name__)


def recent_points(monitors: list[Monitor], *, hours: float) -> dict[int, list[charts.Point]]:
    """The raw points of each monitor's series over the last ``hours``, with one InfluxDB
    request per source (``observe.history_batch``); [] where unavailable (a raw query, which
    has no series to chart, a fleet monitor, whose series its page shows as a grid, or a
    source that did not answer)."""
    end = timezone.now()
    by_source: dict[int, list[Monitor]] = defaultdict(list)
    for monitor in monitors:
        if not monitor.raw_query and monitor.measurement and not monitor.is_fleet:
            by_source[monitor.source_id].append(monitor)
    found: dict[int, list[charts.Point]] = {}
    for members in by_source.values():
        try:
            found.update(
                observe.history_batch(members, start=end - timedelta(hours=hours), end=end)
            )
        except (influx.InfluxError, OSError) as exc:
            logger.info("No charts for source %s: %s", members[0].source_id, exc)
    return {monitor.pk: found.get(monitor.pk, []) for monitor in monitors}


def threshold_lines(monitor: Monitor) -> list[charts.Line]:
    lines = [charts.Line(monitor.critical, f"critical {monitor.show(monitor.critical)}")]
    if monitor.critical_high is not None:
        lines.append(
            charts.Line(monitor.critical_high, f"critical {monitor.show(monitor.critical_high)}")
        )
    for value in (monitor.warning, monitor.warning_high):
        if value is not None:
            lines.append(charts.Line(value, f"warning {monitor.show(value)}", kind="warning"))
    return lines


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def monitor_chart(
    monitor: Monitor,
    *,
    hours: float,
    incidents: list[Incident] | None = None,
    silences: list[Silence] | None = None,
    width: int = 600,
    height: int = 180,
) -> SafeString:
    return monitor_charts(
        [monitor],
        hours=hours,
        incidents=incidents,
        silences=silences,
        width=width,
        height=height,
    )[monitor.pk]


def silence_bands(silences: list[Silence], start: int, end: int) -> list[charts.Band]:
    """The silences' windows between ``start`` and ``end`` (epoch ms) as bands to shade: a
    one-off silence once, a daily window on each day it opened."""
    begin = datetime.fromtimestamp(start / 1000, UTC)
    finish = datetime.fromtimestamp(end / 1000, UTC)
    return [
        charts.Band(int(opens.timestamp() * 1000), int(closes.timestamp() * 1000), "silence")
        for silence in silences
        for opens, closes in silence.windows_between(begin, finish)
    ]


def monitor_charts(
    monitors: list[Monitor],
    *,
    hours: float,
    incidents: list[Incident] | None = None,
    silences: list[Silence] | None = None,
    width: int = 600,
    height: int = 180,
) -> dict[int, SafeString]:
    """Each monitor's chart over the last ``hours``, its series read with one InfluxDB request
    per source; ``incidents`` shade the charts of their monitors, ``silences`` (of a monitor,
    or of all the owner's monitors) theirs, in a shade of their own."""
    points = recent_points(monitors, hours=hours)
    start, end = charts.window(hours)
    bands: dict[int, list[charts.Band]] = defaultdict(list)
    for monitor in monitors:
        mine = [
            s for s in silences or [] if not s.series_key and s.monitor_id in (None, monitor.pk)
        ]
        bands[monitor.pk].extend(silence_bands(mine, start, end))
    for i in incidents or []:
        band = charts.Band(int(i.opened_at.timestamp() * 1000), _ms(i.resolved_at), i.severity)
        bands[i.monitor_id].append(band)
    return {
        monitor.pk: charts.render(
            charts.Chart(
                points=points[monitor.pk],
                lines=threshold_lines(monitor),
                bands=bands[monitor.pk],
                title=f"{monitor.name}, last {hours:g} h",
                width=width,
                height=height,
                unit=monitor.unit,
                decimals=monitor.precision,
                start=start,
                end=end,
            )
        )
        for monitor in monitors
    }
