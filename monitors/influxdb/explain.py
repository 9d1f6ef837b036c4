"""Why a structured monitor's series is empty, in the words of its definition: "no field
`moisure` in `soil`; fields: moisture, temp". Asked of the source's catalog (InfluxQL's SHOW
statements or Flux's schema package, ``catalog``) only when a preview found no point; and what
a source holds, for the editor's suggestions."""

from __future__ import annotations

from monitors.influxdb import catalog
from monitors.models import Monitor, Source

LISTED = 12  # names shown at most


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


MAX_NAMES = 200  # per list in a schema answer


def schema(source: Source, *, measurement: str = "") -> dict[str, object]:
    """What a source holds, for the editor's suggestions: its measurements and, for
    ``measurement``, its fields and its tags' values (at most MAX_NAMES each)."""
    found: dict[str, object] = {"measurements": [], "fields": [], "tags": {}}
    with catalog.open_catalog(source) as reader:
        measurements = reader.measurements()
        found["measurements"] = measurements[:MAX_NAMES]
        if measurement and measurement in measurements:
            found["fields"] = reader.fields(measurement)[:MAX_NAMES]
            found["tags"] = {
                key: reader.tag_values(measurement, key)[:MAX_NAMES]
                for key in reader.tag_keys(measurement)[:20]
            }
    return found


def why_empty(monitor: Monitor) -> str | None:
    """The first thing of the definition the source does not have, with what it has instead;
    None when all of it exists (the series is just empty in that time) or for a raw query."""
    source: Source = monitor.source
    if monitor.raw_query:
        return None
    where = "bucket" if source.flavor == Source.Flavor.FLUX else "database"
    with catalog.open_catalog(source) as reader:
        measurements = reader.measurements()
        if monitor.measurement not in measurements:
            listed = _listed(measurements) or "none"
            return (
                f"no measurement `{monitor.measurement}` in {where} `{source.database}`; "
                f"measurements: {listed}"
            )
        fields = reader.fields(monitor.measurement)
        if monitor.field not in fields:
            return (
                f"no field `{monitor.field}` in `{monitor.measurement}`; fields: {_listed(fields)}"
            )
        for key, value in (monitor.tags or {}).items():
            values = reader.tag_values(monitor.measurement, key)
            if value not in values:
                if not values:
                    return f"no tag `{key}` on `{monitor.measurement}`"
                known = _listed(values)
                return f"no series of `{monitor.measurement}` with {key}={value}; {key}: {known}"
    return None
