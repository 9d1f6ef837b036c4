"""Why a structured monitor's series is empty, in the words of its definition: "no field
`moisure` in `soil`; fields: moisture, temp". Asked of the source's schema (SHOW statements,
identifiers quoted, tag values bound as parameters) only when a preview found no point."""

from __future__ import annotations

from monitors.influxdb import client as influx
from monitors.influxdb import connect
from monitors.models import Monitor, Source

LISTED = 12  # names shown at most


def _names(results: list[influx.StatementResult], column: int = 0) -> list[str]:
    found: list[str] = []
    for result in results:
        for series in result.series:
            found.extend(str(row[column]) for row in series.values if row)
    return sorted(set(found))


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


MAX_NAMES = 200  # per list in a schema answer


def schema(source: Source, *, measurement: str = "") -> dict[str, object]:
    """What an InfluxQL source holds, for the editor's suggestions: its measurements and, for
    ``measurement``, its fields and its tags' values (at most MAX_NAMES each)."""
    found: dict[str, object] = {"measurements": [], "fields": [], "tags": {}}
    if source.flavor != Source.Flavor.INFLUXQL:
        return found
    database = source.database
    with connect.client_for(source) as client:
        found["measurements"] = _names(
            client.query("SHOW MEASUREMENTS LIMIT 1000", database=database)
        )[:MAX_NAMES]
        if measurement and measurement in found["measurements"]:  # type: ignore[operator]
            name = influx.quote_ident(measurement)
            fields = client.query(f"SHOW FIELD KEYS FROM {name}", database=database)
            found["fields"] = _names(fields)[:MAX_NAMES]
            keys = _names(client.query(f"SHOW TAG KEYS FROM {name}", database=database))
            found["tags"] = {
                key: _names(
                    client.query(
                        f"SHOW TAG VALUES FROM {name} WITH KEY = {influx.quote_ident(key)}",
                        database=database,
                    ),
                    column=1,
                )[:MAX_NAMES]
                for key in keys[:20]
            }
    return found


def why_empty(monitor: Monitor) -> str | None:
    """The first thing of the definition the source does not have, with what it has instead;
    None when all of it exists (the series is just empty in that time) or for Flux sources."""
    source: Source = monitor.source
    if source.flavor != Source.Flavor.INFLUXQL or monitor.raw_query:
        return None
    database = source.database
    with connect.client_for(source) as client:
        measurements = _names(client.query("SHOW MEASUREMENTS LIMIT 1000", database=database))
        if monitor.measurement not in measurements:
            listed = _listed(measurements) or "none"
            return (
                f"no measurement `{monitor.measurement}` in database `{database}`; "
                f"measurements: {listed}"
            )
        measurement = influx.quote_ident(monitor.measurement)
        fields = _names(client.query(f"SHOW FIELD KEYS FROM {measurement}", database=database))
        if monitor.field not in fields:
            return (
                f"no field `{monitor.field}` in `{monitor.measurement}`; fields: {_listed(fields)}"
            )
        for key, value in (monitor.tags or {}).items():
            values = _names(
                client.query(
                    f"SHOW TAG VALUES FROM {measurement} WITH KEY = {influx.quote_ident(key)}",
                    database=database,
                ),
                column=1,
            )
            if value not in values:
                if not values:
                    return f"no tag `{key}` on `{monitor.measurement}`"
                known = _listed(values)
                return f"no series of `{monitor.measurement}` with {key}={value}; {key}: {known}"
    return None
