"""Which monitors are evaluated on arrival, and when the poller leaves them alone.

Readings sent to ``/ingest``, and writes a customer's InfluxDB pushes to ``/influx/write``, are
evaluated by the arrival evaluators (devices/arrival) as they arrive. A monitor is theirs when
``eligible``: a single-series structured monitor on a hosted or pushing source whose aggregation
can be kept incrementally; a pushing source's monitors only while it is heard from (below).
Each evaluator shard announces itself with a readiness key (``ready_key``) holding the moment its
window state started (milliseconds), with a short time to live it refreshes every loop. The
poller (evaluate.pipeline) skips the data decisions of an eligible monitor while its shard's key
exists and the monitor's whole window lies after that moment (plus ``HANDOVER_MARGIN_MS``); it
still decides "no data" and errors, which only the poller can see. An evaluator decides only
from ``HANDOVER_MARGIN_MS`` later still, so the two never decide the same reading: during a
hand-over at most one evaluation is missed, none is taken twice. When an evaluator dies its key
expires and the poller takes over again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from datetime import datetime

import redis
from django.conf import settings

from alerts_core import Aggregation
from monitors import live
from monitors.models import Monitor

logger = logging.getLogger(__name__)

AGGREGATIONS = frozenset(
    {
        Aggregation.LAST,
        Aggregation.MIN,
        Aggregation.MAX,
        Aggregation.MEAN,
        Aggregation.COUNT,
        Aggregation.SUM,
    }
)
READY_PREFIX = "growalert:arrival:ready:"
READY_TTL_S = 5
HANDOVER_MARGIN_MS = 1000


PUSHING_PREFIX = "growalert:push:seen:"
# A pushing source's monitor is polled for its data again once the source has not been heard
# from for this long, or for the monitor's window if that is longer (a sensor reporting every
# minute, watched over ten, stays on this path between its writes).
PUSHING_TTL_MS = 15_000
PUSHING_KEPT_MS = 7 * 86_400_000  # how long the moment of a source's last push is remembered
PUSHING_MARK_EVERY_S = 1.0

_marked: dict[int, float] = {}  # source id -> when this process last marked it (monotonic)


def eligible(monitor: Monitor) -> bool:
    """Evaluated on arrival: a structured single-series monitor of a hosted source, or of a
    source whose InfluxDB pushes its writes (devices/ingest/pushed.py), whose aggregation is
    kept incrementally (the source must be loaded)."""
    return (
        settings.ARRIVAL_EVALUATION
        and (monitor.source.hosted or monitor.source.pushes)
        and not monitor.is_fleet
        and not monitor.raw_query
        and monitor.aggregation in AGGREGATIONS
        and bool(monitor.measurement and monitor.field)
    )


def decidable(monitor: Monitor) -> bool:
    """Its policy and thresholds can be built (what ``Monitor.policy``/``thresholds`` refuse for
    a row planted past validation). An evaluator skips a monitor that is not, so the poller
    keeps it and writes it as broken with its reason."""
    values = (monitor.critical, monitor.critical_high, monitor.warning, monitor.warning_high)
    if any(v is not None and not math.isfinite(v) for v in (*values, monitor.recovery)):
        return False
    try:
        monitor.policy()
    except ValueError:
        return False
    return True


def shard_of(monitor_id: int) -> int:
    """The evaluator shard that decides a monitor: by the monitor, not its account, so one
    account's thousands of monitors spread over every shard (each monitor's series has one
    evaluator, which keeps its readings in order)."""
    return int(monitor_id) % max(1, settings.ARRIVAL_SHARDS)


def ready_key(shard: int) -> str:
    return f"{READY_PREFIX}{shard}"


def ready_since(shards: Iterable[int]) -> dict[int, int]:
    """The shards whose evaluator is alive, and the moment (ms) its window state starts."""
    wanted = sorted(set(shards))
    if not wanted:
        return {}
    try:
        values = live._redis().mget([ready_key(s) for s in wanted])
    except redis.RedisError as exc:  # the poller decides everything, as before
        logger.warning("arrival readiness unknown: %s", exc)
        return {}
    return {s: int(v) for s, v in zip(wanted, values, strict=True) if v is not None}


def mark_pushing(source_id: int) -> None:
    """Records that a source's InfluxDB pushed a write now: at most once a second per process.
    Raises redis.RedisError."""
    now = time.monotonic()
    if now - _marked.get(source_id, -math.inf) < PUSHING_MARK_EVERY_S:
        return
    now_ms = int(time.time() * 1000)
    live._redis().set(f"{PUSHING_PREFIX}{source_id}", now_ms, px=PUSHING_KEPT_MS)
    _marked[source_id] = now
    if len(_marked) > 100_000:
        _marked.clear()


def last_pushed(source_ids: Iterable[int]) -> dict[int, int]:
    """When each source's InfluxDB last pushed a write (ms), for those that did lately; empty
    when Redis cannot be read (the poller then decides everything, as before)."""
    wanted = sorted(set(source_ids))
    if not wanted:
        return {}
    try:
        values = live._redis().mget([f"{PUSHING_PREFIX}{s}" for s in wanted])
    except redis.RedisError as exc:
        logger.warning("pushing sources unknown: %s", exc)
        return {}
    return {s: int(v) for s, v in zip(wanted, values, strict=True) if v is not None}


def pushing(source_ids: Iterable[int], *, within_ms: int = PUSHING_TTL_MS) -> set[int]:
    """The sources whose InfluxDB pushed a write within ``within_ms``. A source that stopped
    (its subscription dropped, its InfluxDB cut off from growalert) has its monitors polled for
    their data again."""
    now_ms = int(time.time() * 1000)
    return {s for s, at in last_pushed(source_ids).items() if now_ms - at <= within_ms}


def handed_over(monitors: Iterable[Monitor], now: datetime) -> set[int]:
    """The monitors whose data decisions belong to a live arrival evaluator at ``now``: the
    evaluator of its shard is ready, its window lies after the evaluator's start, and the
    readings reach it (a hosted source, or a source heard from within ``PUSHING_TTL_MS`` or the
    monitor's window, whichever is longer)."""
    now_ms = int(now.timestamp() * 1000)
    chosen = [m for m in monitors if eligible(m) and decidable(m)]
    pushed = last_pushed(m.source_id for m in chosen if not m.source.hosted)
    chosen = [
        m
        for m in chosen
        if m.source.hosted
        or now_ms - pushed.get(m.source_id, -PUSHING_KEPT_MS)
        <= max(PUSHING_TTL_MS, m.window.total_seconds() * 1000)
    ]
    if not chosen:
        return set()
    ready = ready_since(shard_of(m.id) for m in chosen)
    out = set()
    for monitor in chosen:
        since = ready.get(shard_of(monitor.id))
        window_ms = int(monitor.window.total_seconds() * 1000)
        if since is not None and now_ms - window_ms >= since + HANDOVER_MARGIN_MS:
            out.add(monitor.id)
    return out


def decides(*, since_ms: int, at_ms: int, window_ms: int) -> bool:
    """Whether an evaluator whose state started at ``since_ms`` decides a reading at ``at_ms``:
    its window holds every point, and the poller has stopped deciding."""
    return at_ms - window_ms >= since_ms + 2 * HANDOVER_MARGIN_MS
