"""What the benches share: Django set-up, Celery processes on private queues, a loopback webhook
receiver, and the bench monitors (a device's temperature in ``gro01``) with their data.

A bench (run as ``.venv/bin/python bench/<name>.py``, so this directory is first on sys.path)
imports it, then calls ``setup_django`` before importing anything that needs Django::

    import common

    common.setup_django(env={"CELERY_QUEUE": "bench-x"})
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitors.models import Channel, Monitor, Source

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".local" / "log"

# A version-1 payload of a firing monitor (what the pipeline writes), for outbox rows.
PAYLOAD: dict[str, Any] = {
    "version": 1,
    "event": "fired",
    "occurred_at": "2026-11-24T09:00:00+00:00",
    "monitor": {"id": 1, "name": "bench", "url": "http://127.0.0.1:8000/app/monitors/1"},
    "status": "firing",
    "previous_status": "pending",
    "reason": "mean(temperature) = 41.2 is above the critical threshold 35",
    "value": 41.2,
    "threshold": 35.0,
    "comparator": "above",
    "aggregation": "mean",
    "window_seconds": 300,
    "query": None,
    "incident": None,
    "points": [],
}


BENCH_SECRET_KEY = "bench-only-secret-key-" + "x" * 30
BENCH_FIELD_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWNoYW5nZS1tZS0wMDA="


def free_port() -> int:
    """A free loopback port below the Linux ephemeral range (32768-60999), where outgoing
    connections of a busy machine cannot take it between the probe and the server's bind."""
    from tests.observability.receivers import free_port as below_ephemeral

    return below_ephemeral(29000)


def production_env(base: Mapping[str, str] | None = None, /, **extra: str) -> dict[str, str]:
    """The environment of a web server run as in production (DEBUG off, so secrets are given;
    plain http on loopback, no TLS proxy in front), on top of ``base`` (default: ours)."""
    return {
        **(os.environ if base is None else base),
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", BENCH_SECRET_KEY),
        "FIELD_ENCRYPTION_KEY": os.environ.get("FIELD_ENCRYPTION_KEY", BENCH_FIELD_KEY),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        **extra,
    }


