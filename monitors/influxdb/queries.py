"""InfluxQL for a monitor definition, with every user value bound as a parameter.

Identifiers (measurement, field, tag keys) cannot be bound in InfluxQL; they are written as
double-quoted identifiers with quotes and backslashes escaped, so no definition can change the
meaning of the query. Tag values and durations always travel in ``params``.

Raw queries from power users are checked to be exactly one read-only SELECT: InfluxDB 1.x will
execute ``DROP``/``DELETE`` even in a GET request (it only warns), so this check is the guard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts_core import Aggregation
from monitors.definition import Definition
from monitors.influxdb.client import quote_ident

AGGREGATIONS = tuple(Aggregation)


class InvalidQuery(ValueError):
    """A raw query or definition that growalert will not send to InfluxDB."""


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    params: dict[str, Any]

    def display(self) -> str:
        """The query as a human would read it, parameters shown inline (for /test output)."""
        shown = self.text
        for name, value in sorted(self.params.items(), key=lambda kv: -len(kv[0])):
            if isinstance(value, dict):  # a duration or a regular expression
                literal = value.get("duration") or f"/{value.get('regex', '')}/"
            else:
                literal = repr(value)
            shown = shown.replace(f"${name}", str(literal))
        return shown


def influx_duration(window: timedelta) -> str:
    """A timedelta as an InfluxQL duration literal: ``5m``, ``90s``, ``1500ms``."""
    total_ms = int(window.total_seconds() * 1000)
    if total_ms <= 0:
        raise InvalidQuery("the window must be longer than zero")
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if total_ms % size == 0:
            return f"{total_ms // size}{unit}"
    return f"{total_ms}ms"


def _selector(definition: Definition) -> str:
    if definition.aggregation not in AGGREGATIONS:
        raise InvalidQuery(f"unknown aggregation {definition.aggregation!r}")
    field = quote_ident(definition.field)
    if definition.aggregation == Aggregation.PERCENTILE:
        pct = definition.percentile
        if pct is None or not 0 < pct <= 100:
            raise InvalidQuery("percentile must be a number above 0 and at most 100")
        return f"percentile({field}, {float(pct)!r})"
    if definition.aggregation == Aggregation.CHANGE:
        return f"last({field}) - first({field})"  # aggregate.py: the same for the backtest
    return f"{definition.aggregation}({field})"


def _tag_filter(tags: Mapping[str, str], prefix: str) -> tuple[list[str], dict[str, Any]]:
    clauses, params = [], {}
    for index, (key, value) in enumerate(sorted(tags.items())):
        name = f"{prefix}t{index}"
        clauses.append(f"{quote_ident(key)} = ${name}")
        params[name] = str(value)
    return clauses, params


def latest(definition: Definition, *, prefix: str = "") -> Query:
    """The aggregate over the last window: one value, or no series when there is no data."""
    clauses, params = _tag_filter(definition.tags, prefix)
    return _latest(definition, clauses, params, prefix)


def latest_grouped(
    definition: Definition, tag_values: list[tuple[str, ...]], *, prefix: str = ""
) -> Query:
    """``latest`` for several series at once: one statement that filters on each tuple of tag
    values (in the order of ``sorted(definition.tags)``, whose values are ignored) and groups by
    those tag keys, so each tuple's aggregate comes back as its own series with its tags. Each
    series aggregates exactly what ``latest`` would for that tuple. With one tag key the
    values are one regular expression and a statement may cover a whole batch; with several,
    InfluxDB's cost grows faster than linearly with the number of OR terms: keep
    ``tag_values`` short (~10) then."""
    series, group_by, params = _series_filter(definition, tag_values, prefix)
    return _latest(definition, [series], params, prefix, group_by=group_by)


def newest_points_grouped(
    definition: Definition, tag_values: list[tuple[str, ...]], *, limit: int, prefix: str = ""
) -> Query:
    """What ``latest_grouped`` asks for ``last`` of series told apart by one tag key, as the
    window's raw points instead: every matched series in one answer (oldest first), the tag's
    value in a column named ``tag``, at most ``limit`` points. The newest point of each value
    is its ``last``; an answer of ``limit`` points may lack the newest. Same parameters as
    ``latest_grouped`` (so either may stand in for the other in a statement of a batch)."""
    keys = sorted(definition.tags)
    if definition.aggregation != Aggregation.LAST or len(keys) != 1:
        raise InvalidQuery("newest points are asked for last() of series told apart by one tag")
    series, _, params = _series_filter(definition, tag_values, prefix)
    params[f"{prefix}window"] = {"duration": influx_duration(definition.window)}
    text = (
        f'SELECT {quote_ident(definition.field)} AS "value", {quote_ident(keys[0])}::tag AS "tag"'
        f" FROM {quote_ident(definition.measurement)}"
        f" WHERE {series} AND time > now() - ${prefix}window LIMIT {max(1, int(limit))}"
    )
    return Query(text, params)


def _latest(
    definition: Definition,
    clauses: list[str],
    params: dict[str, Any],
    prefix: str,
    *,
    group_by: str = "",
) -> Query:
    clauses = [*clauses, f"time > now() - ${prefix}window"]
    params[f"{prefix}window"] = {"duration": influx_duration(definition.window)}
    # Identifiers are quoted by quote_ident and values bound in params: no injection here.
    text = (
        f'SELECT {_selector(definition)} AS "value" FROM {quote_ident(definition.measurement)}'
        f" WHERE {' AND '.join(clauses)}"
    )
    return Query(text + (f" GROUP BY {group_by}" if group_by else ""), params)


def latest_by(
    definition: Definition,
    group_by: list[str],
    chosen: Mapping[str, list[str]],
    *,
    prefix: str = "",
) -> Query:
    """A fleet monitor's one statement per tick: ``latest`` for every series of the
    measurement (narrowed by the fixed tags and by ``chosen``, exact values per tag key),
    grouped by ``group_by``: each series' aggregate comes back with its tags."""
    clauses, params = _tag_filter(definition.tags, prefix)
    choice, choice_params = _choice_filter(chosen, prefix)
    params.update(choice_params)
    return _latest(definition, clauses + choice, params, prefix, group_by=_group_by(group_by))


