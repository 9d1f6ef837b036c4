"""What InfluxDB says about a monitor's series: the latest aggregate, or its raw history.

Turning these observations into statuses is evaluation's job; this module only asks.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts_core import Aggregation
from monitors.definition import Definition
from monitors.influxdb import client as influx
from monitors.influxdb import connect, queries
from monitors.models import Monitor, Source


@dataclass(frozen=True, slots=True)
class Observation:
    #: what was asked; None when a grouped statement answered for several series (then the
    #: monitor's own query, ``query_for(monitor)``, is the equivalent one to show)
    query: queries.Query | None
    value: float | None = None
    error: influx.InfluxError | None = None
    #: when the value's point was written (epoch ms), when the answer said so
    at_ms: int | None = None

    @property
    def no_data(self) -> bool:
        return self.error is None and self.value is None


def query_for(monitor: Monitor, *, prefix: str = "") -> queries.Query:
    if monitor.source.flavor == Source.Flavor.FLUX:
        return queries.flux_latest(monitor.definition(), bucket=monitor.source.database)
    if monitor.raw_query:
        return queries.raw(monitor.raw_query)
    return queries.latest(monitor.definition(), prefix=prefix)


def value_from(result: influx.StatementResult) -> float | None:
    """The monitor's value from one statement's result: the last row's first numeric column."""
    if result.error:
        raise influx.InfluxQueryError(result.error)
    return _last_number(result.series)


def _last_number(all_series: tuple[influx.Series, ...]) -> float | None:
    return _last_point(all_series)[1]


def _last_point(all_series: tuple[influx.Series, ...]) -> tuple[int | None, float | None]:
    """The last row's first numeric column, and that row's time (epoch ms) if it has one."""
    for series in reversed(all_series):
        for row in reversed(series.values):
            for column, cell in zip(series.columns, row, strict=True):
                if column != "time" and _is_number(cell):
                    return _time_of(series.columns, row), float(cell)
    return None, None


def _time_of(columns: Sequence[str], row: Sequence[Any]) -> int | None:
    if columns and columns[0] == "time" and isinstance(row[0], int):
        return row[0]
    return None


def _is_number(cell: Any) -> bool:
    return isinstance(cell, int | float) and not isinstance(cell, bool) and math.isfinite(cell)


def observe(monitor: Monitor) -> Observation:
    query = query_for(monitor)
    try:
        if monitor.source.flavor == Source.Flavor.FLUX:
            with connect.flux_client_for(monitor.source) as flux:
                return Observation(query, value=flux.query_value(query.text, params=query.params))
        with connect.client_for(monitor.source) as client:
            results = client.query(
                query.text, database=monitor.source.database, params=query.params
            )
        return Observation(query, value=value_from(results[0]) if results else None)
    except influx.InfluxError as exc:
        return Observation(query, error=exc)


def shown_query(monitor: Monitor, observation: Observation) -> str:
    """The query behind an observation as a person reads it (notifications, /test)."""
    return (observation.query or query_for(monitor)).display()


def history(monitor: Monitor, *, start: datetime, end: datetime) -> tuple[list[int], list[float]]:
    """Every raw point of a structured monitor's series in (start, end], in time order."""
    query = queries.raw_points(monitor.definition(), start=start, end=end)
    with connect.client_for(monitor.source) as client:
        results = client.query(query.text, database=monitor.source.database, params=query.params)
    points = _numbers(results[0].series if results else ())
    return [t for t, _ in points], [v for _, v in points]


