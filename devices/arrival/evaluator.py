"""The arrival evaluator (``manage.py evaluate_on_arrival``): reads the ingest stream in its own
consumer group and decides the watched monitors' readings as they arrive.

Exactly-once machinery, step by step:

1. Shards and leases. Shard ``k`` (of ``ARRIVAL_SHARDS``) owns the monitors whose id modulo the
   shard count is ``k`` (one account's monitors spread over every shard), and reads the whole stream
   in its group ``evaluators:k`` (lines of other shards' monitors are skipped after a dictionary
   lookup of their series, and acknowledged with the rest). A window needs every point of its
   monitor, so one process at a time evaluates a shard: it holds the shard's lease (a Redis key
   renewed every second, ``LEASE_MS``); more processes for the same shard wait as standbys and take
   over when the lease expires. More shards, more processes: that is how it scales out.
2. Windows. Each watched monitor's recent points live in this process (``window.Window``). A process
   starts with none, so it decides a reading only once its whole window lies after the moment its
   state began (``monitors.evaluate.arrival.decides``); until then the poller, told by the shard's
   readiness key, decides as before. A failure that leaves the windows in doubt (a read or commit
   that raised) clears them and starts that wait again.
3. Decisions. The readings of one stream read are applied per monitor in time order, each an
   evaluation at the reading's time through ``evaluate.step`` (the poller's and the backtest's
   step), except on the quiet path: a settled monitor (``settled``) taking a passing reading only
   counts the pass, which is all the transition would do (``Cached.current`` folds it in). Rows are
   written only when something changed (an event, a status, a pending or recovering count) or every
   ``REFRESH_S`` (its value on the pages; spread over time; narrow when nothing a transition tells
   apart changed), all in ONE transaction per read with the poller's conditional update
   (``commit_decisions``): a row the poller moved on meanwhile (no data) is reloaded and decided
   again, once.
4. Hand-over. Entries are acknowledged only after that commit: a process killed before it leaves
   them pending, and the next holder of the lease claims them (they fill its windows; their
   decisions are the poller's, as in 2). A replayed reading changes nothing: its time is not after
   the ``evaluated_due_at`` it wrote. The ingest stream keeps an entry until every group, the
   flusher's included, has acknowledged it (``devices.ingest.queue.trim``).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import heapq
import logging
import math
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

import alerts_core as ac
from devices.arrival import lines
from devices.arrival.watched import DatabaseWatches, Watch, Watched
from devices.arrival.window import Window
from devices.ingest import queue
from monitors.definition import Thresholds
from monitors.evaluate import arrival
from monitors.evaluate.pipeline import MAX_POINTS, Decision, commit_decisions
from monitors.evaluate.step import outcome_for, step
from monitors.influxdb.observe import Observation
from monitors.models import Monitor, covering_silences
from monitors.notify import queue as notify_queue

logger = logging.getLogger(__name__)

GROUP_PREFIX = "evaluators:"
LEASE_PREFIX = "growalert:arrival:lease:"
LEASE_MS = arrival.READY_TTL_S * 1000
REFRESH_S = 30.0  # an unchanged monitor's row (value, counters) is written at most this often
LEAD_EVERY_S = 1.0  # the lease holder renews it this often
# The rows due a refresh are written together, by one read this often: a statement and a
# transaction per quarter second, not per read of a few entries. Once a second, at 10,000 monitors
# such a read wrote ~330 rows in ~100 ms of CPU, every reading behind it waiting.
ROWS_EVERY_S = 0.25
# ... and at most this many times their steady share (cached monitors x ROWS_EVERY_S /
# REFRESH_S) by one read. Only the monitors a read carries can be refreshed by it, so the due
# ones pile up between the reads that may; a read after a stall carries thousands of readings
# and wrote all of its due rows at once (measured: 1,948 rows, 471 ms, every reading behind it
# waiting). The rest wait for the next such read.
REFRESH_SHARE = 2.0
BLOCK_MS = 500
STATS_EVERY_S = 10.0
SILENCES_EVERY_S = 1.0  # a new silence holds this evaluator's notifications within a second
THAW_EVERY = 100  # freezes between two full collections of everything (``ArrivalEvaluator.settle``)

# KEYS: lease, readiness. ARGV: consumer, ttl ms, since ms. 2 = taken now, 1 = renewed, 0 =
# another holds it. The holder's readiness key is set in the same round trip.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
local taken = 0
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  taken = 2
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  taken = 1
end
if taken > 0 and ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) end
return taken
"""
SERIES_MEMO_MAX = 1_000_000  # series remembered per database (cleared past it)


