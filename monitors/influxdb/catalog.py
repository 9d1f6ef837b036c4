"""What a source holds, asked the same way of both flavours: its measurements, a measurement's
fields, tag keys and tag values, and its series. The editor's suggestions and "matches N series
now" (``explain.schema``, ``fleet.matching_series``) and the "no field `moisure` in `soil`"
explanation (``explain.why_empty``) read it, whatever the source speaks.

InfluxQL (1.x) asks SHOW statements (identifiers quoted). Flux (2.x) asks the ``schema``
package and, for series, one grouped query over recent data; every value is bound as an option
(``p_*``), tag keys written as escaped string literals as in ``queries``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from monitors.influxdb import client as influx
from monitors.influxdb import connect, queries
from monitors.models import Source

MAX_MEASUREMENTS = 1000
# schema.* functions read this far back (their own default is 30 days too).
FLUX_SCHEMA_SPAN = "-30d"
# Columns the schema package lists as tag keys although they are not tags.
_FLUX_SYSTEM_COLUMNS = frozenset({"_start", "_stop", "_measurement", "_field"})


class Catalog(Protocol):
    def measurements(self) -> list[str]: ...

    def fields(self, measurement: str) -> list[str]: ...

    def tag_keys(self, measurement: str) -> list[str]: ...

    def tag_values(self, measurement: str, key: str) -> list[str]: ...

    def series(
        self,
        measurement: str,
        *,
        keys: list[str],
        fixed: Mapping[str, str],
        chosen: Mapping[str, list[str]],
        limit: int,
    ) -> list[dict[str, str]]:
        """At most ``limit`` series of ``measurement`` carrying the ``fixed`` tags, each as its
        tags (at least ``keys``); a series without one of ``keys`` has it as "". ``chosen``
        (exact values per key) may narrow them at the source; the caller matches the filter."""
        ...


@contextmanager
def open_catalog(source: Source) -> Iterator[Catalog]:
    """The catalog of ``source``, its connection closed on exit. Raises InfluxError."""
    if source.flavor == Source.Flavor.FLUX:
        with connect.flux_client_for(source) as flux:
            yield FluxCatalog(flux, bucket=source.database)
    else:
        with connect.client_for(source) as client:
            yield InfluxQLCatalog(client, database=source.database)


def _sorted_names(names: Iterator[str]) -> list[str]:
    return sorted(set(names))


class InfluxQLCatalog:
    def __init__(self, client: influx.InfluxClient, *, database: str) -> None:
        self.client = client
        self.database = database

    def _column(self, statement: str, column: int = 0) -> list[str]:
        results = self.client.query(statement, database=self.database)
        return _sorted_names(
            str(row[column]) for r in results for s in r.series for row in s.values if row
        )

    def measurements(self) -> list[str]:
        return self._column(f"SHOW MEASUREMENTS LIMIT {MAX_MEASUREMENTS}")

    def fields(self, measurement: str) -> list[str]:
        return self._column(f"SHOW FIELD KEYS FROM {influx.quote_ident(measurement)}")

    def tag_keys(self, measurement: str) -> list[str]:
        return self._column(f"SHOW TAG KEYS FROM {influx.quote_ident(measurement)}")

    def tag_values(self, measurement: str, key: str) -> list[str]:
        name, tag = influx.quote_ident(measurement), influx.quote_ident(key)
        return self._column(f"SHOW TAG VALUES FROM {name} WITH KEY = {tag}", column=1)

    def series(
        self,
        measurement: str,
        *,
        keys: list[str],
        fixed: Mapping[str, str],
        chosen: Mapping[str, list[str]],
        limit: int,
    ) -> list[dict[str, str]]:
        statement = f"SHOW SERIES FROM {influx.quote_ident(measurement)} LIMIT {limit}"
        results = self.client.query(statement, database=self.database)
        raw = [str(row[0]) for r in results for s in r.series for row in s.values if row]
        found = []
        for tags in map(tags_of_series_key, raw):
            if all(tags.get(k) == v for k, v in fixed.items()):
                found.append({key: tags.get(key, "") for key in keys} | dict(fixed))
        return found


class FluxCatalog:
    def __init__(self, flux: influx.FluxClient, *, bucket: str) -> None:
        self.flux = flux
        self.bucket = bucket

    def _values(self, call: str, **params: str) -> list[str]:
        text = f'import "influxdata/influxdb/schema"\n{call}'
        records = self.flux.query_records(text, params={"p_bucket": self.bucket, **params})
        return _sorted_names(str(r["_value"]) for r in records if r.get("_value") is not None)

    def measurements(self) -> list[str]:
        call = f"schema.measurements(bucket: p_bucket, start: {FLUX_SCHEMA_SPAN})"
        return self._values(call + f"\n  |> limit(n: {MAX_MEASUREMENTS})")

    def fields(self, measurement: str) -> list[str]:
        call = (
            "schema.measurementFieldKeys(bucket: p_bucket, measurement: p_measurement, "
            f"start: {FLUX_SCHEMA_SPAN})"
        )
        return self._values(call, p_measurement=measurement)

    def tag_keys(self, measurement: str) -> list[str]:
        call = (
            "schema.measurementTagKeys(bucket: p_bucket, measurement: p_measurement, "
            f"start: {FLUX_SCHEMA_SPAN})"
        )
        keys = self._values(call, p_measurement=measurement)
        return [key for key in keys if key not in _FLUX_SYSTEM_COLUMNS]

    def tag_values(self, measurement: str, key: str) -> list[str]:
        call = (
            "schema.measurementTagValues(bucket: p_bucket, measurement: p_measurement, "
            f"tag: p_tag, start: {FLUX_SCHEMA_SPAN})"
        )
        return self._values(call, p_measurement=measurement, p_tag=key)

    def series(
        self,
        measurement: str,
        *,
        keys: list[str],
        fixed: Mapping[str, str],
        chosen: Mapping[str, list[str]],
        limit: int,
    ) -> list[dict[str, str]]:
        """One row per distinct combination of ``keys`` among the measurement's points of the
        last day (``queries.flux_series_of``: fixed tags and exact values selected by InfluxDB,
        only the tag columns kept)."""
        query = queries.flux_series_of(
            measurement, keys, chosen, fixed, bucket=self.bucket, limit=limit
        )
        records = self.flux.query_records(query.text, params=query.params)
        return [{key: _text(record.get(key)) for key in keys} | dict(fixed) for record in records]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def tags_of_series_key(series_key: str) -> dict[str, str]:
    """The tags of an InfluxDB series key (``gro01,device=greenhouse\\ 1,zone=a``: commas,
    equals signs and spaces in names and values escaped with a backslash)."""
    tags: dict[str, str] = {}
    parts = _split_unescaped(series_key, ",")
    for part in parts[1:]:  # the first is the measurement
        key, value = [*_split_unescaped(part, "=", once=True), ""][:2]
        tags[_unescape(key)] = _unescape(value)
    return tags


def _split_unescaped(text: str, separator: str, *, once: bool = False) -> list[str]:
    parts, start, index = [], 0, 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == separator:
            parts.append(text[start:index])
            start = index + 1
            if once:
                break
        index += 1
    parts.append(text[start:])
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