# Series per grouped statement. InfluxDB 1.6 here, 1,000 series of one measurement: 1,000
# single statements cost influxd 79-108 ms of CPU, 100 grouped statements of 10 series 42 ms,
# one statement of 1,000 ORs 272-300 ms (the OR filter grows faster than linearly). So series
# told apart by several tag keys go GROUP_SIZE to a statement, OR terms of their values.
GROUP_SIZE = 10
# Series told apart by one tag key (the usual: one monitor per device) are matched with one
# regular expression of their values (``queries.match_any``), whose cost grows with the series
# asked, not faster: the batch's series of one definition go in one statement, up to this many.
# Measured (bench/bench_grouped_query.py, 1 s data, last(); shared machine at load 7-9), influxd
# CPU per 1,000 series: 1,000 series in one batch, ORs of 10 62 ms, one regex 30 ms, one
# unfiltered GROUP BY 28 ms; 10,000 series in batches of 1,000, 49, 32 and 35 ms.
MATCH_SIZE = 5000
# ``last`` of series told apart by one tag key is asked as the window's raw points of them all,
# in one series with the tag's value as a column, and the newest point of each value kept here
# (``queries.newest_points_grouped``). 10,000 series of 1 s data, last over 2 s, in statements of
# 1,000: influxd spent 12.3-14.5 ms of CPU per 1,000 series answering so, 18.8-21.6 ms for
# last() GROUP BY, and the answer is half the bytes (/tmp scripts, 2026-12-04 00:37, 00:56).
# Each point costs ~1.7 us more: 5 points a series cost 17.4 ms against 19.9, 10 points 29.1
# against 20.8. So a statement asks for at most NEWEST_POINTS points a series; an answer that
# reaches that limit may lack the newest points (they come oldest first), so its statement is
# asked again at once as last() GROUP BY, and keeps that form in the kept plan.
NEWEST_POINTS = 5


@dataclass(frozen=True, slots=True)
class _Statement:
    """What one statement of a batch answers: one monitor's query, or the latest aggregate of
    several series of one definition (``keys`` the tag keys, ``rows`` their values); when
    ``newest``, their raw points instead, at most NEWEST_POINTS a series."""

    query: queries.Query
    monitors: tuple[Monitor, ...]
    keys: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    newest: bool = False


def _newest_limit(rows: tuple[tuple[str, ...], ...]) -> int:
    """The most points a newest points' statement of ``rows`` asks for."""
    return NEWEST_POINTS * len(rows)


def _tag_row(monitor: Monitor, keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(monitor.tags[key]) for key in keys)


def _series_row(series: influx.Series, keys: tuple[str, ...]) -> tuple[str, ...]:
    """A grouped answer's series as a row of its tag values (in the order of ``keys``)."""
    if len(keys) == 1:
        return (str(series.tags.get(keys[0], "")),)
    return tuple(str(series.tags.get(key, "")) for key in keys)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a batch asks of each series: ``single`` one monitor's statement, ``grouped`` one
    statement for several series of one definition (GROUP BY their tag keys), and ``key``
    what two monitors must share (besides their tag keys) to be asked in one statement."""

    single: Callable[[Monitor, str], queries.Query]
    grouped: Callable[[Definition, list[tuple[str, ...]], str], queries.Query]
    key: Callable[[Monitor], tuple[Any, ...]]
    #: asks ``last`` of series told apart by one tag key as their newest points (NEWEST_POINTS)
    newest: bool = False


_LATEST = _Shape(
    single=lambda monitor, prefix: query_for(monitor, prefix=prefix),
    grouped=lambda definition, rows, prefix: queries.latest_grouped(
        definition, rows, prefix=prefix
    ),
    key=lambda m: (m.measurement, m.field, m.aggregation, m.percentile, m.window),
    newest=True,
)


def _placed(monitor: Monitor, shape: _Shape) -> tuple[Any, ...]:
    """The group a monitor with tags shares statements with in a plan: its definition but the
    tag values, and its tag keys."""
    return (*shape.key(monitor), _keys_and_row(monitor)[0])


def _row(monitor: Monitor) -> tuple[str, ...]:
    """A monitor's row of tag values (in the order of its sorted tag keys)."""
    return _keys_and_row(monitor)[1]


def _keys_and_row(monitor: Monitor) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sorted tag keys and the row of values, worked out once per ``tags`` a monitor
    instance holds: an evaluation worker keeps its monitors from tick to tick
    (``evaluate.resident``; a changed row is a new instance), and they were a fifth of a steady
    tick's planning and matching."""
    tags = monitor.tags
    memo = vars(monitor).get("_observe_placed")
    if memo is None or memo[0] is not tags:
        keys = tuple(sorted(tags))
        memo = vars(monitor)["_observe_placed"] = (tags, keys, _tag_row(monitor, keys))
    return memo[1], memo[2]


