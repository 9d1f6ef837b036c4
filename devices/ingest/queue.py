"""Accepted batches wait in a Redis stream until the flusher writes them to InfluxDB.

``enqueue`` runs one Lua script: the per-second rate limits (requests and points per device,
points per account), the signature's replay check and the XADD happen together, atomically, in
one round trip; a batch is acknowledged to the device only once it is in the stream. A refused
request consumes no replay slot and no point budget (it can be retried as it is).

``Flusher`` (``manage.py ingest_flusher``) reads the stream in a consumer group, writes each
account's lines to its database in one request, and only then acknowledges and deletes the
entries: a flusher killed mid-batch leaves them pending, and another (or the restarted one)
claims them after ``CLAIM_IDLE_MS``. Redis must keep the stream (AOF in production) for the
acknowledgement to survive a Redis restart; a kill -9 of a web process loses nothing.

Other consumer groups read the same stream (the arrival evaluators, devices/arrival): an entry
therefore leaves the stream only once every group is past it. Nobody XDELs; ``trim`` drops what
lies below the oldest entry any group still holds pending or has not yet been given
(XTRIM MINID), so a batch the flusher wrote stays until the evaluators acknowledged it too, and
the other way round. An evaluator group whose consumers have all been silent for
``ABANDONED_GROUP_MS`` no longer holds the stream (ingest must not stop because an evaluator
died: the poller evaluates its monitors again once its readiness key expires); the flusher's
group always does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from redis.connection import ConnectionInterface
from redis.exceptions import NoScriptError

from devices import hosted, services
from devices.metrics import record_refused
from monitors.influxdb import client as influx

logger = logging.getLogger(__name__)

PREFIX = "growalert:ingest:"
STREAM = PREFIX + "stream"
GROUP = "flushers"
# A batch a customer's InfluxDB pushed (its ``db`` is ``push:<source id>``): it is in their
# InfluxDB already, for the evaluators only (devices/ingest/pushed.py).
PUSHED_PREFIX = "push:"


def pushed_stream_key(source_id: int) -> str:
    """The ``db`` of a batch a source's InfluxDB pushed."""
    return f"{PUSHED_PREFIX}{source_id}"


MAX_PENDING_BATCHES = 200_000  # beyond this the ingest answers 503: InfluxDB is not keeping up
CLAIM_IDLE_MS = 30_000
ABANDONED_GROUP_MS = 300_000
TRIM_EVERY_S = 0.2
STATUS_EVERY_S = 5.0  # a device's row is written at most this often
STATUSES_EVERY_S = 1.0  # the due rows are written together at most this often

# KEYS: device requests, device points, account points, replay key ('' = unsigned), stream.
# ARGV: request limit, device point limit, account point limit, points, replay ttl, max pending,
# then the entry's field/value pairs. Returns {0, id} or {reason, retry-after ms}.
_SCRIPT = """
local req = redis.call('INCR', KEYS[1])
if req == 1 then redis.call('EXPIRE', KEYS[1], 2) end
if req > tonumber(ARGV[1]) then return {1, redis.call('PTTL', KEYS[1])} end
local n = tonumber(ARGV[4])
local dev = tonumber(redis.call('GET', KEYS[2]) or '0')
if dev + n > tonumber(ARGV[2]) then return {2, redis.call('PTTL', KEYS[2])} end
local acct = tonumber(redis.call('GET', KEYS[3]) or '0')
if acct + n > tonumber(ARGV[3]) then return {3, redis.call('PTTL', KEYS[3])} end
if redis.call('XLEN', KEYS[5]) >= tonumber(ARGV[6]) then return {5, 1000} end
if KEYS[4] ~= '' then
  if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', tonumber(ARGV[5])) then return {4, 0} end
end
if redis.call('INCRBY', KEYS[2], n) == n then redis.call('EXPIRE', KEYS[2], 2) end
if redis.call('INCRBY', KEYS[3], n) == n then redis.call('EXPIRE', KEYS[3], 2) end
return {0, redis.call('XADD', KEYS[5], '*', unpack(ARGV, 7))}
"""

OK, DEVICE_REQUESTS, DEVICE_POINTS, ACCOUNT_POINTS, REPLAYED, BACKLOG = range(6)

_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest().encode()  # noqa: S324  (Redis' script id)
_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
    return _client


def reset_local_state() -> None:
    """Forget this process's connections (tests; a forked worker gets its own on first use)."""
    global _client, _local
    _client = None
    _local = threading.local()