def _fields(body: str) -> dict[str, float]:
    """A plain line's fields (no escapes, no strings) as numbers; raises ValueError as
    ``lines.parse`` refuses them."""
    if "," not in body:  # one field: nearly every line
        name, _, text = body.partition("=")
        try:
            return {name: float(text)}
        except ValueError:
            number = lines.number(text)
            return {} if number is None else {name: number}
    out = {}
    for item in body.split(","):
        name, _, text = item.partition("=")
        number = lines.number(text)
        if number is not None:
            out[name] = number
    return out


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(eq=False)
class Cached:
    """A monitor's row as this process last read or wrote it, and its state since.

    ``state`` plus ``quiet`` is the monitor's state: ``quiet`` counts the passing readings taken
    on the quiet path since ``state`` was built (see ``ArrivalEvaluator._apply``), whose last
    outcome is ``quiet_outcome``; ``current`` folds them in when a write or a full step needs
    the state itself."""

    monitor: Monitor
    state: ac.MonitorState
    written: ac.MonitorState
    written_at: float
    rules: tuple[ac.Policy, Thresholds | None] | None = None  # built once, not per reading
    owner_id: int = 0  # the monitor's (a model's foreign key is a descriptor: slow per reading)
    quiet: int = 0
    quiet_outcome: ac.Outcome | None = None
    judged: dict[float, ac.Outcome] = field(default_factory=dict)  # value -> outcome, not firing
    settled_for: ac.MonitorState | None = None  # the state ``settled`` was worked out for
    settled: bool = False

    def current(self) -> ac.MonitorState:
        if self.quiet:
            outcome = self.quiet_outcome
            assert outcome is not None
            self.state = dataclasses.replace(
                self.state,
                passes=self.state.passes + self.quiet,
                value=outcome.value,
                reason=outcome.message,
            )
            self.settled_for = self.state  # folding passes in keeps it settled
            self.quiet = 0
        return self.state


def settled(state: ac.MonitorState, policy: ac.Policy) -> bool:
    """A state whose transition on a passing (not degraded) outcome, not silenced differently,
    only counts one more pass and takes the outcome's value and reason (alerts_core.transition:
    no incident, warning or announcement to undo, no pending streak, no flap history that could
    move, ``since`` kept)."""
    return (
        state.status is ac.Status.OK
        and not state.alerting
        and not state.warning
        and not state.announced
        and state.fired_at is None
        and state.failures == 0
        and not state.flapping
        and state.since is not None
        and (
            not policy.flap_detection
            or (
                state.history == 0
                and state.history_len >= policy.flap_window
                and policy.flap_high > 0
            )
        )
    )


JUDGED_MAX = 256  # values remembered per monitor (a sensor repeats a handful)


def _remembering(monitor: Monitor) -> None:
    """The monitor writes its values (reasons: "35 °C is above 30 °C") from a small memo:
    a sensor repeats a handful of values, and formatting was a third of a decision's cost."""
    show = functools.lru_cache(maxsize=256)(monitor.show)
    monitor.show = show  # type: ignore[method-assign]


@dataclass
class Pending:
    """One monitor's evaluations of this read, decided but not yet written."""

    cached: Cached
    steps: list[tuple[int, float]]  # (reading time ms, aggregate)
    state: ac.MonitorState
    events: list[ac.Event] = field(default_factory=list)
    outcome: ac.Outcome | None = None
    version: int = 0  # the state_version the write was conditioned on


@dataclass
class Round:
    """What one stream read did."""

    entries: int = 0
    readings: int = 0  # readings of watched monitors
    evaluations: int = 0
    written: int = 0
    events: list[tuple[int, int, str]] = field(default_factory=list)  # (monitor, ms, kind)
    notifications: list[Any] = field(default_factory=list)
    read_at: float = 0.0  # wall clock, seconds
    decided_at: float = 0.0
    committed_at: float = 0.0
    cpu_s: float = 0.0  # this thread's CPU from read to committed (the rest: waiting)


