"""The web process's CPU per POST /ingest request, measured in-process: the WSGI fast path
(``devices.ingest.wsgi.handle``: key, parsing, validation, derived fields, line protocol, the
Redis script) called directly with a WSGI environ, against the real Redis, with no HTTP server.

It is what bench_ingest.py's "web" CPU column measures without the HTTP server's own share and
without
needing wrk, and it counts CPU time of this process only (``time.process_time``), so it is far
less sensitive to a busy machine than a throughput figure. The stream is trimmed as it goes
(no flusher runs). ``--profile`` prints the top functions by internal CPU time (cProfile timed
with ``time.process_time``: with the wall clock, the Redis round trip's wait looked like work).

``--server`` serves the same requests through the web server (granian, ``python -m
growalert.serve``: BENCH_WORKERS workers x BENCH_THREADS threads, 2 x 4 by default, DEBUG off,
as bench_ingest.py) and sends them from 8 keep-alive connections in this process (http.client
threads; slower than wrk, so the rate it prints is the client's, not the server's ceiling); it
prints the CPU the server's processes (master and workers) used per request (/proc).
``--keys=K`` sends the requests with K devices' keys in turn (bench_flip_arrival.py's 100
gateways: each web process then looks each key up again once per INGEST_KEY_CACHE_SECONDS).
``--rate=R`` paces the clients to R requests/s in all (bench_flip_arrival.py sends 100/s): a
server that is not saturated does the same work per request, but granian's event loop and
thread hand-over are no longer shared by several requests per wake-up.

Cases: ``batch`` (bench_ingest.py's: 100 sensors, temperature and humidity, no timestamps),
``single`` (one JSON reading), ``flip`` (bench_flip_arrival.py's: 100 devices' ``value`` with
nanosecond timestamps); ``--only=flip,batch`` picks some.

    .venv/bin/python bench/bench_ingest_cpu.py [requests] [--rounds=N] [--profile] [--server]
        [--rate=R] [--keys=K] [--only=CASES]

``--server --profile`` profiles the server's workers themselves (bench/profiled_wsgi.py: CPU time
per thread of the WSGI application only; granian's HTTP handling is Rust, outside the profile)
and prints the merged profile; the CPU figures of such a run include the profiler's cost.
"""

from __future__ import annotations

import cProfile
import http.client
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

LIMITS = {
    "INGEST_DEVICE_REQUESTS_PER_SECOND": "10000000",
    "INGEST_DEVICE_POINTS_PER_SECOND": "100000000",
    "INGEST_ACCOUNT_POINTS_PER_SECOND": "100000000",
}
common.setup_django(env=LIMITS)

import redis
from django.conf import settings
from django.contrib.auth import get_user_model

from devices import services
from devices.ingest import queue, wsgi
from devices.models import Device

BATCH = 100


def batch_body() -> bytes:
    """The batch of bench_ingest.py: 100 sensors, temperature and humidity, no timestamp."""
    return "\n".join(
        f"gro01,sensor=s{i:03d} temperature={20 + i / 10:.1f},humidity={50 + i / 7:.2f}"
        for i in range(BATCH)
    ).encode()


def flip_body() -> bytes:
    """bench_flip_arrival.py's request: a gateway's 100 devices, one value each, stamped."""
    stamp = time.time_ns()
    return "\n".join(f"sensor_value,device=d{d} value=20.0 {stamp}" for d in range(BATCH)).encode()


def single_body() -> bytes:
    return json.dumps(
        {"event_type": "gro01", "data": {"temperature": 21.5, "humidity": 61.2}}
    ).encode()


def environ(body: bytes, key: str, content_type: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/ingest",
        "QUERY_STRING": "",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_API_KEY": key,
        "wsgi.input": io.BytesIO(body),
    }


