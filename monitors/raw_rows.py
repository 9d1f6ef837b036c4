"""Raw SQL rows read as the ORM would: the select list for a model's fields, and the fields'
own conversions (e.g. JSON decoding) applied to the values. For the few hot reads that skip
the ORM's query building (the delivery claim, the GET /monitors page)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection
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
