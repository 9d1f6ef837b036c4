"""Fleet monitors as plain values (pure, no Django): which series a monitor selects and how a
series is named.

A monitor with ``group_by`` tag keys watches every series those keys tell apart (one per
device, greenhouse, ...), narrowed by an optional ``series_filter``: per grouped tag key, a
list of values, each exact (``greenhouse-3``) or a glob pattern (``greenhouse-*``, ``zone-?``).
A monitor without ``group_by`` watches one series, as before. Every bound a user can reach is
here, once; the model field validators and the pipeline read them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

MAX_GROUP_BY = 3  # tag keys a fleet monitor groups by
MAX_FILTER_VALUES = 50  # values or patterns per tag key
MAX_PATTERN_LENGTH = 100
MAX_KEY_LENGTH = 200  # a tag key or value, as for the fixed tags
MAX_STORM_THRESHOLD = 1000
WILDCARDS = frozenset("*?[")


class SeriesBoundError(ValueError):
    """A group-by or series filter outside its bounds: the message is what the user reads."""


def check_group_by(value: Any) -> list[str]:
    """``value`` as a list of distinct tag keys, or SeriesBoundError."""
    if not isinstance(value, list) or not all(isinstance(k, str) and k for k in value):
        raise SeriesBoundError('must be a list of tag keys, e.g. ["device"]')
    if len(value) > MAX_GROUP_BY:
        raise SeriesBoundError(f"at most {MAX_GROUP_BY} tag keys")
    if len(set(value)) != len(value):
        raise SeriesBoundError("each tag key at most once")
    for key in value:
        _check_text(key, "tag keys")
    return value


def check_series_filter(value: Any, group_by: Sequence[str]) -> dict[str, list[str]]:
    """``value`` as {grouped tag key: [value or pattern, ...]}, or SeriesBoundError."""
    example = '{"device": ["greenhouse-1", "greenhouse-*"]}'
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
        for k, v in value.items()
    ):
        raise SeriesBoundError(f"must be an object of tag keys to lists of values, e.g. {example}")
    for key, values in value.items():
        if key not in group_by:
            raise SeriesBoundError(f"{key!r} is not one of the group_by tag keys")
        if not values:
            raise SeriesBoundError(f"{key!r}: give at least one value or pattern")
        if len(values) > MAX_FILTER_VALUES:
            raise SeriesBoundError(f"{key!r}: at most {MAX_FILTER_VALUES} values or patterns")
        for item in values:
            _check_text(item, "values")
            if is_pattern(item) and len(item) > MAX_PATTERN_LENGTH:
                raise SeriesBoundError(f"patterns are at most {MAX_PATTERN_LENGTH} characters")
    return value


def _check_text(text: str, what: str) -> None:
    if not text:
        raise SeriesBoundError(f"{what} cannot be empty")
    if "\x00" in text:
        raise SeriesBoundError(f"{what} cannot contain NUL characters")
    if len(text) > MAX_KEY_LENGTH:
        raise SeriesBoundError(f"{what} are at most {MAX_KEY_LENGTH} characters")


def is_pattern(value: str) -> bool:
    return not WILDCARDS.isdisjoint(value)


def exact_values(series_filter: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The filter's keys whose values are all exact: InfluxDB can select those itself."""
    return {
        key: list(values)
        for key, values in series_filter.items()
        if not any(is_pattern(v) for v in values)
    }


def compile_filter(series_filter: Mapping[str, Sequence[str]]) -> dict[str, re.Pattern[str]]:
    """One anchored regular expression per filtered key (globs translated, exact values
    escaped), matched here rather than sent: a pattern never reaches InfluxDB."""
    return {
        key: re.compile(
            "|".join(
                fnmatch.translate(v) if is_pattern(v) else re.escape(v) + r"\Z" for v in values
            )
        )
        for key, values in series_filter.items()
    }


def selected(tags: Mapping[str, str], compiled: Mapping[str, re.Pattern[str]]) -> bool:
    return all(pattern.match(tags.get(key, "")) for key, pattern in compiled.items())


def series_key(tags: Mapping[str, str], group_by: Sequence[str]) -> str:
    """A series' stable name among its monitor's: ``device=greenhouse-3,zone=a`` (keys in
    ``group_by`` order; ``=``, ``,`` and ``\\`` in values escaped)."""
    return ",".join(f"{key}={_escape(tags.get(key, ''))}" for key in group_by)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def series_label(tags: Mapping[str, str], group_by: Sequence[str]) -> str:
    """How a person names the series: its tag values, ``greenhouse-3`` or ``greenhouse-3 / a``."""
    return " / ".join(tags.get(key, "") for key in group_by)