class ArrivalEvaluator:
    """``evaluate_once`` is one round: read, decide, commit, acknowledge."""

    def __init__(
        self,
        *,
        shard: int = 0,
        consumer: str | None = None,
        batch: int | None = None,
    ) -> None:
        if not 0 <= shard < max(1, settings.ARRIVAL_SHARDS):
            raise ValueError(f"shard must be between 0 and {settings.ARRIVAL_SHARDS - 1}")
        self.shard = shard
        self.group = f"{GROUP_PREFIX}{shard}"
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch or settings.ARRIVAL_BATCH
        self.redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
        self.watched = Watched(shard)
        self.windows: dict[int, Window] = {}
        self.cache: dict[int, Cached] = {}
        self.since_ms = 0
        self.leading = False
        self._led_at = -1e9
        self._claim = True
        self._refreshed_at = -1e9
        self._silence_owners: set[int] = set()  # whose silences were read
        self._silenced_owners: set[int] = set()  # owners under a silence of everything
        self._silenced_monitors: set[int] = set()
        self._silences_at = -1e9
        self._silence_stale = False
        self._rows_at = -1e9  # when a read last wrote the rows due a refresh
        self._refresh_before = -1e9  # this read refreshes rows last written before this
        self._sender: ThreadPoolExecutor | None = None
        self._arrived: dict[int, tuple[int, int]] = {}  # monitor -> (newest reading ms, arrival)
        self._series: dict[int, tuple[DatabaseWatches, dict[str, tuple[Watch, ...]]]] = {}
        self._loaded = False  # monitors were loaded since the last ``settle``
        self._freezes = 0
        try:
            # New groups start at the end: only what arrives from now on is theirs.
            self.redis.xgroup_create(queue.STREAM, self.group, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # ------------------------------------------------------------ lease and readiness

    def _lead(self) -> bool:
        """Takes or renews the shard's lease and, holding it, announces the shard ready (one
        round trip). A lease just taken restarts the windows, and announces their new start."""
        keys = (self._lease_key(), arrival.ready_key(self.shard))
        since = self.since_ms if self.leading else ""
        taken = int(self.redis.eval(_LEASE, 2, *keys, self.consumer, LEASE_MS, since))
        if taken == 2 or (taken == 1 and not self.leading):
            self._restart()
            self.redis.set(keys[1], self.since_ms, px=LEASE_MS)
        self.leading = taken > 0
        self._led_at = time.monotonic()
        return self.leading

    def _lease_key(self) -> str:
        return f"{LEASE_PREFIX}{self.shard}"

    def _restart(self) -> None:
        """Forgets every window: decisions wait until new ones are whole (the poller decides)."""
        self.windows.clear()
        self.cache.clear()
        self.since_ms = int(time.time() * 1000)
        self._claim = True

    def close(self) -> None:
        """Steps down: the poller takes the shard's monitors back at once."""
        if self.leading:
            holder: Any = self.redis.get(self._lease_key())
            if holder is not None and holder.decode() == self.consumer:
                self.redis.delete(self._lease_key(), arrival.ready_key(self.shard))
        self.leading = False
        if self._sender is not None:
            self._sender.shutdown(wait=True)
        self.redis.close()
        if self._freezes:
            gc.unfreeze()
            self._freezes = 0

    # ------------------------------------------------------------ reading

    def _read(self, block_ms: int | None) -> list[tuple[bytes, dict[bytes, bytes]]]:
        if self._claim:  # ours left pending, then a dead holder's (we hold the lease)
            raw: Any = self.redis.xreadgroup(
                self.group, self.consumer, {queue.STREAM: "0"}, count=self.batch
            )
            if raw and raw[0][1]:
                return list(raw[0][1])
            claimed: Any = self.redis.xautoclaim(
                queue.STREAM, self.group, self.consumer, 0, "0-0", count=self.batch
            )
            if claimed and claimed[1]:
                return list(claimed[1])
            self._claim = False
        fresh: Any = self.redis.xreadgroup(
            self.group, self.consumer, {queue.STREAM: ">"}, count=self.batch, block=block_ms
        )
        return list(fresh[0][1]) if fresh else []

    def evaluate_once(self, *, block_ms: int | None = None) -> Round:
        """One round. Raises (entries stay pending, windows are cleared) when Postgres or
        Redis fails."""
        done = Round()
        self._refresh()
        # The holder renews its lease once a second, not every read (LEASE_MS leaves it 4 s to
        # spare); a standby asks every loop.
        renew = not self.leading or time.monotonic() - self._led_at >= LEAD_EVERY_S
        if renew and not self._lead():
            time.sleep((block_ms or 0) / 1000)
            return done
        entries = self._read(block_ms)
        if not entries:
            return done
        done.read_at, cpu = time.time(), time.thread_time()
        done.entries = len(entries)
        now = time.monotonic()
        # Rows due a refresh are written by one read every ROWS_EVERY_S, together.
        self._refresh_before = -1e9
        if now - self._rows_at >= ROWS_EVERY_S:
            self._refresh_before, self._rows_at = now - REFRESH_S, now
        try:
            touched = self._take(entries, done)
            pending = self._decide(touched, done)
            done.decided_at = time.time()
            self._write(pending, done)
        except BaseException:
            self._restart()
            raise
        done.committed_at, done.cpu_s = time.time(), time.thread_time() - cpu
        self.redis.xack(queue.STREAM, self.group, *[entry_id for entry_id, _ in entries])
        return done

    def _refresh(self) -> None:
        if time.monotonic() - self._refreshed_at < 5.0:
            return
        self._refreshed_at = time.monotonic()
        for pk in self.watched.refresh():
            self.windows.pop(pk, None)
            self.cache.pop(pk, None)

    # ------------------------------------------------------------ windows

    def _take(self, entries: list[tuple[bytes, dict[bytes, bytes]]], done: Round) -> dict[int, Any]:
        """Adds the entries' readings to their monitors' windows; returns each touched
        monitor's watch and reading times (sorted, once each).

        The hot loop of the evaluator: a line's series (its measurement and tags as written)
        finds its monitors in a memo (``_series_watches``), so a line of no watched monitor
        costs a split and a dictionary lookup, and a watched one no parsing beyond its field
        and time. Lines with escapes or strings go through ``lines.parse``."""
        touched: dict[int, list[int]] = {}
        watches: dict[int, Watch] = {}
        newest: dict[int, tuple[int, int]] = {}  # monitor -> (newest time, its arrival ms)
        windows = self.windows
        readings = 0
        for entry_id, data in entries:
            if not data:
                continue  # trimmed while pending (its group was taken for abandoned)
            database = self.watched.by_database.get(data[b"db"].decode())
            if database is None:
                continue
            memo = self._series_memo(database)
            arrived_ms = int(entry_id.split(b"-", 1)[0])
            for line in data[b"lines"].decode().split("\n"):
                if "\\" in line or '"' in line:
                    found = self._escaped(database, line)
                    if found is None:
                        continue
                    time_ms, series, values, targets = found
                else:
                    series, _, rest = line.partition(" ")
                    remembered = memo.get(series)
                    targets = (
                        remembered
                        if remembered is not None
                        else self._series_watches(database, memo, series)
                    )
                    if not targets:
                        continue
                    body, _, stamp = rest.partition(" ")
                    try:
                        time_ms = int(stamp) // 1_000_000
                        values = _fields(body)
                    except ValueError:
                        continue  # not a point: not evaluated (lines.parse's None)
                for watch in targets:
                    value = values.get(watch.field)
                    if value is None:
                        continue
                    pk = watch.monitor_id
                    window = windows.get(pk)
                    if window is None:
                        window = windows[pk] = Window(
                            length_ms=watch.window_ms, aggregation=watch.aggregation
                        )
                    window.add(time_ms, series, value)
                    times = touched.get(pk)
                    if times is None:
                        touched[pk] = [time_ms]
                        watches[pk] = watch
                    else:
                        times.append(time_ms)
                    # Entries come in stream order: a later one's arrival is not earlier.
                    seen = newest.get(pk)
                    if seen is None or time_ms >= seen[0]:
                        newest[pk] = (time_ms, arrived_ms)
                    readings += 1
        done.readings += readings
        self._arrived = newest
        return {
            pk: (watches[pk], times if len(times) == 1 else sorted(set(times)))
            for pk, times in touched.items()
        }

    def _series_memo(self, database: DatabaseWatches) -> dict[str, tuple[Watch, ...]]:
        memo = self._series.get(id(database))
        if memo is None or memo[0] is not database:
            memo = self._series[id(database)] = (database, {})
        if len(memo[1]) > SERIES_MEMO_MAX:
            memo[1].clear()
        return memo[1]

    @staticmethod
    def _series_watches(
        database: DatabaseWatches, memo: dict[str, tuple[Watch, ...]], series: str
    ) -> tuple[Watch, ...]:
        """The watches a plain line's series (``measurement,k=v,...``) concerns, whatever its
        fields (a watch still needs its field in the line), remembered."""
        measurement, _, tag_text = series.partition(",")
        found: tuple[Watch, ...] = ()
        if measurement in database.measurements:
            try:
                tags = dict(pair.split("=", 1) for pair in tag_text.split(",")) if tag_text else {}
            except ValueError:  # not a point (lines.parse's None)
                tags = None
            if tags is not None:
                found = tuple(database.for_series(measurement, tags))
        memo[series] = found
        return found

    @staticmethod
    def _escaped(
        database: DatabaseWatches, line: str
    ) -> tuple[int, str, dict[str, float], tuple[Watch, ...]] | None:
        """A line with escapes or strings (rare): parsed whole."""
        head = line.split(",", 1)[0].split(" ", 1)[0]
        if head not in database.measurements:
            return None
        reading = lines.parse(line)
        if reading is None:
            return None
        return reading.time_ms, reading.series, reading.fields, tuple(database.matching(reading))

    # ------------------------------------------------------------ decisions

    def _decide(self, touched: dict[int, Any], done: Round) -> list[Pending]:
        start_ms = self.since_ms + 2 * arrival.HANDOVER_MARGIN_MS  # arrival.decides, inlined
        due: dict[int, list[int]] = {}
        for pk, (watch, times) in touched.items():
            first = start_ms + watch.window_ms
            if times[-1] >= first:
                due[pk] = times if times[0] >= first else [t for t in times if t >= first]
        pending = self._decide_due(due, done) if due else []
        windows = self.windows
        for pk, (_, times) in touched.items():
            windows[pk].forget_before(times[-1] - 60_000)  # late points: a minute's grace
        return pending

    def _decide_due(self, due: dict[int, list[int]], done: Round) -> list[Pending]:
        cache = self.cache
        missing = [pk for pk in due if pk not in cache]
        if missing:
            self._load(missing)
        self._refresh_silences()
        single, everything = self._silenced_monitors, self._silenced_owners
        pending = []
        evaluations = 0
        for pk, times in due.items():
            entry = cache.get(pk)
            if entry is None:
                continue
            window = self.windows[pk]
            steps = [(t, v) for t in times if (v := window.value_at(t)) is not None]
            evaluations += len(steps)
            silenced = pk in single or entry.owner_id in everything
            decided = self._apply(entry, steps, silenced)
            if decided is not None:
                pending.append(decided)
        done.evaluations += evaluations
        return pending

    def _apply(
        self,
        entry: Cached,
        steps: list[tuple[int, float]],
        silenced: bool,
        *,
        whole: bool = False,
    ) -> Pending | None:
        """The steps of one monitor in this read. A settled state (``settled``) taking a
        passing value stays on the quiet path: the pass is counted and nothing else is built
        (no state, no event, no Pending), exactly what ``step`` would have decided. Anything
        else goes through ``step``. Returns what may need writing: None when the read changed
        nothing but quiet passes and the row is not due a refresh (``whole``: always a Pending,
        for a row that must be written again)."""
        if not steps:
            return None
        policy, thresholds = entry.rules or (entry.monitor.policy(), None)
        state = entry.state
        if entry.settled_for is not state:
            entry.settled = settled(state, policy)
            entry.settled_for = state
        index = 0
        if entry.settled and thresholds is not None and silenced == state.silenced:
            judged = entry.judged
            passed = ac.OutcomeKind.PASSED
            for _, value in steps:
                outcome = judged.get(value)
                if outcome is None:
                    outcome = self._judge(entry, value, thresholds)
                    if outcome is None:
                        return None  # the monitor was dropped: the poller says why
                if outcome.kind is not passed:
                    break
                entry.quiet += 1
                entry.quiet_outcome = outcome
                index += 1
            if index == len(steps) and not whole and entry.written_at > self._refresh_before:
                return None
        decided = Pending(entry, steps, entry.current())
        if index == len(steps):
            decided.outcome = entry.quiet_outcome
            return decided
        try:
            for at_ms, value in steps[index:]:
                decided.state, events, decided.outcome = step(
                    entry.monitor,
                    decided.state,
                    value=value,
                    error=None,
                    now=_moment(at_ms),
                    silenced=silenced,
                    rules=entry.rules,
                )
                decided.events += events
        except (ValueError, ArithmeticError):  # settings past validation: the poller says so
            logger.exception("monitor %s could not be evaluated on arrival", entry.monitor.pk)
            self.cache.pop(entry.monitor.pk, None)
            return None
        return decided

    def _judge(self, entry: Cached, value: float, thresholds: Thresholds) -> ac.Outcome | None:
        """The outcome of ``value`` for a monitor not firing (what ``step`` would judge),
        remembered: a sensor repeats a handful of values."""
        try:
            outcome = outcome_for(
                entry.monitor, value=value, error=None, firing=False, thresholds=thresholds
            )
        except (ValueError, ArithmeticError):
            logger.exception("monitor %s could not be evaluated on arrival", entry.monitor.pk)
            self.cache.pop(entry.monitor.pk, None)
            return None
        if len(entry.judged) >= JUDGED_MAX:
            entry.judged.clear()
        entry.judged[value] = outcome
        return outcome

    def _refresh_silences(self) -> None:
        """Monitors under a silence (``audience.silenced_monitor_ids``' rule), from the
        silences read at most ``SILENCES_EVERY_S`` ago (or since a monitor of an owner not yet
        asked about was loaded): one query a second, not one a read."""
        now = time.monotonic()
        if now - self._silences_at < SILENCES_EVERY_S and not self._silence_stale:
            return
        self._silence_owners = {c.owner_id for c in self.cache.values()}
        found = covering_silences(self._silence_owners, timezone.now())
        self._silenced_owners = {s.owner_id for s in found if s.monitor_id is None}
        self._silenced_monitors = {s.monitor_id for s in found if s.monitor_id is not None}
        self._silences_at = now
        self._silence_stale = False

    def _load(self, ids: list[int]) -> None:
        if not ids:
            return
        self._loaded = True
        for monitor in Monitor.objects.select_related("source").filter(pk__in=ids, enabled=True):
            try:
                state = monitor.alert_state()
            except Exception:  # an unreadable state: the poller resets it
                logger.warning("monitor %s: unreadable state, left to the poller", monitor.pk)
                continue
            try:
                policy, day = monitor.policy(), monitor.thresholds()
            except ValueError:  # settings past validation: the poller says so
                logger.warning("monitor %s: unusable settings, left to the poller", monitor.pk)
                continue
            # Day and night thresholds: which applies depends on each reading's time (step
            # picks them, as the poller's and the backtest's step do).
            rules = (policy, None if monitor.has_photoperiod else day)
            _remembering(monitor)
            # Spread over REFRESH_S: rows loaded together are not all refreshed in one read.
            written_at = time.monotonic() - random.uniform(0, REFRESH_S)
            self.cache[monitor.pk] = Cached(
                monitor, state, state, written_at, rules, monitor.owner_id
            )
            if monitor.owner_id not in self._silence_owners:
                self._silence_stale = True

    # ------------------------------------------------------------ writing

    def _changed(self, decided: Pending) -> bool:
        """Something a page or a transition tells apart: written by this read."""
        new, old = decided.state, decided.cached.written
        return bool(
            decided.events
            or new.status != old.status
            or new.alerting != old.alerting
            or new.warning != old.warning
            or new.flapping != old.flapping
            or (new.status == ac.Status.PENDING and new.failures != old.failures)
            or (new.alerting and new.passes != old.passes)
        )

    def _to_write(self, pending: list[Pending]) -> list[Pending]:
        """The decisions that changed something, and of those only due a refresh at most
        ``REFRESH_SHARE`` times the steady share, the longest unwritten first."""
        chosen, due = [], []
        for decided in pending:
            if self._changed(decided):
                chosen.append(decided)
            elif decided.cached.written_at <= self._refresh_before:
                due.append(decided)
        if due:
            room = math.ceil(REFRESH_SHARE * len(self.cache) * ROWS_EVERY_S / REFRESH_S)
            if len(due) > room:
                due = heapq.nsmallest(room, due, key=lambda d: d.cached.written_at)
            chosen += due
        return chosen

    def _write(self, pending: list[Pending], done: Round) -> None:
        """Writes what changed. The decisions that notify are committed first, in a
        transaction of their own, so their notifications are queued without waiting for the
        rows due a refresh (a few hundred a second at 10,000 monitors, written by one read
        every ``ROWS_EVERY_S``); the entries are acknowledged once both have committed."""
        for decided in pending:  # what is not written is still this process's state
            decided.cached.state = decided.state
        chosen = self._to_write(pending)
        telling = [d for d in chosen if d.events]
        if telling and len(telling) < len(chosen):
            self._commit(telling, done)
            chosen = [d for d in chosen if not d.events]
        self._commit(chosen, done)

    def _commit(self, chosen: list[Pending], done: Round) -> None:
        for attempt in (1, 2):
            if not chosen:
                return
            result = commit_decisions(
                [self._decision(d) for d in chosen], timezone.now(), enqueue=self._deliver
            )
            lost = [d for d in chosen if d.cached.monitor.pk not in result.written]
            for decided in chosen:
                if decided not in lost:
                    self._written(decided, done)
            done.notifications += result.notifications
            chosen = self._redecide(lost) if attempt == 1 else []

    def _deliver(self, notification_ids: list[Any]) -> None:
        """Queues delivery once the transaction commits, from a thread of its own: the loop
        reads the next entries while a burst's tasks go to the broker (one message each; a
        message lost with this process is harmless, the sweeper sends pending rows)."""
        if self._sender is None:
            self._sender = ThreadPoolExecutor(1, thread_name_prefix="arrival-deliver")
        sender = self._sender
        transaction.on_commit(lambda: sender.submit(notify_queue.enqueue, notification_ids))

    def _decision(self, decided: Pending) -> Decision:
        monitor = decided.cached.monitor
        decided.version = monitor.state_version
        at_ms, value = decided.steps[-1]
        assert decided.outcome is not None
        # The points illustrate a notification: only a decision with events needs them.
        points = self.windows[monitor.pk].points(at_ms, MAX_POINTS) if decided.events else []
        # The row's evaluated_due_at: the reading's time, but never after the moment it reached
        # the stream (a device whose clock runs ahead must not hold off the poller's no-data
        # check). The same entry replayed gives the same value, so a replay changes nothing.
        seen = self._arrived.get(monitor.pk)
        due_ms = min(at_ms, seen[1]) if seen is not None and seen[0] == at_ms else at_ms
        return Decision(
            monitor,
            _moment(due_ms),
            Observation(None, value=value),
            decided.outcome,
            decided.state,
            decided.events,
            points=[[_moment(t).isoformat(), v] for t, v in points],
            # What the row holds, as far as a transition can tell: a decision that changes none
            # of it is written narrow (value, reason, times; pipeline._QUIET), as the poller's.
            previous=decided.cached.written,
        )

    def _written(self, decided: Pending, done: Round) -> None:
        cached = decided.cached
        cached.monitor.status = decided.state.status.value
        cached.written = cached.state = decided.state
        cached.written_at = time.monotonic()
        done.written += 1
        done.events += [
            (cached.monitor.pk, int(e.at.timestamp() * 1000), e.kind.value) for e in decided.events
        ]

    def _redecide(self, lost: list[Pending]) -> list[Pending]:
        """Rows another writer (the poller's no-data) moved on: read again, decide again."""
        ids = [d.cached.monitor.pk for d in lost]
        for pk in ids:
            self.cache.pop(pk, None)
        self._load(ids)
        again = []
        for decided in lost:
            entry = self.cache.get(decided.cached.monitor.pk)
            if entry is not None:
                redone = self._apply(
                    entry, decided.steps, decided.cached.state.silenced, whole=True
                )
                if redone is not None:
                    again.append(redone)
        return again

    # ------------------------------------------------------------ the loop

    def settle(self) -> None:
        """After a read that loaded monitors: leaves every object alive now (the cached rows,
        their windows, the series memo) out of the cyclic garbage collector's walks
        (``gc.freeze``; reference counting still frees them), as the poller's workers do
        (``monitors.evaluate.resident``). Measured at 10,000 monitors, a full collection walked
        them all in 270 ms (p50; 580 ms at most), several times a minute, every reading that
        arrived meanwhile waiting: the latency tail. A cached row dropped later (a reload, a
        restart) may leave cyclic garbage among the frozen objects, so every ``THAW_EVERY``
        freezes everything is thawed and collected once."""
        if not self._loaded:
            return
        self._loaded = False
        self._freezes += 1
        if self._freezes % THAW_EVERY == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()

    def run(self, *, stop: threading.Event | None = None) -> None:
        pauses = FullCollections()
        gc.callbacks.append(pauses.observe)
        try:
            self._loop(stop, pauses)
        finally:
            gc.callbacks.remove(pauses.observe)

    def _loop(self, stop: threading.Event | None, pauses: FullCollections) -> None:
        backoff = 0.5
        stats = Stats()
        gather = settings.ARRIVAL_GATHER_MS / 1000
        wait_for = stop.wait if stop is not None else time.sleep
        while not (stop is not None and stop.is_set()):
            try:
                began = time.monotonic()
                done = self.evaluate_once(block_ms=BLOCK_MS)
                stats.add(done)
                self.settle()
                rest = gather - (time.monotonic() - began)
                if 0 < done.entries < self.batch and rest > 0:
                    wait_for(rest)  # let the next read carry more than one batch
                if stats.due():
                    line = f"{stats.line()}; full collections {pauses.line()}"
                    logger.info("arrival evaluator, shard %d: %s", self.shard, line)
                    stats = Stats()
                backoff = 0.5
            except (redis.RedisError, DatabaseError) as exc:
                logger.warning("arrival evaluator: %s; retrying in %.1f s", exc, backoff)
                close_old_connections()
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)