def start_web_server(
    port: int,
    env: Mapping[str, str],
    *,
    workers: int,
    threads: int = 1,
    log: IO[bytes] | None = None,
    app: str | None = None,
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """The web server (granian: ``python -m growalert.serve``, as scripts/run_all.sh runs it)
    on 127.0.0.1:``port``: ``workers`` worker processes x ``threads`` WSGI threads each (1: one
    request in the application at a time per worker), ``env`` its whole environment, its output
    to ``log`` (else ours). ``app``: another WSGI callable (``module:callable``, imported from
    the checkout's root: bench/profiled_wsgi.py, bench/live_poll_floor.py); ``extra``: more
    options (``--access-log``).

    The process returned is granian's master; its workers are its children (forked), so the CPU
    of the master's process tree is the server's."""
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "growalert.serve"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--threads", str(threads)]
    if app is not None:
        command += ["--app", app]
    command += [*extra]
    return subprocess.Popen(
        command, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT if log else None
    )


def wait_ready(base: str, *, tries: int = 200) -> None:
    """Until the server at ``base`` answers /healthz (a worker of the web server is up and has
    imported the application)."""
    import httpx

    for _ in range(tries):
        try:
            httpx.get(f"{base}/healthz", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)


def wrk_figures(out: str) -> tuple[float, float, float, int]:
    """wrk --latency's report: requests/s, p50 and p99 in ms, requests made. Exits on non-2xx."""
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, ms("50%"), ms("99%"), total


def setup_django(*, defaults: Mapping[str, str] = {}, env: Mapping[str, str] = {}) -> None:
    """The development settings (DEBUG on unless set): ``defaults`` where the environment does
    not set them, ``env`` over it (a bench's private queues, loopback allowances)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    os.environ.update(env)

    import django

    django.setup()


# ---------------------------------------------------------------- Celery processes

Started = tuple[subprocess.Popen[bytes], IO[bytes]]


def start_celery(log: Path, *args: str) -> Started:
    """``celery -A growalert <args>`` from the checkout, with this environment; output to
    ``log``."""
    out = open(log, "wb")  # noqa: SIM115 (closed by stop)
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "celery"), "-A", "growalert", *args],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )
    return process, out


def start_worker(
    log: Path, *, hostname: str, pool: str, concurrency: int, queues: str | None = None
) -> Started:
    """A worker (quiet, no mingle/gossip) of ``pool`` x ``concurrency``, on ``queues`` if given
    (else the settings' queues)."""
    return start_celery(
        log,
        "worker",
        "--loglevel",
        "WARNING",
        "--without-mingle",
        "--without-gossip",
        *(["--queues", queues] if queues else []),
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--hostname",
        hostname,
    )


def stop(started: Iterable[Started], timeout: float = 30) -> None:
    """Terminates them all, then waits for each (killing what outlasts ``timeout``)."""
    started = list(started)
    for process, _log in started:
        process.terminate()
    for process, log in started:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# ---------------------------------------------------------------- webhook receiver


class _Server(ThreadingHTTPServer):
    """The listen backlog is set by the constructor (``server_activate``): set on an instance
    afterwards it was never used, and the socket kept socketserver's 5. A burst of deliveries
    then overflowed it; the kernel dropped their SYNs and each retried after 1 s (then 3 s),
    which the flip benches counted as delivery latency."""

    daemon_threads = True
    request_queue_size = 256


class LoopbackReceiver:
    """A threaded HTTP server on a free loopback port in this process; each POST's body is read
    (kept on the request as ``body``) and the request handed to ``post`` with its idempotency
    key. Subclasses set their own state before calling ``__init__`` (it starts serving)."""

    def __init__(self, *, keep_alive: bool = False) -> None:
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # keep_alive: HTTP/1.1, each connection kept for the next request, as most
            # production receivers do; by default one request per connection (HTTP/1.0)
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                # kept on the request for a ``post`` that reads it (bench_peer's Alertmanager)
                self.body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.post(self, self.headers.get("Growalert-Idempotency-Key", ""))

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def post(self, request: BaseHTTPRequestHandler, key: str) -> None:
        raise NotImplementedError

    @staticmethod
    def ok(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", "0")
        request.end_headers()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


class ArrivalReceiver(LoopbackReceiver):
    """Records when each idempotency key first arrives (by ``clock``); a key seen again is
    counted as a duplicate."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, keep_alive: bool = False
    ) -> None:
        self.clock = clock
        self.received: dict[str, float] = {}
        self.duplicates = 0
        super().__init__(keep_alive=keep_alive)

    def post(self, request: BaseHTTPRequestHandler, key: str) -> None:
        now = self.clock()
        with self.lock:
            if key in self.received:
                self.duplicates += 1
            else:
                self.received[key] = now
        self.ok(request)


def webhook_channel(username: str, url: str) -> tuple[Any, Channel]:
    """The bench user (its channels deleted) with a signed webhook channel to ``url``."""
    from django.contrib.auth import get_user_model

    from monitors.models import Channel

    owner, _ = get_user_model().objects.get_or_create(username=username)
    Channel.objects.filter(owner=owner).delete()
    channel = Channel(owner=owner, name="bench", kind=Channel.Kind.WEBHOOK)
    channel.config = {"url": url}
    channel.secret = "bench-secret"  # noqa: S105 (a throwaway channel)
    channel.save()
    return owner, channel


# ---------------------------------------------------------------- monitors and their data


def monitor(owner: Any, source: Source, name: str, device: str, **fields: Any) -> Monitor:
    """An unsaved monitor of ``device``'s temperature in ``gro01``."""
    from monitors.models import Monitor

    return Monitor(
        owner=owner,
        source=source,
        name=name,
        measurement="gro01",
        field="temperature",
        tags={"device": device},
        **fields,
    )


class FlipReceiver(ArrivalReceiver):
    """The flip benches' webhook sink: arrival time (time.time, compared with the flip times)
    of each idempotency key. It keeps connections open (HTTP/1.1) like the receivers alerts
    go to in production (and Alertmanager's Go client keeps its own); until 2026-12-03 evening
    it answered HTTP/1.0, one request per connection."""

    def __init__(self) -> None:
        super().__init__(clock=time.time, keep_alive=True)

    def arrivals(self, kind: str) -> dict[int, float]:
        """First arrival per monitor id of events ``kind`` (keys ``m<id>:v<n>:<kind>:c<id>``)."""
        found: dict[int, float] = {}
        with self.lock:
            for key, at in self.received.items():
                parts = key.split(":")
                if len(parts) == 4 and parts[2] == kind:
                    monitor = int(parts[0][1:])
                    found[monitor] = min(at, found.get(monitor, at))
        return found

    def wait_for(self, kind: str, ids: set[int], timeout: float) -> None:
        """Until every one of ``ids`` has a ``kind`` arrival, or ``timeout`` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline and not ids <= set(self.arrivals(kind)):
            time.sleep(0.02)


def pct(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``; 0 when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


def flipped_after(flipped: set[int], devices: list[int], on: bool) -> set[int]:
    """The flip benches' set of flipped devices after a round flips ``devices`` on or off."""
    return flipped | set(devices) if on else flipped - set(devices)


def record_round(
    arrived: Mapping[Any, float],
    since: float,
    keys: Sequence[Any] | set[Any],
    into: list[float],
    spreads: list[float],
) -> int:
    """A flip round's latencies (each key's arrival after ``since``) into ``into``, their
    spread (first to last) into ``spreads``; returns how many keys did not arrive."""
    got = [arrived[key] - since for key in keys if key in arrived]
    into.extend(got)
    if got:
        spreads.append(max(got) - min(got))
    return len(keys) - len(got)


def print_flip_arrivals(fired: Sequence[float], resolved: Sequence[float]) -> None:
    """The flip benches' latency lines: each device's arrival after its flip, in seconds."""
    for label, values in (("fired", fired), ("resolved", resolved)):
        print(
            f"  {label:8} arrival after the flip: n={len(values)}, p50 {pct(values, 50):.2f} s, "
            f"p99 {pct(values, 99):.2f} s, max {max(values, default=0):.2f} s"
        )


def print_round_spreads(spreads: Mapping[str, Sequence[float]]) -> None:
    """How together a round's alerts left: first to last arrival, per kind."""
    for label, values in spreads.items():
        print(
            f"  one round's {label} arrivals, first -> last: p50 {pct(values, 50) * 1000:.0f} ms, "
            f"max {max(values, default=0) * 1000:.0f} ms"
        )


def print_cpu_split(split: Mapping[str, float], *, done: float, due: float) -> None:
    """CPU seconds of each process tree over a steady window, per 1,000 evaluations."""
    total = sum(split.values())
    print(
        f"  CPU per 1,000 due evaluations {total / due * 1e6:.0f} ms; per 1,000 done "
        f"{total / max(done, 1) * 1e6:.0f} ms"
    )
    for name, seconds in sorted(split.items(), key=lambda kv: -kv[1]):
        print(f"    {name:18} {seconds / max(done, 1) * 1e6:6.1f} ms per 1,000 done")


def flip_monitors(
    owner: Any, source: Source, channel: Channel, devices: int, interval: timedelta
) -> list[Monitor]:
    """The flip workload's monitors (issue 18): one per device ``dI`` of ``sensor_value``, last
    value over 2 s above 30, firing and resolving on one check, one webhook channel each."""
    from monitors.models import Monitor

    monitors = Monitor.objects.bulk_create(
        [
            Monitor(
                owner=owner,
                source=source,
                name=f"flip d{d}",
                measurement="sensor_value",
                field="value",
                tags={"device": f"d{d}"},
                aggregation="last",
                window=timedelta(seconds=2),
                comparator="above",
                critical=30.0,
                interval=interval,
                pending_for=1,
                recover_after=1,
                flap_detection=False,
            )
            for d in range(devices)
        ],
        batch_size=5000,
    )
    Monitor.channels.through.objects.bulk_create(
        [Monitor.channels.through(monitor_id=m.pk, channel_id=channel.pk) for m in monitors],
        batch_size=5000,
    )
    return monitors


def seed_devices(database: str, devices: int, value: Callable[[int], float]) -> None:
    """``database`` on the customers' test InfluxDB, with device ``dev-<d>`` reporting
    ``value(d)`` once a minute for the last 3 minutes (a bench runs within a 10 min window)."""
    from monitors.influxdb import client as influx
    from tests import customer_influx

    now_ms = int(time.time() * 1000)
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        client.create_database(database)
        client.write(
            [
                influx.line(
                    "gro01",
                    {"temperature": value(d)},
                    tags={"device": f"dev-{d}"},
                    timestamp_ms=now_ms - s * 60_000,
                )
                for d in range(devices)
                for s in range(3)
            ],
            database=database,
        )


def customer_source(username: str, database: str) -> tuple[Any, Source]:
    """The bench user (comped, its monitors deleted) and its source on the customers' test
    InfluxDB."""
    from django.contrib.auth import get_user_model

    from billing.gating import comp
    from monitors.models import Monitor, Source
    from tests import customer_influx

    owner, _ = get_user_model().objects.get_or_create(username=username)
    comp(owner)
    Monitor.objects.filter(owner=owner).delete()
    source, _ = Source.objects.update_or_create(
        owner=owner, name="bench", defaults={"url": customer_influx.url(), "database": database}
    )
    return owner, source


def firing_monitors(
    owner: Any, source: Source, count: int, *, name: str, devices: int, interval: timedelta
) -> list[Monitor]:
    """``count`` saved monitors of ``last(temperature)`` over 10 min, critical above 30, on
    devices ``dev-0`` ... in turn."""
    from monitors.models import Monitor

    return Monitor.objects.bulk_create(
        [
            monitor(
                owner,
                source,
                f"{name} {i}",
                f"dev-{i % devices}",
                aggregation="last",
                window=timedelta(minutes=10),
                comparator="above",
                critical=30.0,
                interval=interval,
            )
            for i in range(count)
        ],
        batch_size=5000,
    )


def spread_schedules(
    monitors: Sequence[Monitor], owner: Any, source: Source, start: datetime, over: float
) -> None:
    """Their due times spread evenly over ``over`` seconds from ``start`` (the rows exist)."""
    from monitors.models import Schedule

    Schedule.objects.bulk_create(
        [
            Schedule(
                monitor=m,
                owner_id=owner.pk,
                source_id=source.pk,
                interval=m.interval,
                next_due_at=start + timedelta(seconds=over * i / len(monitors)),
            )
            for i, m in enumerate(monitors)
        ],
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["monitor"],
        update_fields=["next_due_at", "interval"],
    )


# ---------------------------------------------------------------- CPU of process trees

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process: utime + stime, and cutime + cstime (its
    children that ended and were waited for: a postgres backend, a worker process)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / TICKS


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_by_tree(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds of each named group of process trees (live processes only)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))):
            parents[int(entry)], times[int(entry)] = stat
    totals: dict[str, float] = {}
    for name, pids in roots.items():
        members = set(pids)
        grew = True
        while grew:
            children = {p for p, parent in parents.items() if parent in members} - members
            grew = bool(children)
            members |= children
        totals[name] = sum(times.get(p, 0.0) for p in members)
    return totals


def service_roots(started: dict[str, list[int]]) -> dict[str, list[int]]:
    from django.conf import settings  # after setup_django

    local = str(ROOT / ".local")
    redis_port = str(settings.REDIS_URL).rsplit(":", 1)[-1].split("/")[0]
    roots: dict[str, list[int]] = {"postgres": [], "redis": [], "influxd": []}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        line = _cmdline(int(entry))
        name = line.split(" ", 1)[0].rsplit("/", 1)[-1]
        if name == "postgres" and local in line:
            roots["postgres"].append(int(entry))
        elif name == "redis-server" and f":{redis_port}" in line:
            roots["redis"].append(int(entry))
        elif name == "influxd" and local in line:
            roots["influxd"].append(int(entry))
    return roots | started
