"""Raw SQL rows read as the ORM would: the select list for a model's fields, and the fields'
own conversions (e.g. JSON decoding) applied to the values. For the few hot reads that skip
the ORM's query building (the delivery claim, the GET /monitors page)."""

from __future__ import annotations

import functools
import hashlib
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Field

Fields = tuple[Field[Any, Any], ...]


def select_list(alias: str, fields: Fields) -> str:
    """``alias."column", ...`` for ``fields``, in their order."""
    return ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in fields)


@functools.cache
def _converters(fields: Fields) -> tuple[tuple[int, Callable[..., Any]], ...]:
    return tuple((i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value"))


def loaded(fields: Fields, values: Sequence[Any]) -> list[Any]:
    """``values`` (one per field, as the database sent them) as the model's attributes hold
    them."""
    result = list(values)
    for i, convert in _converters(fields):
        result[i] = convert(result[i], None, connection)
    return result


# JSON values built by Postgres exactly as DRF renders the same Python values, for a page whose
# JSON text Postgres writes whole (GET /monitors). A kind names a DRF field's output format and
# the model columns it may read (by their internal type: a CharField over an integer column
# would render "5", not 5, so it has no SQL twin):
#   "text", "integer", "float", "boolean", "json", "pk": Postgres's own JSON for the value;
#   "datetime" DateTimeField in UTC: "2026-01-02T03:04:05Z", ".123456" only when not zero;
#   "duration" DurationField (django.utils.duration.duration_string): "00:05:00",
#              "1 02:00:03", "-1 23:59:59.500000";
#   "time"     TimeField (datetime.time.isoformat): "06:00:00", ".123456" only when not zero.
# No % operator: these fragments go into statements with %(name)s parameters.
_INTEGERS = {
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
    "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
}  # fmt: skip
JSON_KINDS: dict[str, frozenset[str]] = {
    "text": frozenset({"CharField", "TextField", "SlugField", "EmailField"}),
    "integer": frozenset(_INTEGERS),
    "float": frozenset({"FloatField"}),
    "boolean": frozenset({"BooleanField"}),
    "json": frozenset({"JSONField"}),
    "pk": frozenset({"ForeignKey", "OneToOneField", *_INTEGERS}),
    "datetime": frozenset({"DateTimeField"}),
    "duration": frozenset({"DurationField"}),
    "time": frozenset({"TimeField"}),
}


@dataclass(frozen=True)
class JsonColumn:
    """One key of a serializer's output as Postgres can write it: the key, the attribute it
    reads (``source``) and how DRF renders it: a ``JSON_KINDS`` kind, ``pk_list`` (a
    many-related field's ids) or ``computed`` (a read-only attribute the reading selector must
    know how to compute). See serializers.json_columns."""

    key: str
    source: str
    kind: str


_DATETIME = (
    "replace(to_char(({x}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " '.000000Z', 'Z')"
)
# Python's timedelta keeps whole days apart (floored: a negative duration reads "-1 23:59:59")
# and the rest of the day as hours, minutes, seconds and microseconds. Plain expressions, no
# subquery: a subquery per value made the page statement half as slow again.
_DURATION = (
    "CASE WHEN floor(extract(epoch FROM ({x})) / 86400) <> 0"
    " THEN floor(extract(epoch FROM ({x})) / 86400)::bigint || ' ' ELSE '' END"
    " || replace(to_char(make_interval(secs => extract(epoch FROM ({x}))"
    " - floor(extract(epoch FROM ({x})) / 86400) * 86400), 'HH24:MI:SS.US'), '.000000', '')"
)

_TIME = "replace(to_char(({x}), 'HH24:MI:SS.US'), '.000000', '')"


class NoSqlColumn(TypeError):
    """A value Postgres cannot write the way DRF renders it."""


def json_value(expression: str, kind: str) -> str:
    """SQL for ``expression``'s value in JSON as DRF renders a field of ``kind`` (see
    JSON_KINDS); NULL stays null."""
    if kind == "datetime":
        return _DATETIME.format(x=expression)
    if kind == "duration":
        return _DURATION.format(x=expression)
    if kind == "time":
        return _TIME.format(x=expression)
    if kind in JSON_KINDS:
        return expression
    raise NoSqlColumn(f"no SQL for JSON values of kind {kind!r} (known: {', '.join(JSON_KINDS)})")


def column_json(alias: str, field: Field[Any, Any], kind: str) -> str:
    """SQL for the JSON value of ``field``'s column (in the row ``alias``) as DRF renders a
    field of ``kind``; raises :class:`NoSqlColumn` if DRF would render that column otherwise."""
    if field.get_internal_type() not in JSON_KINDS.get(kind, ()):
        raise NoSqlColumn(f"no SQL for a {kind} field over a {field.get_internal_type()}")
    return json_value(f"{alias}.{connection.ops.quote_name(field.column)}", kind)


def json_key(name: str) -> str:
    """``name`` as an SQL string literal, for json_build_object."""
    return "'" + name.replace("'", "''") + "'"


# The statements prepared on each open database connection (a new connection has none).
_PREPARED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_PARAMETER = re.compile(r"%\((\w+)\)s")


def execute_prepared(cursor: CursorWrapper, sql: str, params: Mapping[str, Any]) -> None:
    """Runs ``sql`` (with ``%(name)s`` parameters) as a statement the connection prepared:
    Postgres parses and plans it once per connection, not on every call (PREPARE, then
    EXECUTE). For a hot read whose planning costs a third of its run. Prepared statements
    outlive transactions, so one is never prepared twice on the same connection. Behind a
    transaction pooler (DATABASE_TRANSACTION_POOLING) the next transaction may run on another
    server connection, which never saw the PREPARE: the statement is then sent as it is."""
    if settings.DATABASE_TRANSACTION_POOLING:
        cursor.execute(sql, params)
        return
    names = list(dict.fromkeys(_PARAMETER.findall(sql)))
    statement = "growalert_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:20]
    raw = cursor.db.connection
    prepared = _PREPARED.setdefault(raw, set())
    if statement not in prepared:
        body = _PARAMETER.sub(lambda m: f"${names.index(m.group(1)) + 1}", sql)
        raw.execute(f"PREPARE {statement} AS {body}")  # not counted as one of the request's
        prepared.add(statement)
    arguments = ", ".join(f"%({name})s" for name in names)
    cursor.execute(f"EXECUTE {statement}({arguments})", params)