_local = threading.local()


def _connection() -> ConnectionInterface:
    """This thread's own connection for the ingest script: taking one from the pool and giving
    it back costs as much CPU as the round trip itself (redis-py's locks and metrics)."""
    held = getattr(_local, "held", None)
    if held is None or held[0] != os.getpid():
        held = (os.getpid(), client().connection_pool.make_connection())
        _local.held = held
    connection: ConnectionInterface = held[1]
    connection.connect()  # type: ignore[no-untyped-call]  # a no-op while connected
    try:
        # What the pool checks: an idle connection with something to read was closed by the
        # server (a Redis restart) or left mid-reply; start afresh rather than fail a request.
        if connection.can_read():
            raise redis.ConnectionError("the connection has data")
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        connection.disconnect()  # type: ignore[no-untyped-call]
        connection.connect()  # type: ignore[no-untyped-call]
    return connection


def _packed(args: list[bytes]) -> bytes:
    """A command in RESP: what redis-py's generic packing does, at a fraction of its cost
    (this runs once per ingest request)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out += (b"$%d\r\n" % len(arg), arg, b"\r\n")
    return b"".join(out)


def _run_script(keys: list[str], args: list[object]) -> Any:
    """EVALSHA on this thread's connection; loads the script when Redis does not know it yet.
    A connection that failed is closed, and connects again on the next request."""
    command = _packed(
        [b"EVALSHA", _SHA, b"%d" % len(keys)]
        + [k.encode() for k in keys]
        + [a if isinstance(a, bytes) else str(a).encode() for a in args]
    )
    connection = _connection()
    for attempt in (1, 2):
        try:
            connection.send_packed_command([command])  # type: ignore[no-untyped-call]
            return connection.read_response()
        except NoScriptError:
            if attempt == 2:
                raise
            client().script_load(_SCRIPT)
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()  # type: ignore[no-untyped-call]
            raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Outcome:
    reason: int  # OK or one of the refusal reasons
    retry_after_ms: int = 0


def enqueue(
    *,
    device_id: int,
    owner_id: int,
    lines: str,
    points: int,
    status: dict[str, object],
    replay_key: str | None,
) -> Outcome:
    """Raises redis.RedisError when Redis cannot be reached."""
    second = int(time.time())
    keys = [
        f"{PREFIX}rate:dr:{device_id}:{second}",
        f"{PREFIX}rate:dp:{device_id}:{second}",
        f"{PREFIX}rate:ap:{owner_id}:{second}",
        f"{PREFIX}sig:{replay_key}" if replay_key else "",
        STREAM,
    ]
    args: list[object] = [
        settings.INGEST_DEVICE_REQUESTS_PER_SECOND,
        settings.INGEST_DEVICE_POINTS_PER_SECOND,
        settings.INGEST_ACCOUNT_POINTS_PER_SECOND,
        points,
        2 * settings.INGEST_SIGNATURE_WINDOW_SECONDS + 1,
        MAX_PENDING_BATCHES,
        "db",
        hosted.database_name(owner_id),
        "dev",
        device_id,
        "lines",
        lines,
        "status",
        json.dumps(status, separators=(",", ":")),
    ]
    return _outcome(_run_script(keys, args))


def enqueue_pushed(
    *, source_id: int, owner_id: int, stream_db: str, lines: str, points: int
) -> Outcome:
    """A batch a customer's InfluxDB pushed (devices/ingest/pushed.py), under the same script:
    requests and points per second per source, points per second per account (shared with the
    account's devices), the backlog bound. Raises redis.RedisError when Redis cannot be
    reached."""
    second = int(time.time())
    keys = [
        f"{PREFIX}rate:sr:{source_id}:{second}",
        f"{PREFIX}rate:sp:{source_id}:{second}",
        f"{PREFIX}rate:ap:{owner_id}:{second}",
        "",
        STREAM,
    ]
    args: list[object] = [
        settings.PUSH_SOURCE_REQUESTS_PER_SECOND,
        settings.PUSH_SOURCE_POINTS_PER_SECOND,
        settings.INGEST_ACCOUNT_POINTS_PER_SECOND,
        points,
        1,
        MAX_PENDING_BATCHES,
        *("db", stream_db, "dev", 0, "lines", lines, "status", "{}"),
    ]
    return _outcome(_run_script(keys, args))


def _outcome(answer: Any) -> Outcome:
    reason, value = answer
    if int(reason) == OK:
        return Outcome(OK)
    return Outcome(int(reason), max(int(value), 0))


# ---------------------------------------------------------------- trimming


def _after(entry_id: str) -> str:
    """The smallest stream id above ``entry_id``."""
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def _smaller(a: str, b: str) -> str:
    pa, pb = a.split("-"), b.split("-")
    return a if (int(pa[0]), int(pa[1])) <= (int(pb[0]), int(pb[1])) else b


def _decoded(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _holds(conn: redis.Redis, group: dict[Any, Any]) -> str | None:
    """The oldest id a group still needs (None: it no longer holds the stream)."""
    name = _decoded(group["name"])
    if name != GROUP:
        consumers: Any = conn.xinfo_consumers(STREAM, name)
        if not consumers or min(int(c["idle"]) for c in consumers) >= ABANDONED_GROUP_MS:
            return None
    keep = _after(_decoded(group["last-delivered-id"]))
    if int(group["pending"]):
        summary: Any = conn.xpending(STREAM, name)
        if summary and summary.get("min"):
            keep = _smaller(_decoded(summary["min"]), keep)
    return keep


def holds_stream(conn: redis.Redis, group: dict[Any, Any]) -> bool:
    """False for a reader's group abandoned long enough that the stream no longer waits for it
    (its entries may be trimmed; devices/ingest/backlog.py leaves it out)."""
    return _holds(conn, group) is not None


def trim(conn: redis.Redis) -> None:
    """Drops the entries every consumer group has acknowledged (XTRIM MINID below the oldest
    one a group still holds pending or has not been given). Safe against concurrent reads: a
    group's last-delivered id only grows, and what it is given later lies above it."""
    groups: Any = conn.xinfo_groups(STREAM)
    holds = [h for g in groups if (h := _holds(conn, g)) is not None]
    if not any(_decoded(g["name"]) == GROUP for g in groups) or not holds:
        return  # no flusher group yet: nothing may go
    minimum = holds[0]
    for keep in holds[1:]:
        minimum = _smaller(minimum, keep)
    conn.xtrim(STREAM, minid=minimum, approximate=False)


# ---------------------------------------------------------------- the flusher

MAX_WRITE_BYTES = 4 * 1024 * 1024  # per /write request; InfluxDB's default limit is 25 MB
# A round is cut for several writers only into parts of at least this size: InfluxDB's CPU per
# point is flat from about 5,000 points a request on (bench/bench_influx_write_size.py), and a
# request costs the flusher about 0.8 ms of Python whatever its size, so a small round cut in two
# cost both sides more for nothing (at 10,000 readings/s: rounds of ~50 KB, 40 requests a second).
SPLIT_BYTES = 256 * 1024
_DROPPED = re.compile(r"dropped=([0-9]+)")
_CONFLICT = re.compile(r'input field "([^"]+)" on measurement')
_REASONS = (
    ("field type conflict", "field_type_conflict"),
    ("beyond retention", "beyond_retention"),
    ("limit", "limit"),
    ("unable to parse", "unreadable"),
)


@dataclass
class Entry:
    id: bytes
    database: str
    device_id: int
    lines: str
    status: dict[str, object]


def _entries(raw: Any) -> list[Entry]:
    out = []
    for entry_id, data in raw:
        if not data:  # deleted while pending
            out.append(Entry(entry_id, "", 0, "", {}))
            continue
        out.append(
            Entry(
                entry_id,
                data[b"db"].decode(),
                int(data[b"dev"]),
                data[b"lines"].decode(),
                json.loads(data[b"status"]),
            )
        )
    return out


def _chunks(entries: list[Entry], limit: int) -> list[list[Entry]]:
    chunks: list[list[Entry]] = [[]]
    size = 0
    for entry in entries:
        if chunks[-1] and size + len(entry.lines) > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += len(entry.lines) + 1
    return chunks


def refused(database: str, entries: list[Entry], message: str, *, points: int = 0) -> None:
    """InfluxDB refused points the devices were told it had accepted (202): say so loudly and
    count them. It should not happen (names, types, values and times are validated before the
    202); when it does, the message names the field, and the log the devices that sent it."""
    found = _DROPPED.search(message)
    count = points or max(int(found.group(1)) if found else 1, 1)  # unparsed lines: dropped=0
    reason = next((name for text, name in _REASONS if text in message), "other")
    conflict = _CONFLICT.search(message)
    if conflict:  # the devices that sent the field, not all of the request's
        entries = [e for e in entries if f"{conflict[1]}=" in e.lines] or entries
    devices = sorted({entry.device_id for entry in entries})
    logger.error(
        "ingest: InfluxDB refused %d accepted point(s) in %s (%s) from device(s) %s: %s",
        count,
        database,
        reason,
        ", ".join(map(str, devices[:20])),
        message[:300],
        extra={"database": database, "reason": reason, "points": count},
    )
    record_refused(reason, count)


def gather_pause(written: int, batch: int, elapsed: float, gather: float) -> float:
    """How long the flusher waits before its next round: after a round that wrote some entries
    but not a full ``batch``, the rest of ``gather`` seconds since the round began, so that the
    next one writes what arrived meanwhile in one request instead of one request per batch. A
    full round (a backlog) or an empty one (its read already waited) goes on at once."""
    if written <= 0 or written >= batch:
        return 0.0
    return max(0.0, gather - elapsed)


class Flusher:
    """Moves batches from the stream to InfluxDB; ``flush_once`` is one round."""

    def __init__(
        self,
        *,
        consumer: str | None = None,
        batch: int | None = None,
        writers: int | None = None,
        split_bytes: int = SPLIT_BYTES,
    ) -> None:
        self.redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch or settings.INGEST_FLUSH_BATCH
        self.writers = max(1, writers or settings.INGEST_FLUSH_WRITERS)
        self.split_bytes = max(1, split_bytes)
        self._pool = ThreadPoolExecutor(self.writers) if self.writers > 1 else None
        self.influx = hosted.client(timeout=10.0)
        self._reports: dict[int, services.Reported] = {}
        self._reported_at: dict[int, float] = {}
        self._statuses_at = 0.0
        self._retry_pending = True  # our own pending entries first (a restart, a failure)
        self._trimmed_at = 0.0
        try:
            self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def close(self) -> None:
        self.flush_statuses(force=True)
        if self._pool is not None:
            self._pool.shutdown()
        self.influx.close()
        self.redis.close()

    def _read(self, block_ms: int | None) -> list[Entry]:
        if self._retry_pending:
            raw: Any = self.redis.xreadgroup(GROUP, self.consumer, {STREAM: "0"}, count=self.batch)
            entries = _entries(raw[0][1]) if raw else []
            if entries:
                return entries
            self._retry_pending = False
            claimed: Any = self.redis.xautoclaim(
                STREAM, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=self.batch
            )
            if claimed and claimed[1]:
                return _entries(claimed[1])
        fresh: Any = self.redis.xreadgroup(
            GROUP, self.consumer, {STREAM: ">"}, count=self.batch, block=block_ms
        )
        return _entries(fresh[0][1]) if fresh else []

    def flush_once(self, *, block_ms: int | None = None) -> int:
        """Writes one batch of entries; returns the number of entries written. Raises
        InfluxError (the entries stay pending and are retried) when InfluxDB fails."""
        entries = self._read(block_ms)
        if not entries:
            self._trim()
            self.flush_statuses()
            return 0
        by_database: dict[str, list[Entry]] = {}
        written = [e for e in entries if e.database and not e.database.startswith(PUSHED_PREFIX)]
        for entry in written:
            by_database.setdefault(entry.database, []).append(entry)
        try:
            self._write_all(by_database)
        except influx.InfluxError:
            self._retry_pending = True
            raise
        self.redis.xack(STREAM, GROUP, *[e.id for e in entries])
        self._trim()
        for entry in written:
            self._report(entry)
        self.flush_statuses()
        return len(entries)

    def _trim(self) -> None:
        now = time.monotonic()
        if now - self._trimmed_at >= TRIM_EVERY_S:
            self._trimmed_at = now
            trim(self.redis)

    def _write_all(self, by_database: dict[str, list[Entry]]) -> None:
        """Each account's entries, in requests of at most MAX_WRITE_BYTES, ``writers`` of them
        at a time (InfluxDB parses each request on one core; one flusher writing one request at
        a time fell behind the web workers). A round of one account is cut in up to ``writers``
        requests of at least ``split_bytes`` each. What InfluxDB refuses is logged and counted
        (``refused``) and the rest is written: a refusal is not retried (it would be refused
        again) and never holds up other entries or accounts. Raises the first InfluxError once
        every request has ended."""
        jobs: list[tuple[str, list[Entry]]] = []
        for database, entries in by_database.items():
            hosted.ensure_database(database)
            size = sum(len(entry.lines) + 1 for entry in entries)
            longest = max(len(entry.lines) + 1 for entry in entries)
            # a chunk closes above size / parts: at most ``writers`` of them
            parts = max(1, min(self.writers, size // self.split_bytes))
            limit = min(MAX_WRITE_BYTES, size // parts + longest)
            jobs += [(database, chunk) for chunk in _chunks(entries, limit)]
        if self._pool is None or len(jobs) == 1:
            for database, chunk in jobs:
                self._write_chunk(database, chunk)
            return
        futures = [self._pool.submit(self._write_chunk, *job) for job in jobs]
        wait(futures)
        for future in futures:
            future.result()

    def _write_chunk(self, database: str, chunk: list[Entry]) -> None:
        try:
            self._post(database, "\n".join(entry.lines for entry in chunk))
        except influx.InfluxQueryError as exc:  # a 4xx: InfluxDB refused some or all points
            message = str(exc)
            if message.startswith("partial write"):  # it wrote every other point
                refused(database, chunk, message)
            elif len(chunk) > 1:  # nothing written: find the entry it cannot take
                for entry in chunk:
                    self._write_chunk(database, [entry])
            else:
                refused(database, chunk, message, points=chunk[0].lines.count("\n") + 1)

    def _post(self, database: str, body: str) -> None:
        try:
            self.influx.write([body], database=database, precision="ns")
        except influx.InfluxQueryError as exc:
            if not isinstance(exc, influx.InfluxDatabaseMissing) and (
                "database not found" not in str(exc)
            ):
                raise
            hosted.ensure_database(database, force=True)  # a wiped or restored server
            self.influx.write([body], database=database, precision="ns")

    def _report(self, entry: Entry) -> None:
        """Merges a batch's status into the device's pending report: per value, the one from
        the newest batch that carried it (an older batch fills in what newer ones lacked)."""
        status = entry.status
        seen_ms = status.get("seen_ms")
        if not isinstance(seen_ms, int):
            return
        seen_at = datetime.fromtimestamp(seen_ms / 1000, tz=UTC)
        pending = self._reports.get(entry.device_id)
        newer = pending is None or pending.seen_at <= seen_at
        report = services.Reported(seen_at=seen_at) if pending is None else pending
        report.seen_at = max(report.seen_at, seen_at)
        for name in ("battery", "rssi"):
            value = status.get(name)
            if isinstance(value, int | float) and (newer or getattr(report, name) is None):
                setattr(report, name, float(value))
        firmware = status.get("firmware")
        if isinstance(firmware, str) and (newer or report.firmware is None):
            report.firmware = firmware
        self._reports[entry.device_id] = report

    def flush_statuses(self, *, force: bool = False) -> None:
        """Writes the device rows that are due (at most one write per STATUS_EVERY_S each), in
        one statement, at most once a second: the rounds in between (tens a second under load)
        each found a device or two due and wrote them in a statement of their own."""
        now = time.monotonic()
        if not force and now - self._statuses_at < STATUSES_EVERY_S:
            return
        self._statuses_at = now
        due = {
            device_id: report
            for device_id, report in self._reports.items()
            if force or now - self._reported_at.get(device_id, -1e9) >= STATUS_EVERY_S
        }
        if not due:
            return
        services.devices_reported(due)
        for device_id in due:
            self._reports.pop(device_id, None)
            self._reported_at[device_id] = now
        if len(self._reported_at) > 100_000:
            self._reported_at.clear()

    def run(self, *, stop: threading.Event | None = None) -> None:
        interval_ms = settings.INGEST_FLUSH_INTERVAL_MS
        gather = settings.INGEST_FLUSH_GATHER_MS / 1000
        wait_for = stop.wait if stop is not None else time.sleep
        backoff = 0.5
        while not (stop is not None and stop.is_set()):
            try:
                began = time.monotonic()
                written = self.flush_once(block_ms=interval_ms)
                backoff = 0.5
                rest = gather_pause(written, self.batch, time.monotonic() - began, gather)
                if rest > 0:
                    wait_for(rest)
            except (influx.InfluxError, redis.RedisError, DatabaseError) as exc:
                logger.warning("ingest flusher: %s; retrying in %.1f s", exc, backoff)
                close_old_connections()
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