def run(body: bytes, key: str, content_type: str, requests: int) -> float:
    """CPU milliseconds of this process per request."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        statuses.append(status)

    trim = redis.Redis.from_url(settings.REDIS_URL)
    started = time.process_time()
    for i in range(requests):
        wsgi.handle(environ(body, key, content_type), start_response)
        if i % 500 == 499:
            trim.xtrim(queue.STREAM, maxlen=0)
    spent = time.process_time() - started
    trim.xtrim(queue.STREAM, maxlen=0)
    assert all(s.startswith("202") for s in statuses), statuses[:3]
    return spent / requests * 1000


def _cpu_seconds(pid: int) -> float:
    """CPU of a process and its children (the web server's master and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0.0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
RATE = next((float(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--rate=")), 0.0)


def run_http(
    port: int, body: bytes, keys: list[str], content_type: str, requests: int, pid: int
) -> tuple[float, float]:
    """(server CPU ms per request, client-side requests/s) over 8 keep-alive connections,
    each paced to RATE / 8 requests/s when RATE is set."""
    per_thread = requests // 8
    failures: list[int] = []
    gap = 8 / RATE if RATE else 0.0

    def client(phase: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        due = time.monotonic() + phase * gap / 8
        for i in range(per_thread):
            headers = {"Content-Type": content_type, "X-API-Key": keys[(i * 8 + phase) % len(keys)]}
            if gap:
                time.sleep(max(0.0, due - time.monotonic()))
                due += gap
            conn.request("POST", "/ingest", body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 202:
                failures.append(answer.status)
        conn.close()

    trim = redis.Redis.from_url(settings.REDIS_URL)
    cpu_before, started = _cpu_seconds(pid), time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.monotonic() - started, _cpu_seconds(pid) - cpu_before
    trim.xtrim(queue.STREAM, maxlen=0)
    assert not failures, failures[:3]
    return cpu / (per_thread * 8) * 1000, per_thread * 8 / elapsed


def main_server(
    keys: list[str], cases: dict[str, tuple[bytes, str]], requests: int, rounds: int
) -> None:
    port = common.free_port()
    profiles = Path(tempfile.mkdtemp(prefix="bench-ingest-profile-"))
    profiling = "--profile" in sys.argv
    env = common.production_env(**LIMITS, BENCH_PROFILE_DIR=str(profiles))
    server = common.start_web_server(
        port,
        env,
        workers=WORKERS,
        threads=THREADS,
        app="bench.profiled_wsgi:application" if profiling else None,
    )
    try:
        common.wait_ready(f"http://127.0.0.1:{port}", tries=100)
        for body, content_type in cases.values():
            run_http(port, body, keys, content_type, 400, server.pid)  # warm-up
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for i in range(rounds):
            for name in cases if i % 2 == 0 else list(cases)[::-1]:
                body, content_type = cases[name]
                figures[name].append(run_http(port, body, keys, content_type, requests, server.pid))
    finally:
        server.terminate()
        server.wait(30)
    if profiling:
        print_worker_profiles(profiles)
    shutil.rmtree(profiles, ignore_errors=True)
    paced = f", paced to {RATE:,.0f} req/s" if RATE else ""
    paced += f", {len(keys)} keys in turn" if len(keys) > 1 else ""
    print(
        f"web server (granian) {WORKERS}x{THREADS}: server CPU per request, "
        f"{requests} requests x {rounds} rounds{paced}"
    )
    for name, values in figures.items():
        cpu = statistics.median(v[0] for v in values)
        rate = statistics.median(v[1] for v in values)
        shown = " ".join(f"{v[0]:.3f}" for v in values)
        print(f"  {name:<7} median {cpu:.3f} ms CPU (runs: {shown}); client {rate:,.0f} req/s")


def print_worker_profiles(folder: Path) -> None:
    """The server workers' WSGI-call profiles merged (bench/profiled_wsgi.py)."""
    files = sorted(folder.glob("worker-*.prof"))
    if not files:
        print("no worker profile was written")
        return
    out = io.StringIO()
    stats = pstats.Stats(str(files[0]), stream=out)
    for extra in files[1:]:
        stats.add(str(extra))
    stats.sort_stats("tottime").print_stats(30)
    print(
        "--- web server workers' WSGI calls, CPU time by function (profiled, so slower)\n"
        + out.getvalue()
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    requests = int(args[0]) if args else 2000
    rounds = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--rounds=")), 3)
    user, _ = get_user_model().objects.get_or_create(username="bench-ingest-cpu")
    Device.objects.filter(owner=user).delete()
    count = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--keys=")), 1)
    keys = [services.device_add(owner=user, name=f"bench {i}")[1] for i in range(count)]
    key = keys[0]
    cases = {
        "batch": (batch_body(), "text/plain"),
        "single": (single_body(), "application/json"),
        "flip": (flip_body(), "text/plain"),
    }
    only = next((a.split("=")[1].split(",") for a in sys.argv[1:] if a.startswith("--only=")), [])
    cases = {name: case for name, case in cases.items() if not only or name in only}
    for body, content_type in cases.values():
        run(body, key, content_type, 50)  # warm-up: key cache, script loaded, connections
    if "--server" in sys.argv:
        main_server(keys, cases, requests, rounds)
        return
    if "--profile" in sys.argv:
        for name, (body, content_type) in cases.items():
            profile = cProfile.Profile(time.process_time)
            profile.enable()
            run(body, key, content_type, requests // 4)
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
            print(f"--- {name}\n{out.getvalue()}")
        return
    figures: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(rounds):
        for name in cases if i % 2 == 0 else list(cases)[::-1]:
            body, content_type = cases[name]
            figures[name].append(run(body, key, content_type, requests))
    print(f"web-process CPU per request, in-process WSGI handler, {requests} requests x {rounds}")
    for name, values in figures.items():
        shown = " ".join(f"{v:.3f}" for v in values)
        print(f"  {name:<7} median {statistics.median(values):.3f} ms  (runs: {shown})")


if __name__ == "__main__":
    main()
