"""GET /monitors (a page of 50, token auth) against the framework floor, under wrk.

Starts the real server process (granian, ``python -m growalert.serve``: WORKERS workers of one
WSGI thread each, so that each worker has one request in the application at a time; DEBUG off)
on a free port, seeds a "bench-api" user with 200 monitors, then runs wrk against ``GET
/healthz`` (a trivial Django JSON view in the same process: the floor) and ``GET
/monitors?limit=50``, each for DURATION seconds, and prints requests/s, p50 and p99 and the
ratio to the floor. The API rate limit is on (a limit no run reaches: its Redis round trip is
paid). Needs Debian's wrk (``make bench`` installs it through ``scripts/bootstrap.sh
--bench``).

    .venv/bin/python bench/bench_api.py [seconds] [--ceiling] [--rounds=N]

``--ceiling`` also measures ``bench/api_ceiling.py``: the same page answered by one SQL
statement in which Postgres builds the JSON, with no DRF (an upper bound for this stack).
``--rounds=N`` measures every endpoint N times, alternating (the order reversed every other
round), and prints medians and the median of each round's ratios: on a busy machine, one run
of each in a row compares different moments.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from datetime import timedelta

import common  # bench/common.py: this directory is first on sys.path

ROOT = common.ROOT
common.setup_django()

import httpx
from django.contrib.auth import get_user_model

from accounts.models import ApiToken
from accounts.services import api_token_create
from billing.gating import comp
from monitors.models import Monitor, Source

WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
CONNECTIONS = 8


def seed() -> str:
    user, _ = get_user_model().objects.get_or_create(username="bench-api")
    comp(user)
    Monitor.objects.filter(owner=user).delete()
    source, _ = Source.objects.get_or_create(
        owner=user, name="bench", defaults={"url": "http://127.0.0.1:18086", "database": "x"}
    )
    for i in range(200):  # save(): each gets its schedule row, as real monitors do
        common.monitor(
            user,
            source,
            f"greenhouse {i:03d} too hot",
            f"dev-{i}",
            critical=35,
            warning=30,
            interval=timedelta(minutes=1),
            enabled=True,
        ).save()
    ApiToken.objects.filter(owner=user).delete()
    _, token = api_token_create(owner=user, name="bench")
    return token


def wrk(url: str, seconds: int, headers: list[str]) -> tuple[float, float, float]:
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps, p50, p99, _ = common.wrk_figures(out)
    return rps, p50, p99


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: scripts/bootstrap.sh --bench")
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    with_ceiling = "--ceiling" in sys.argv[1:]
    rounds = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--rounds=")), 1)
    seconds = int(args[0]) if args else 10
    token = seed()
    port = common.free_port()
    # The rate limit is on, as in production: each request pays its Redis round trip, with a
    # limit no run can reach.
    env = common.production_env(API_RATE_LIMIT="100000000/min")
    if with_ceiling:  # the project's URLs plus /bench/ceiling
        env["DJANGO_SETTINGS_MODULE"] = "bench.api_ceiling_settings"
    server = common.start_web_server(port, env, workers=WORKERS, threads=1)
    base = f"http://127.0.0.1:{port}"
    auth = f"Authorization: Token {token}"
    try:
        common.wait_ready(base, tries=100)
        page = httpx.get(f"{base}/monitors?limit=50", headers={"Authorization": f"Token {token}"})
        page.raise_for_status()
        assert len(page.json()["results"]) == 50, page.text[:200]
        wrk(f"{base}/healthz", 2, [])  # warm-up
        targets = [
            ("GET /healthz (floor)", f"{base}/healthz", []),
            ("GET /monitors?limit=50", f"{base}/monitors?limit=50", [auth]),
        ]
        if with_ceiling:
            bare = httpx.get(f"{base}/bench/ceiling", headers={"Authorization": f"Token {token}"})
            assert bare.json()["count"] == page.json()["count"], bare.text[:200]
            targets.append(("bare SQL page (ceiling)", f"{base}/bench/ceiling", [auth]))
        samples: dict[str, list[tuple[float, float, float]]] = {t[0]: [] for t in targets}
        for i in range(rounds):
            for label, url, headers in targets if i % 2 == 0 else targets[::-1]:
                samples[label].append(wrk(url, seconds, headers))
    finally:
        server.terminate()
        server.wait(10)
        # Enabled monitors left behind would be polled by any later bench's dispatcher on this
        # database (they added ~1 ms per 1,000 readings to bench_flip_arrival.py's figures).
        Monitor.objects.filter(owner__username="bench-api").delete()

    def median(label: str, column: int) -> float:
        return statistics.median(sample[column] for sample in samples[label])

    def ratios(label: str, to: str) -> list[float]:
        return [a[0] / b[0] for a, b in zip(samples[label], samples[to], strict=True)]

    floor_label, monitors_label = targets[0][0], targets[1][0]
    print(
        f"web server (granian) {WORKERS} workers x 1 thread, "
        f"wrk 2 threads x {CONNECTIONS} connections"
    )
    each = f"{seconds} s each" if rounds == 1 else f"medians of {rounds} rounds of {seconds} s"
    print(f"{'endpoint':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  ({each})")
    for label, _url, _headers in targets:
        share = statistics.median(ratios(label, floor_label))
        print(
            f"{label:<24} {median(label, 0):>8,.0f} {median(label, 1):>8.2f}"
            f" {median(label, 2):>8.2f}  ({share:.3f} of the floor)"
        )
    floor_ratios = ratios(monitors_label, floor_label)
    print(f"ratio to the floor: {statistics.median(floor_ratios):.2f}")
    if with_ceiling:
        ceiling_ratios = ratios(monitors_label, targets[2][0])
        rounds_text = " ".join(f"{r:.2f}" for r in ceiling_ratios)
        print(f"ratio to the ceiling: {statistics.median(ceiling_ratios):.2f} ({rounds_text})")
    Monitor.objects.filter(owner__username="bench-api").delete()


if __name__ == "__main__":
    main()
