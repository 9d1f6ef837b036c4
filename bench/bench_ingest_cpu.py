"""The web process's CPU per POST /ingest request, measured in-process: the WSGI fast path
(``devices.ingest.wsgi.handle``: key, parsing, validation, derived fields, line protocol, the
Redis script) called directly with a WSGI environ, against the real Redis, with no HTTP server.

It is what bench_ingest.py's "web" CPU column measures without gunicorn's own share and without
needing wrk, and it counts CPU time of this process only (``time.process_time``), so it is far
less sensitive to a busy machine than a throughput figure. The stream is trimmed as it goes
(no flusher runs). ``--profile`` prints the top functions by cumulative time (cProfile).

    .venv/bin/python bench/bench_ingest_cpu.py [requests] [--rounds=N] [--profile]
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import statistics
import sys
import time
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


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    requests = int(args[0]) if args else 2000
    rounds = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--rounds=")), 3)
    user, _ = get_user_model().objects.get_or_create(username="bench-ingest-cpu")
    Device.objects.filter(owner=user).delete()
    _, key = services.device_add(owner=user, name="bench")
    cases = {
        "batch": (batch_body(), "text/plain"),
        "single": (single_body(), "application/json"),
    }
    for body, content_type in cases.values():
        run(body, key, content_type, 50)  # warm-up: key cache, script loaded, connections
    if "--profile" in sys.argv:
        for name, (body, content_type) in cases.items():
            profile = cProfile.Profile()
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