def raw_points_by(
    definition: Definition,
    group_by: list[str],
    chosen: Mapping[str, list[str]],
    *,
    start: datetime,
    end: datetime,
    prefix: str = "",
) -> Query:
    """Every point of a fleet monitor's series in (start, end], one series per group."""
    clauses, params = _tag_filter(definition.tags, prefix)
    choice, choice_params = _choice_filter(chosen, prefix)
    params.update(choice_params)
    return _raw_points(
        definition, clauses + choice, params, start, end, prefix, group_by=_group_by(group_by)
    )


def _group_by(keys: list[str]) -> str:
    if not keys:
        raise InvalidQuery("a fleet query needs at least one tag key to group by")
    return ", ".join(quote_ident(key) for key in keys)


def _choice_filter(
    chosen: Mapping[str, list[str]], prefix: str
) -> tuple[list[str], dict[str, Any]]:
    """One clause per tag key: ``("k" = $a OR "k" = $b)``, every value bound."""
    clauses, params = [], {}
    for index, (key, values) in enumerate(sorted(chosen.items())):
        terms = []
        for position, value in enumerate(values):
            name = f"{prefix}c{index}_{position}"
            terms.append(f"{quote_ident(key)} = ${name}")
            params[name] = str(value)
        clauses.append(f"({' OR '.join(terms)})")
    return clauses, params