class FullCollections:
    """The cyclic garbage collector's full (generation 2) collections since the last ``line``:
    every one stops the evaluator for as long as it walks (``ArrivalEvaluator.settle``)."""

    def __init__(self) -> None:
        self.started = (0.0, 0.0)
        self.pauses: list[tuple[float, float]] = []  # (wall ms, CPU ms)

    def observe(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self.started = (time.perf_counter(), time.thread_time())
        else:
            wall, cpu = self.started
            self.pauses.append(
                ((time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000)
            )

    def line(self) -> str:
        pauses, self.pauses = self.pauses, []
        wall, cpu = max(pauses, default=(0.0, 0.0))
        return f"{len(pauses)}, longest {wall:.1f} ms ({cpu:.1f} ms CPU)"


@dataclass
class Stats:
    """What the loop did over ``STATS_EVERY_S`` (one log line: an operator's view of its pace)."""

    started: float = field(default_factory=time.monotonic)
    rounds: int = 0
    entries: int = 0
    readings: int = 0
    evaluations: int = 0
    written: int = 0
    notifications: int = 0
    deciding_ms: list[float] = field(default_factory=list)  # read -> decided
    committing_ms: list[float] = field(default_factory=list)  # decided -> committed
    slowest: tuple[float, float, int, int] = (0.0, 0.0, 0, 0)  # s, CPU s, entries, rows

    def add(self, done: Round) -> None:
        if not done.entries:
            return
        self.rounds += 1
        self.entries += done.entries
        self.readings += done.readings
        self.evaluations += done.evaluations
        self.written += done.written
        self.notifications += len(done.notifications)
        self.deciding_ms.append((done.decided_at - done.read_at) * 1000)
        self.committing_ms.append((done.committed_at - done.decided_at) * 1000)
        took = done.committed_at - done.read_at
        if took > self.slowest[0]:
            self.slowest = (took, done.cpu_s, done.entries, done.written)

    def due(self) -> bool:
        return time.monotonic() - self.started >= STATS_EVERY_S

    def line(self) -> str:
        def spread(values: list[float]) -> str:
            ordered = sorted(values) or [0.0]
            return f"p50 {ordered[len(ordered) // 2]:.1f} / max {ordered[-1]:.1f} ms"

        return (
            f"{self.rounds} reads, {self.entries} entries, {self.readings} readings, "
            f"{self.evaluations} evaluations, {self.written} rows written, "
            f"{self.notifications} notifications; read->decided {spread(self.deciding_ms)}, "
            f"decided->committed {spread(self.committing_ms)}; slowest read "
            f"{self.slowest[0] * 1000:.0f} ms ({self.slowest[1] * 1000:.0f} ms CPU, "
            f"{self.slowest[2]} entries, {self.slowest[3]} rows written)"
        )