def _plan(
    monitors: list[Monitor], params: dict[str, Any], shape: _Shape = _LATEST
) -> list[_Statement]:
    """Statements for a batch. Structured monitors that differ only in their tag values share
    grouped statements (GROUP BY their tag keys; one per MATCH_SIZE series told apart by one
    tag key, one per GROUP_SIZE series told apart by several); raw queries,
    monitors without tags and definitions used by one series get one statement each."""
    statements: list[_Statement] = []

    def single(monitor: Monitor) -> None:
        query = shape.single(monitor, f"s{len(statements)}_")
        params.update(query.params)
        statements.append(_Statement(query, (monitor,)))

    groups: dict[tuple[Any, ...], list[Monitor]] = defaultdict(list)
    for monitor in monitors:
        if monitor.raw_query or not monitor.tags:
            single(monitor)
        else:
            groups[_placed(monitor, shape)].append(monitor)
    for members in groups.values():
        keys = tuple(sorted(members[0].tags))
        by_row: dict[tuple[str, ...], list[Monitor]] = defaultdict(list)
        for monitor in members:
            by_row[_row(monitor)].append(monitor)
        if len(by_row) < 2:
            for monitor in members:
                single(monitor)
            continue
        rows = list(by_row)
        definition = members[0].definition()
        size = MATCH_SIZE if len(keys) == 1 else GROUP_SIZE
        newest = shape.newest and len(keys) == 1 and definition.aggregation == Aggregation.LAST
        for start in range(0, len(rows), size):
            chunk = tuple(rows[start : start + size])
            prefix = f"s{len(statements)}_"
            if newest:
                query = queries.newest_points_grouped(
                    definition, list(chunk), limit=_newest_limit(chunk), prefix=prefix
                )
            else:
                query = shape.grouped(definition, list(chunk), prefix)
            params.update(query.params)
            covered = tuple(m for row in chunk for m in by_row[row])
            statements.append(_Statement(query, covered, keys, chunk, newest))
    return statements


# The plans of the latest batches, by the identity of their monitors. An evaluation worker gets
# the same batches of the same kept instances tick after tick (``evaluate.resident``: a changed
# row is a new instance, so an edit is a new key), and planning a batch of 1,000 again (grouping
# it, escaping 1,000 tag values into a regular expression) was ~6 us of a monitor's ~50 us per
# steady tick (``bench/profile_polling.py``, cProfile). An entry holds its monitors, so their
# ids cannot be reused while it is kept; at most PLANNED_MONITORS monitors are held (the
# resident set's size), the least recently used batches dropped first.
PLANNED_MONITORS = 50_000
_Planned = tuple[tuple[Monitor, ...], list[_Statement], dict[str, Any]]
_plans: OrderedDict[tuple[int, ...], _Planned] = OrderedDict()
_planned_count = 0
_plans_lock = threading.Lock()


def _latest_plan(monitors: list[Monitor]) -> tuple[list[_Statement], dict[str, Any]]:
    """``_plan(monitors)`` of the latest shape, made once per batch of the same instances in
    any order (the parameters returned are shared: never change them)."""
    global _planned_count
    key = tuple(sorted(map(id, monitors)))  # the rows come in no set order
    with _plans_lock:
        kept = _plans.get(key)
        if kept is not None:
            _plans.move_to_end(key)
            return kept[1], kept[2]
    params: dict[str, Any] = {}
    statements = _plan(monitors, params)
    with _plans_lock:
        if key not in _plans:
            _plans[key] = (tuple(monitors), statements, params)
            _planned_count += len(monitors)
        while _planned_count > PLANNED_MONITORS and len(_plans) > 1:
            _, (dropped, _, _) = _plans.popitem(last=False)
            _planned_count -= len(dropped)
    return statements, params


def forget_plans() -> None:
    """Drops every kept plan (with ``resident.forget``)."""
    global _planned_count
    with _plans_lock:
        _plans.clear()
        _planned_count = 0


def _ask(
    source: Source, texts: list[str], params: dict[str, Any]
) -> dict[int, influx.StatementResult]:
    """Statements of one source in one InfluxQL request (``;``-separated), their results by
    statement id. Raises InfluxError when the request fails as a whole."""
    with connect.client_for(source) as client:
        results = client.query(
            ";\n".join(texts), database=source.database, params=params, method="POST"
        )
    return {r.statement_id: r for r in results}


