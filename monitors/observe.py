"""What InfluxDB says about a monitor's series: the latest aggregate, or its raw history.

Turning these observations into statuses is evaluation's job; this module only asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitors import influx, queries, sources
from monitors.models import Monitor, Source


@dataclass(frozen=True, slots=True)
class Observation:
    query: queries.Query
    value: float | None = None
    error: influx.InfluxError | None = None

    @property
    def no_data(self) -> bool:
        return self.error is None and self.value is None


def definition_of(monitor: Monitor) -> queries.Definition:
    return queries.Definition(
        measurement=monitor.measurement,
        field=monitor.field,
        tags=monitor.tags,
        aggregation=monitor.aggregation,
        window=monitor.window,
        percentile=monitor.percentile,
    )


def query_for(monitor: Monitor, *, prefix: str = "") -> queries.Query:
    if monitor.source.flavor == Source.Flavor.FLUX:
        return queries.flux_latest(definition_of(monitor), bucket=monitor.source.database)
    if monitor.raw_query:
        return queries.raw(monitor.raw_query)
    return queries.latest(definition_of(monitor), prefix=prefix)


def value_from(result: influx.StatementResult) -> float | None:
    """The monitor's value from one statement's result: the last row's first numeric column."""
    if result.error:
        raise influx.InfluxQueryError(result.error)
    for series in reversed(result.series):
        for row in reversed(series.values):
            for column, cell in zip(series.columns, row, strict=True):
                if column != "time" and _is_number(cell):
                    return float(cell)
    return None


def _is_number(cell: Any) -> bool:
    return isinstance(cell, int | float) and not isinstance(cell, bool) and math.isfinite(cell)


def observe(monitor: Monitor) -> Observation:
    query = query_for(monitor)
    try:
        if monitor.source.flavor == Source.Flavor.FLUX:
            with sources.flux_client_for(monitor.source) as flux:
                return Observation(query, value=flux.query_value(query.text, params=query.params))
        with sources.client_for(monitor.source) as client:
            results = client.query(
                query.text, database=monitor.source.database, params=query.params
            )
        return Observation(query, value=value_from(results[0]) if results else None)
    except influx.InfluxError as exc:
        return Observation(query, error=exc)


def history(monitor: Monitor, *, start: datetime, end: datetime) -> tuple[list[int], list[float]]:
    """Every raw point of a structured monitor's series in (start, end], in time order."""
    query = queries.raw_points(definition_of(monitor), start=start, end=end)
    with sources.client_for(monitor.source) as client:
        results = client.query(query.text, database=monitor.source.database, params=query.params)
    times: list[int] = []
    values: list[float] = []
    for point in influx.points(results[0].series if results else ()):
        if _is_number(point["value"]):
            times.append(int(point["time"]))
            values.append(float(point["value"]))
    return times, values


def observe_batch(monitors: list[Monitor]) -> dict[int, Observation]:
    """Observes monitors that share one source with a single InfluxDB request.

    InfluxQL sources get one multi-statement query (``;``-separated, parameters prefixed per
    monitor); results are matched back by statement id. A request that fails as a whole gives
    every monitor that error; a statement that fails gives only its monitor the error. Flux has
    no multi-statement form, so Flux sources are asked one monitor at a time.
    """
    if not monitors:
        return {}
    source = monitors[0].source
    if source.flavor == Source.Flavor.FLUX:
        return {m.pk: observe(m) for m in monitors}
    built = [query_for(m, prefix=f"m{i}_") for i, m in enumerate(monitors)]
    params: dict[str, Any] = {}
    for query in built:
        params.update(query.params)
    try:
        with sources.client_for(source) as client:
            results = client.query(
                ";\n".join(q.text for q in built),
                database=source.database,
                params=params,
                method="POST",
            )
    except influx.InfluxError as exc:
        return {m.pk: Observation(q, error=exc) for m, q in zip(monitors, built, strict=True)}
    by_statement = {r.statement_id: r for r in results}
    return {
        m.pk: _observation_from(q, by_statement.get(i))
        for i, (m, q) in enumerate(zip(monitors, built, strict=True))
    }


def recent_points(
    monitors: list[Monitor], *, end: datetime, limit: int
) -> dict[int, list[tuple[int, float]]]:
    """The raw points of each monitor's window ending at ``end`` (at most ``limit`` newest),
    for monitors of one source, in one multi-statement request. Raises InfluxError."""
    if not monitors:
        return {}
    source = monitors[0].source
    built = [
        queries.raw_points(definition_of(m), start=end - m.window, end=end, prefix=f"m{i}_")
        for i, m in enumerate(monitors)
    ]
    params: dict[str, Any] = {}
    for query in built:
        params.update(query.params)
    with sources.client_for(source) as client:
        results = client.query(
            ";\n".join(q.text for q in built),
            database=source.database,
            params=params,
            method="POST",
        )
    by_statement = {r.statement_id: r for r in results}
    found: dict[int, list[tuple[int, float]]] = {}
    for i, monitor in enumerate(monitors):
        result = by_statement.get(i)
        rows = influx.points(result.series) if result is not None else []
        found[monitor.pk] = [
            (int(p["time"]), float(p["value"])) for p in rows if _is_number(p["value"])
        ][-limit:]
    return found


def _observation_from(query: queries.Query, result: influx.StatementResult | None) -> Observation:
    if result is None:
        return Observation(query)
    try:
        return Observation(query, value=value_from(result))
    except influx.InfluxQueryError as exc:
        return Observation(query, error=exc)