def _series_filter(
    definition: Definition, tag_values: list[tuple[str, ...]], prefix: str
) -> tuple[str, str, dict[str, Any]]:
    """The WHERE clause that picks several series, the GROUP BY that keeps them apart, and the
    params. Series told apart by one tag key: that key matched against one bound regular
    expression of their values (``match_any``); by several: one OR term per tuple of tag
    values (in the order of ``sorted(definition.tags)``)."""
    keys = sorted(definition.tags)
    if not keys or not tag_values:
        raise InvalidQuery("a grouped query needs tag keys and at least one series")
    params: dict[str, Any] = {}
    if len(keys) == 1:
        name = f"{prefix}g"
        params[name] = {"regex": match_any(values[0] for values in tag_values)}
        return f"{quote_ident(keys[0])} =~ ${name}", quote_ident(keys[0]), params
    alternatives = []
    for row, values in enumerate(tag_values):
        terms = []
        for column, (key, value) in enumerate(zip(keys, values, strict=True)):
            name = f"{prefix}g{row}_{column}"
            terms.append(f"{quote_ident(key)} = ${name}")
            params[name] = str(value)
        alternatives.append(f"({' AND '.join(terms)})")
    group_by = ", ".join(quote_ident(key) for key in keys)
    return f"({' OR '.join(alternatives)})", group_by, params


def match_any(values: Iterable[str]) -> str:
    """A regular expression (RE2, InfluxDB's) matching exactly the given strings, each
    character that is not a letter, a digit or ``_`` escaped: one bound parameter, where an OR
    term per value made InfluxDB's cost grow faster than linearly with the number of series."""
    return "^(?:" + "|".join(_escape(str(value)) for value in values) + ")$"


def _escape(value: str) -> str:
    return "".join("\\" + c if c.isascii() and not (c.isalnum() or c == "_") else c for c in value)


def raw_points(
    definition: Definition, *, start: datetime, end: datetime, prefix: str = ""
) -> Query:
    """Every point of the series in (start, end]: the backtest aggregates them itself, and
    notifications show them. ``prefix`` keeps parameters apart in a multi-statement query."""
    clauses, params = _tag_filter(definition.tags, prefix)
    return _raw_points(definition, clauses, params, start, end, prefix)


def raw_points_grouped(
    definition: Definition,
    tag_values: list[tuple[str, ...]],
    *,
    start: datetime,
    end: datetime,
    prefix: str = "",
) -> Query:
    """``raw_points`` for several series of one measurement and field at once (tag values as in
    ``latest_grouped``): each tuple's points come back as their own series, with its tags."""
    series, group_by, params = _series_filter(definition, tag_values, prefix)
    return _raw_points(definition, [series], params, start, end, prefix, group_by=group_by)


def _raw_points(
    definition: Definition,
    clauses: list[str],
    params: dict[str, Any],
    start: datetime,
    end: datetime,
    prefix: str,
    *,
    group_by: str = "",
) -> Query:
    params[f"{prefix}start"] = start.isoformat().replace("+00:00", "Z")
    params[f"{prefix}end"] = end.isoformat().replace("+00:00", "Z")
    clauses = [*clauses, f"time > ${prefix}start", f"time <= ${prefix}end"]
    text = (
        f'SELECT {quote_ident(definition.field)} AS "value" FROM'
        f" {quote_ident(definition.measurement)} WHERE {' AND '.join(clauses)}"
    )
    return Query(text + (f" GROUP BY {group_by}" if group_by else ""), params)


# ---------------------------------------------------------------- raw queries

_LITERALS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|/(?:[^/\\\n]|\\.)+/")
_FORBIDDEN = re.compile(
    r"\b(INTO|DROP|DELETE|CREATE|ALTER|GRANT|REVOKE|KILL|SHOW)\b", re.IGNORECASE
)


def validate_raw(query: str) -> str:
    """Returns the query stripped if it is one read-only SELECT; raises InvalidQuery otherwise."""
    text = query.strip().rstrip(";").strip()
    if not text:
        raise InvalidQuery("the query is empty")
    if len(text) > 4000:
        raise InvalidQuery("the query is longer than 4000 characters")
    skeleton = _LITERALS.sub("''", text)
    if ";" in skeleton:
        raise InvalidQuery("only one statement is allowed (found ';')")
    if not re.match(r"SELECT\b", skeleton, re.IGNORECASE):
        raise InvalidQuery("only SELECT queries are allowed")
    forbidden = _FORBIDDEN.search(skeleton)
    if forbidden:
        raise InvalidQuery(f"{forbidden.group(1).upper()} is not allowed in a monitor query")
    if "$" in skeleton:
        raise InvalidQuery("bind parameters ($name) are not supported in raw queries")
    return text