def observe_batch(monitors: list[Monitor]) -> dict[int, Observation]:
    """Observes monitors that share one source with a single InfluxDB request.

    InfluxQL sources get one multi-statement query (``;``-separated, parameters prefixed per
    statement, see ``_plan``); results are matched back by statement id and, for grouped
    statements, by the series' tags. A request that fails as a whole gives every monitor that
    error; a statement that fails gives only its monitors the error. Flux has no
    multi-statement form, so Flux sources are asked one monitor at a time.
    """
    if not monitors:
        return {}
    source = monitors[0].source
    if source.flavor == Source.Flavor.FLUX:
        return {m.id: observe(m) for m in monitors}
    statements, params = _latest_plan(monitors)
    try:
        try:
            by_statement = _ask(source, [s.query.text for s in statements], params)
        except influx.InfluxQueryError as exc:
            asked_newest = [index for index, s in enumerate(statements) if s.newest]
            if not asked_newest or isinstance(exc, influx.InfluxDatabaseMissing):
                raise
            # a server that cannot parse the newest points' form (it fails the whole request):
            # the batch is asked as last() GROUP BY, now and from now on
            _as_grouped(statements, asked_newest)
            by_statement = _ask(source, [s.query.text for s in statements], params)
    except influx.InfluxError as exc:
        return {m.id: Observation(None, error=exc) for m in monitors}
    observed: dict[int, Observation] = {}
    dense: list[int] = []
    for index, statement in enumerate(statements):
        result = by_statement.get(index)
        if statement.newest and result is not None:
            # too many points for the limit, or a server that cannot answer this form: the
            # statement is asked as last() GROUP BY, now and from now on
            newest = (
                None
                if result.error
                else _newest_points(result.series, _newest_limit(statement.rows))
            )
            if newest is None:
                dense.append(index)
            else:
                _observed_rows(statement, newest, observed)
            continue
        _observed(statement, result, observed)
    if dense:
        _ask_grouped(source, statements, dense, params, observed)
    return observed


def _observed(
    statement: _Statement,
    result: influx.StatementResult | None,
    observed: dict[int, Observation],
) -> None:
    """The observations of a statement's monitors from its result (not a newest points' one)."""
    if not statement.keys or result is None or result.error:
        query = statement.query if not statement.keys else None
        for monitor in statement.monitors:
            observed[monitor.id] = _observation_from(query, result)
        return
    points = {
        _series_row(series, statement.keys): _last_point((series,)) for series in result.series
    }
    _observed_rows(statement, points, observed)


def _observed_rows(
    statement: _Statement,
    points: dict[tuple[str, ...], tuple[int | None, float | None]],
    observed: dict[int, Observation],
) -> None:
    """A grouped statement's monitors' observations, from its points by row of tag values."""
    for monitor in statement.monitors:
        at_ms, value = points.get(_row(monitor), (None, None))
        observed[monitor.id] = Observation(None, value=value, at_ms=at_ms)


def _newest_points(
    all_series: Sequence[influx.Series], limit: int
) -> dict[tuple[str, ...], tuple[int | None, float | None]] | None:
    """A ``newest_points_grouped`` answer as ``last`` per tag value: the newest point of each
    (the answer comes oldest first), its value when a finite number (as ``_last_point``: a
    newest point of another type is no value, not the point before it). None when the answer
    reached ``limit`` points: the newest may be missing."""
    count = 0
    newest: dict[str, tuple[Any, Any]] = {}
    for series in all_series:
        columns = series.columns
        if "tag" not in columns or "value" not in columns:
            continue
        count += len(series.values)
        tag, value = columns.index("tag"), columns.index("value")
        timed = columns[0] == "time"
        for row in series.values:
            if row[tag] is not None:
                newest[row[tag]] = (row[0] if timed else None, row[value])
    if count >= limit:
        return None
    return {
        (str(tag),): (
            at if isinstance(at, int) and not isinstance(at, bool) else None,
            float(cell) if _is_number(cell) else None,
        )
        for tag, (at, cell) in newest.items()
    }


