"""The monitors an arrival evaluator decides, indexed so a reading finds its monitors at once.

A monitor is watched under its database, measurement and its first tag filter (in name order):
a reading looks up each of its own tags, so 10,000 monitors of one measurement that differ in a
``device`` tag cost one dictionary lookup per reading, not 10,000 comparisons. The index is
reloaded when the set of eligible monitors changes (a cheap signature query every few seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Mod

from devices.arrival.lines import Reading
from devices.ingest.queue import pushed_stream_key
from monitors.evaluate.arrival import AGGREGATIONS
from monitors.models import Monitor

REFRESH_S = 5.0


@dataclass(frozen=True, slots=True)
class Watch:
    monitor_id: int
    field: str
    tags: tuple[tuple[str, str], ...]
    window_ms: int
    aggregation: str
    updated_at: datetime

    def matches(self, reading: Reading) -> bool:
        return self.field in reading.fields and all(
            reading.tags.get(key) == value for key, value in self.tags
        )


@dataclass
class DatabaseWatches:
    measurements: set[str] = field(default_factory=set)
    by_tag: dict[tuple[str, str, str], list[Watch]] = field(default_factory=dict)
    untagged: dict[str, list[Watch]] = field(default_factory=dict)

    def add(self, measurement: str, watch: Watch) -> None:
        self.measurements.add(measurement)
        if watch.tags:
            key, value = watch.tags[0]
            self.by_tag.setdefault((measurement, key, value), []).append(watch)
        else:
            self.untagged.setdefault(measurement, []).append(watch)

    def matching(self, reading: Reading) -> list[Watch]:
        return [
            w
            for w in self.for_series(reading.measurement, reading.tags)
            if w.field in reading.fields
        ]

    def for_series(self, measurement: str, tags: dict[str, str]) -> list[Watch]:
        """The watches of a series (its measurement and tags), whatever fields a line carries."""
        found = [
            w
            for w in self.untagged.get(measurement, ())
            if all(tags.get(key) == value for key, value in w.tags)
        ]
        for key, value in tags.items():
            for watch in self.by_tag.get((measurement, key, value), ()):
                if all(tags.get(k) == v for k, v in watch.tags):
                    found.append(watch)
        return found


def eligible(shard: int) -> QuerySet[Monitor]:
    """What ``monitors.evaluate.arrival.eligible`` accepts, as a query, for one shard."""
    shards = max(1, settings.ARRIVAL_SHARDS)
    return (
        Monitor.objects.filter(
            Q(source__hosted=True) | ~Q(source__push_key_hash=""),
            enabled=True,
            raw_query="",
            aggregation__in=sorted(AGGREGATIONS),
        )
        .filter(Q(group_by=[]) | Q(group_by__isnull=True))
        .exclude(measurement="")
        .exclude(field="")
        .annotate(shard=Mod("id", shards))
        .filter(shard=shard)
    )


class Watched:
    """The shard's watched monitors by the ``db`` of their batches in the stream
    (``by_database``): a hosted database's name, or a pushing source's ``push:<id>``."""

    def __init__(self, shard: int) -> None:
        self.shard = shard
        self.by_database: dict[str, DatabaseWatches] = {}
        self.watches: dict[int, Watch] = {}
        self._signature: Any = None

    def refresh(self) -> set[int]:
        """Reloads when the eligible set changed; returns the ids whose definition changed or
        that are no longer watched (their windows and cached rows must go)."""
        query = eligible(self.shard)
        signature = query.aggregate(
            n=Count("id"), updated=Max("updated_at"), top=Max("id"), sources=Sum("source_id")
        )
        if signature == self._signature or not settings.ARRIVAL_EVALUATION:
            return set()
        rows = query.values_list(
            "id",
            "source_id",
            "source__hosted",
            "source__database",
            "measurement",
            "field",
            "tags",
            "window",
            "aggregation",
            "updated_at",
        )
        self._signature = signature
        return self._load(rows)

    def _load(self, rows: Iterable[tuple[Any, ...]]) -> set[int]:
        by_database: dict[str, DatabaseWatches] = {}
        watches: dict[int, Watch] = {}
        for pk, source_id, hosted, database, measurement, field_name, *rest in rows:
            tags, window, aggregation, updated = rest
            watch = Watch(
                pk,
                field_name,
                tuple(sorted((str(k), str(v)) for k, v in (tags or {}).items())),
                int(window.total_seconds() * 1000),
                aggregation,
                updated,
            )
            watches[pk] = watch
            # a pushed source's batches are under its own name in the stream
            key = database if hosted else pushed_stream_key(source_id)
            by_database.setdefault(key, DatabaseWatches()).add(measurement, watch)
        changed = {pk for pk, w in self.watches.items() if watches.get(pk) != w}
        self.by_database, self.watches = by_database, watches
        return changed