def raw(query: str) -> Query:
    return Query(validate_raw(query), {})


# ---------------------------------------------------------------- Flux (InfluxDB 2.x)

_FLUX_AGGREGATES: dict[str, str] = {
    Aggregation.MEAN: "mean()",
    Aggregation.MIN: "min()",
    Aggregation.MAX: "max()",
    Aggregation.LAST: "last()",
    Aggregation.COUNT: "count()",
    Aggregation.SUM: "sum()",
    # exact_mean and exact_selector match InfluxQL's median and nearest-rank percentile.
    Aggregation.MEDIAN: 'median(method: "exact_mean")',
    Aggregation.PERCENTILE: 'quantile(q: p_quantile, method: "exact_selector")',
}


def flux_string(text: str) -> str:
    """A Flux string literal: backslashes, quotes and interpolation (``${``) escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


# ``change``: the last value minus the first in the window (0 for one point), as InfluxQL's
# ``last(f) - first(f)`` and aggregate.py's: the rows in time order, folded once.
_FLUX_CHANGE = (
    'sort(columns: ["_time"])\n'
    "  |> reduce(\n"
    "    identity: {first: 0.0, last: 0.0, n: 0},\n"
    "    fn: (r, accumulator) => ({\n"
    "      first: if accumulator.n == 0 then float(v: r._value) else accumulator.first,\n"
    "      last: float(v: r._value),\n"
    "      n: accumulator.n + 1,\n"
    "    }),\n"
    "  )\n"
    "  |> map(fn: (r) => ({r with _value: r.last - r.first}))"
)


def flux_latest(definition: Definition, *, bucket: str) -> Query:
    """The Flux equivalent of ``latest``. Values are bound as Flux options (``p_*``) by the
    client library; tag keys, which Flux cannot bind, are escaped string literals."""
    lines, params = _flux_select(definition, bucket)
    if definition.aggregation == Aggregation.CHANGE:
        lines.append("  |> group()")  # every matching point, as InfluxQL without GROUP BY
    lines.append(f"  |> {_flux_aggregate(definition, params)}")
    return Query("\n".join(lines), params)


def flux_latest_by(
    definition: Definition, group_by: list[str], chosen: Mapping[str, list[str]], *, bucket: str
) -> Query:
    """``latest_by`` (a fleet monitor's one query per tick) in Flux: the points of the window
    grouped by the ``group_by`` tags (narrowed by the fixed tags and ``chosen`` exact values),
    in time order, then the aggregation per group: one row per series, with its tags."""
    lines, params = _flux_select(definition, bucket)
    lines += _flux_choice(chosen, params)
    keys = _flux_keys(group_by)
    lines.append(f"  |> group(columns: [{keys}])")
    if definition.aggregation != Aggregation.CHANGE:  # change sorts first itself
        lines.append('  |> sort(columns: ["_time"])')
    lines.append(f"  |> {_flux_aggregate(definition, params)}")
    lines.append(f'  |> keep(columns: [{keys}, "_value"])')
    return Query("\n".join(lines), params)


def flux_points_by(
    definition: Definition,
    group_by: list[str],
    chosen: Mapping[str, list[str]],
    *,
    bucket: str,
    start: datetime,
    end: datetime,
) -> Query:
    """``raw_points_by`` in Flux: every point of each series in [start, end), in time order."""
    lines, params = _flux_select(definition, bucket, start=start, end=end)
    lines += _flux_choice(chosen, params)
    keys = _flux_keys(group_by)
    lines.append(f"  |> group(columns: [{keys}])")
    lines.append('  |> sort(columns: ["_time"])')
    lines.append(f'  |> keep(columns: [{keys}, "_time", "_value"])')
    return Query("\n".join(lines), params)


FLUX_SERIES_SINCE = timedelta(days=1)  # the series "matching now" on a Flux source report in it


def flux_series_of(
    measurement: str,
    group_by: list[str],
    chosen: Mapping[str, list[str]],
    tags: Mapping[str, str],
    *,
    bucket: str,
    limit: int,
) -> Query:
    """The editor's "which series match now" in Flux (InfluxQL asks ``SHOW SERIES``; Flux has
    no series index to ask): one row per distinct combination of the ``group_by`` tags among
    the measurement's points of the last FLUX_SERIES_SINCE, narrowed by the fixed ``tags`` and
    the ``chosen`` exact values (bound as options), at most ``limit`` rows. Only the tag
    columns are kept before grouping, so fields of different types never meet in one table."""
    params: dict[str, Any] = {
        "p_bucket": bucket,
        "p_start": -FLUX_SERIES_SINCE,
        "p_measurement": measurement,
    }
    lines = [
        "from(bucket: p_bucket)",
        "  |> range(start: p_start)",
        "  |> filter(fn: (r) => r._measurement == p_measurement)",
    ]
    for index, (key, value) in enumerate(sorted(tags.items())):
        params[f"p_t{index}"] = str(value)
        lines.append(f"  |> filter(fn: (r) => r[{flux_string(key)}] == p_t{index})")
    lines += _flux_choice(chosen, params)
    keys = _flux_keys(group_by)
    lines.append(f"  |> keep(columns: [{keys}])")
    lines.append(f"  |> group(columns: [{keys}])")
    lines.append("  |> limit(n: 1)")
    lines.append("  |> group()")
    lines.append(f"  |> limit(n: {int(limit)})")
    return Query("\n".join(lines), params)


def _flux_select(
    definition: Definition,
    bucket: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """The points of the definition's field and fixed tags: over the last window, or in
    [start, end)."""
    if definition.aggregation not in _FLUX_AGGREGATES and definition.aggregation != (
        Aggregation.CHANGE
    ):
        raise InvalidQuery(f"unknown aggregation {definition.aggregation!r}")
    params: dict[str, Any] = {
        "p_bucket": bucket,
        "p_start": -definition.window if start is None else start,
        "p_measurement": definition.measurement,
        "p_field": definition.field,
    }
    span = "start: p_start"
    if end is not None:
        params["p_stop"] = end
        span += ", stop: p_stop"
    lines = [
        "from(bucket: p_bucket)",
        f"  |> range({span})",
        "  |> filter(fn: (r) => r._measurement == p_measurement and r._field == p_field)",
    ]
    for index, (key, value) in enumerate(sorted(definition.tags.items())):
        params[f"p_t{index}"] = str(value)
        lines.append(f"  |> filter(fn: (r) => r[{flux_string(key)}] == p_t{index})")
    return lines, params


def _flux_choice(chosen: Mapping[str, list[str]], params: dict[str, Any]) -> list[str]:
    """One filter per chosen tag key: any of its exact values (bound as options)."""
    lines = []
    for index, (key, values) in enumerate(sorted(chosen.items())):
        if not values:
            continue
        terms = []
        for number, value in enumerate(values):
            params[f"p_c{index}_{number}"] = str(value)
            terms.append(f"r[{flux_string(key)}] == p_c{index}_{number}")
        lines.append(f"  |> filter(fn: (r) => {' or '.join(terms)})")
    return lines


def _flux_keys(group_by: list[str]) -> str:
    if not group_by:
        raise InvalidQuery("a fleet query needs at least one tag key to group by")
    return ", ".join(flux_string(key) for key in group_by)


def _flux_aggregate(definition: Definition, params: dict[str, Any]) -> str:
    if definition.aggregation == Aggregation.CHANGE:
        return _FLUX_CHANGE
    if definition.aggregation == Aggregation.PERCENTILE:
        pct = definition.percentile
        if pct is None or not 0 < pct <= 100:
            raise InvalidQuery("percentile must be a number above 0 and at most 100")
        params["p_quantile"] = float(pct) / 100
    return _FLUX_AGGREGATES[definition.aggregation]