def _as_grouped(statements: list[_Statement], indexes: list[int]) -> list[_Statement]:
    """The newest points' statements at ``indexes`` as last() GROUP BY, in place (a kept
    plan keeps them so). Both forms bind the same parameters under the same names
    (``queries.newest_points_grouped``): the plan's parameters stay as they are."""
    grouped: list[_Statement] = []
    for index in indexes:
        statement = statements[index]
        query = _LATEST.grouped(
            statement.monitors[0].definition(), list(statement.rows), f"s{index}_"
        )
        statements[index] = _Statement(query, statement.monitors, statement.keys, statement.rows)
        grouped.append(statements[index])
    return grouped


def _ask_grouped(
    source: Source,
    statements: list[_Statement],
    dense: list[int],
    params: dict[str, Any],
    observed: dict[int, Observation],
) -> None:
    """Asks the statements at ``dense`` again as last() GROUP BY (their answers of newest
    points reached the limit, or failed) and keeps that form in the batch's kept plan."""
    again = _as_grouped(statements, dense)
    names = {name for statement in again for name in statement.query.params}
    try:
        by_statement = _ask(source, [s.query.text for s in again], {k: params[k] for k in names})
    except influx.InfluxError as exc:
        for statement in again:
            for monitor in statement.monitors:
                observed[monitor.id] = Observation(None, error=exc)
        return
    for index, statement in enumerate(again):
        _observed(statement, by_statement.get(index), observed)


def recent_points(
    monitors: list[Monitor], *, end: datetime, limit: int
) -> dict[int, list[tuple[int, float]]]:
    """The raw points of each monitor's window ending at ``end`` (at most ``limit`` newest),
    for monitors of one source, in one multi-statement request. Raises InfluxError."""
    if not monitors:
        return {}
    source = monitors[0].source
    built = [
        queries.raw_points(m.definition(), start=end - m.window, end=end, prefix=f"m{i}_")
        for i, m in enumerate(monitors)
    ]
    params: dict[str, Any] = {}
    for query in built:
        params.update(query.params)
    by_statement = _ask(source, [q.text for q in built], params)
    found: dict[int, list[tuple[int, float]]] = {}
    for i, monitor in enumerate(monitors):
        result = by_statement.get(i)
        found[monitor.id] = _numbers(result.series if result is not None else ())[-limit:]
    return found


def history_batch(
    monitors: list[Monitor], *, start: datetime, end: datetime
) -> dict[int, list[tuple[int, float]]]:
    """:func:`history` of structured monitors of one source, in one request: series of one
    measurement and field with the same tag keys share statements (GROUP BY those keys, as
    ``_plan`` groups them), the others get one statement each. Points are (epoch ms, value)
    in time order. Raises InfluxError when the request fails; a statement that fails gives its
    monitors no points."""
    if not monitors:
        return {}
    shape = _Shape(
        single=lambda monitor, prefix: queries.raw_points(
            monitor.definition(), start=start, end=end, prefix=prefix
        ),
        grouped=lambda definition, rows, prefix: queries.raw_points_grouped(
            definition, rows, start=start, end=end, prefix=prefix
        ),
        key=lambda m: (m.measurement, m.field),
    )
    params: dict[str, Any] = {}
    statements = _plan(monitors, params, shape)
    by_statement = _ask(monitors[0].source, [s.query.text for s in statements], params)
    found: dict[int, list[tuple[int, float]]] = {}
    for index, statement in enumerate(statements):
        result = by_statement.get(index)
        all_series = result.series if result is not None and not result.error else ()
        by_row = {
            tuple(str(series.tags.get(key, "")) for key in statement.keys): _numbers((series,))
            for series in all_series
        }
        for monitor in statement.monitors:
            row = _tag_row(monitor, statement.keys)
            found[monitor.id] = by_row.get(row, []) if statement.keys else _numbers(all_series)
    return found


def _numbers(all_series: Sequence[influx.Series]) -> list[tuple[int, float]]:
    """The (epoch ms, value) points of the series whose value is a finite number."""
    return [
        (int(p["time"]), float(p["value"]))
        for p in influx.points(all_series)
        if _is_number(p["value"])
    ]


def _observation_from(
    query: queries.Query | None, result: influx.StatementResult | None
) -> Observation:
    if result is None:
        return Observation(query)
    if result.error:
        return Observation(query, error=influx.InfluxQueryError(result.error))
    at_ms, value = _last_point(result.series)
    return Observation(query, value=value, at_ms=at_ms)
