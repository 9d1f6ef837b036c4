"""What InfluxDB says about a fleet monitor's series: one ``GROUP BY`` statement per monitor,
the fleet monitors of one batch (one source) in one request, matched back to series by tags.

Exact filter values are selected by InfluxDB (bound parameters); patterns are matched here
against the tags that come back (``monitors.fleet.selected``), so a user's pattern never
becomes InfluxQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitors import fleet
from monitors.influxdb import catalog, connect, observe, queries
from monitors.influxdb import client as influx
from monitors.models import Monitor, Source


@dataclass(frozen=True, slots=True)
class SeriesValue:
    key: str
    tags: dict[str, str]
    value: float | None


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    key: str
    tags: dict[str, str]
    points: list[tuple[int, float]]


@dataclass(slots=True)
class FleetObservation:
    query: queries.Query | None
    #: every selected series that answered, by key
    series: dict[str, SeriesValue] = field(default_factory=dict)
    #: the statement (or the request) failed: every series of the monitor shares it
    error: influx.InfluxError | None = None


def fleet_query(monitor: Monitor, *, prefix: str = "") -> queries.Query:
    chosen = fleet.exact_values(monitor.series_filter)
    if monitor.source.flavor == Source.Flavor.FLUX:
        return queries.flux_latest_by(
            monitor.definition(), list(monitor.group_by), chosen, bucket=monitor.source.database
        )
    return queries.latest_by(monitor.definition(), list(monitor.group_by), chosen, prefix=prefix)


def observe_fleets(monitors: list[Monitor]) -> dict[int, FleetObservation]:
    """Fleet monitors of one source: for InfluxQL, one statement each, in one request; Flux
    has no multi-statement form, so one query each. Raises InvalidQuery (from building a
    statement) for a definition that cannot be asked."""
    if not monitors:
        return {}
    if monitors[0].source.flavor == Source.Flavor.FLUX:
        return {monitor.pk: _observe_flux(monitor) for monitor in monitors}
    params: dict[str, Any] = {}
    built = []
    for index, monitor in enumerate(monitors):
        query = fleet_query(monitor, prefix=f"f{index}_")
        params.update(query.params)
        built.append(query)
    source = monitors[0].source
    try:
        with connect.client_for(source) as client:
            body = client.query_body(
                ";\n".join(q.text for q in built), database=source.database, params=params
            )
    except influx.InfluxError as exc:
        return {m.pk: FleetObservation(q, error=exc) for m, q in zip(monitors, built, strict=True)}
    by_statement = {r.get("statement_id", i): r for i, r in enumerate(body.get("results", []))}
    return {
        monitor.pk: _read(monitor, query, by_statement.get(index))
        for index, (monitor, query) in enumerate(zip(monitors, built, strict=True))
    }


def _read(
    monitor: Monitor, query: queries.Query, result: dict[str, Any] | None
) -> FleetObservation:
    """One statement's answer (InfluxDB's JSON) as the series it selects and their values."""
    if result is not None and result.get("error"):
        return FleetObservation(query, error=influx.InfluxQueryError(str(result["error"])))
    observation = FleetObservation(query)
    if result is None:
        return observation
    group_by = list(monitor.group_by)
    compiled = fleet.compile_filter(monitor.series_filter)
    key_of = fleet.series_key
    found = observation.series
    for series in result.get("series", ()):
        given = series.get("tags") or {}
        tags = {key: str(given.get(key, "")) for key in group_by}
        if not all(tags.values()) or (compiled and not fleet.selected(tags, compiled)):
            continue  # points without every grouped tag belong to no series
        key = key_of(tags, group_by)
        found[key] = SeriesValue(key, tags, _last_value(series))
    return observation


def _observe_flux(monitor: Monitor) -> FleetObservation:
    query = fleet_query(monitor)
    try:
        with connect.flux_client_for(monitor.source) as flux:
            records = flux.query_records(query.text, params=query.params)
    except influx.InfluxError as exc:
        return FleetObservation(query, error=exc)
    observation = FleetObservation(query)
    for tags, record in _flux_series(monitor, records):
        cell: Any = record.get("_value")
        value = float(cell) if observe._is_number(cell) else None
        key = fleet.series_key(tags, monitor.group_by)
        observation.series[key] = SeriesValue(key, tags, value)
    return observation


def _flux_series(
    monitor: Monitor, records: list[dict[str, Any]]
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """The rows of a grouped Flux answer that belong to a selected series, with its tags
    (rows without every grouped tag belong to no series, as in InfluxQL)."""
    group_by = list(monitor.group_by)
    compiled = fleet.compile_filter(monitor.series_filter)
    found = []
    for record in records:
        tags = {key: str(record.get(key) or "") for key in group_by}
        if all(tags.values()) and fleet.selected(tags, compiled):
            found.append((tags, record))
    return found


def _last_value(series: dict[str, Any]) -> float | None:
    """The last row's first finite number (not the time), as ``observe.value_from`` reads a
    single-series answer."""
    columns = series.get("columns", ())
    rows = series.get("values", ())
    if len(columns) == 2 and rows and observe._is_number(cell := rows[-1][1]):
        return float(cell)  # the grouped statement's shape: time and one aggregate
    for row in reversed(rows):
        for column, cell in zip(columns, row, strict=False):
            if column != "time" and observe._is_number(cell):
                return float(cell)
    return None


def points_by_series(
    monitor: Monitor, *, start: datetime, end: datetime, only: Mapping[str, list[str]] | None = None
) -> dict[str, SeriesPoints]:
    """Every raw point of the monitor's series in (start, end] by series key, in time order
    (``only`` narrows to exact tag values as well). Raises InfluxError."""
    chosen = dict(fleet.exact_values(monitor.series_filter))
    chosen.update(only or {})
    if monitor.source.flavor == Source.Flavor.FLUX:
        return _flux_points_by_series(monitor, chosen, start=start, end=end)
    query = queries.raw_points_by(
        monitor.definition(), list(monitor.group_by), chosen, start=start, end=end
    )
    by_statement = observe._ask(monitor.source, [query.text], dict(query.params))
    result = by_statement.get(0)
    if result is None:
        return {}
    if result.error:
        raise influx.InfluxQueryError(result.error)
    group_by = list(monitor.group_by)
    compiled = fleet.compile_filter(monitor.series_filter)
    found: dict[str, SeriesPoints] = {}
    for series in result.series:
        tags = {key: str(series.tags.get(key, "")) for key in group_by}
        if all(tags.values()) and fleet.selected(tags, compiled):
            key = fleet.series_key(tags, group_by)
            found[key] = SeriesPoints(key, tags, observe._numbers((series,)))
    return found


def _flux_points_by_series(
    monitor: Monitor, chosen: Mapping[str, list[str]], *, start: datetime, end: datetime
) -> dict[str, SeriesPoints]:
    query = queries.flux_points_by(
        monitor.definition(),
        list(monitor.group_by),
        chosen,
        bucket=monitor.source.database,
        start=start,
        end=end,
    )
    with connect.flux_client_for(monitor.source) as flux:
        records = flux.query_records(query.text, params=query.params)
    found: dict[str, SeriesPoints] = {}
    for tags, record in _flux_series(monitor, records):
        at: Any = record.get("_time")
        cell: Any = record.get("_value")
        if isinstance(at, datetime) and observe._is_number(cell):
            key = fleet.series_key(tags, monitor.group_by)
            series = found.setdefault(key, SeriesPoints(key, tags, []))
            series.points.append((int(at.timestamp() * 1000), float(cell)))
    return found


MAX_LISTED = 100  # series named in an answer of matching_series
SHOW_LIMIT = 10_000  # series keys read from the source's index at most


def matching_series(
    source: Source,
    *,
    measurement: str,
    group_by: list[str],
    series_filter: Mapping[str, list[str]],
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The series a fleet monitor with this definition would watch now, for the editor: how
    many, and the first MAX_LISTED (key and label) in key order. InfluxQL sources answer from
    their index (``SHOW SERIES``: series with data within the retention policy), Flux sources
    from the last day of points (``queries.flux_series_of``). ``complete`` is false when
    the source held more than SHOW_LIMIT series of the measurement. Raises InfluxError."""
    fixed = dict(tags or {})
    with catalog.open_catalog(source) as reader:
        rows = reader.series(
            measurement,
            keys=group_by,
            fixed=fixed,
            chosen=fleet.exact_values(series_filter),
            limit=SHOW_LIMIT + 1,
        )
    compiled = fleet.compile_filter(series_filter)
    found: dict[str, dict[str, str]] = {}
    for series_tags in rows[:SHOW_LIMIT]:
        chosen = {key: series_tags.get(key, "") for key in group_by}
        if all(chosen.values()) and fleet.selected(chosen, compiled):
            found.setdefault(fleet.series_key(chosen, group_by), chosen)
    listed = [
        {"key": key, "label": fleet.series_label(found[key], group_by)}
        for key in sorted(found)[:MAX_LISTED]
    ]
    return {"matched": len(found), "series": listed, "complete": len(rows) <= SHOW_LIMIT}
