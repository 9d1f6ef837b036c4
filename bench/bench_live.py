"""Live pages at 100 open dashboards (issue 20, point 3).

One comped account with 200 monitors (their data on the customers' test InfluxDB); the web server
(granian, ``python -m growalert.serve``) as ``scripts/run_all.sh`` runs it (2 workers x 4 threads,
production settings, static files collected to a temporary directory). 100 simulated tabs poll the
live URL exactly as static/js/live.js does: one request per tab every 1.5 s (random phase, the next
one a period after the answer), ``If-None-Match`` with the version last seen — ``"refresh"`` once a
minute, none when its token is ``RENEW_SECONDS`` old (Django gives a new one) — each tab with its
own signed-in session, token and keep-alive connection. ``--monitor-tabs N`` of them are monitor
pages (each of a different monitor) that also fetch their chart after each full answer with a new
version, at most one every 3 s, as static/js/chart.js does.

Every ``--every`` seconds one monitor is paused or resumed through ``monitors.services`` (a real
state change: incident, outbox, the owner's and the monitor's counters moved on commit). For
each change: the time from just before the service call to the moment each tab it concerns
received the new version (every dashboard tab; a monitor page's tab only for its own monitor's
changes — the others rightly keep their version).

Printed: requests, 304s and full answers; the CPU (utime + stime) of the web server ("web":
granian's master and workers), Postgres (postmaster and backends) and Redis during the polling
window, as % of one core, and the same with the tabs idle for the same time (what the updates cost
is the difference); latency p50 / p99 / max over all (tab, change) pairs; the load average.

    .venv/bin/python bench/bench_live.py [--tabs 100] [--monitors 200] [--seconds 60] [--every 5]
        [--monitor-tabs 0] [--profile]

``--profile`` serves bench/profiled_wsgi.py in place of growalert.wsgi and prints the workers'
merged profile of the WSGI application (granian's HTTP handling, in Rust, is not in it); the CPU
figures of such a run include the profiler's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

# The tabs' sessions are signed with the server's key: this process uses the same one. The
# counters and cached answers go to Redis database 7 (REDIS_LIVE_DB), away from what tests and
# other benches clear in database 0; the server started below inherits both.
REDIS_PORT = os.environ.get("GROWALERT_REDIS_PORT", "16379")
common.setup_django(
    env={
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", common.BENCH_SECRET_KEY),
        "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/{os.environ.get('REDIS_LIVE_DB', '7')}",
        "SOURCES_ALLOW_PRIVATE_ADDRESSES": "true",  # the customers' test InfluxDB, on loopback
    }
)

import httpx
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
)
from django.contrib.sessions.backends.db import SessionStore

from growalert.pages.live import RENEW_SECONDS
from monitors import live, services
from monitors.models import Monitor

PORT = int(os.environ.get("BENCH_LIVE_PORT", "26801"))
BASE = f"http://127.0.0.1:{PORT}"
DATABASE = "bench_live"
FULL_EVERY = 60.0  # static/js/live.js
CHART_GAP = 3.0  # static/js/chart.js


# ---------------------------------------------------------------- set-up


def account(monitors: int) -> tuple[object, list[Monitor]]:
    common.seed_devices(DATABASE, monitors, lambda d: 20.0 + d % 7)
    owner, source = common.customer_source("bench-live", DATABASE)
    created = Monitor.objects.bulk_create(
        common.monitor(owner, source, f"bench-live {i:03d}", f"dev-{i}", critical=30.0)
        for i in range(monitors)
    )
    return owner, created


def sessions(owner: object, count: int) -> list[str]:
    """``count`` signed-in sessions of ``owner`` (one per tab, as separate browsers have)."""
    keys = []
    for _ in range(count):
        store = SessionStore()
        store[SESSION_KEY] = str(owner.pk)  # type: ignore[attr-defined]
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = owner.get_session_auth_hash()  # type: ignore[attr-defined]
        store.create()
        keys.append(store.session_key or "")
    return keys


def start_server(static_root: str, profiles: str | None = None) -> subprocess.Popen[bytes]:
    """The web server as scripts/run_all.sh runs it; with ``profiles`` (a directory), profiling
    each worker's WSGI calls there (bench/profiled_wsgi.py)."""
    env = common.production_env(
        DJANGO_STATIC_ROOT=static_root, **({"BENCH_PROFILE_DIR": profiles} if profiles else {})
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=common.ROOT,
        env=env,
        check=True,
    )
    log = (common.LOG_DIR / "bench_live_web.log").open("wb")
    app = "bench.profiled_wsgi:application" if profiles else None
    server = common.start_web_server(PORT, env, workers=2, threads=4, log=log, app=app)
    common.wait_ready(BASE)
    return server


# ---------------------------------------------------------------- CPU of process trees


def roots(server: subprocess.Popen[bytes], charts: bool) -> dict[str, list[int]]:
    """The web server, Postgres and Redis: what a poll can cost, and InfluxDB when monitor pages
    fetch their charts (live answers have none)."""
    found = common.service_roots({"web": [server.pid]})
    return {name: pids for name, pids in found.items() if charts or name != "influxd"}


cpu = common.cpu_by_tree


# ---------------------------------------------------------------- the tabs


class Tab:
    """One open page: a keep-alive HTTP/1.1 connection of its own, its session cookie and its
    token. Requests are written by hand (asyncio streams), so 100 tabs cost this process little
    and what is measured is the server."""

    def __init__(
        self, session: str, path: str, chart: str | None, monitor_id: int | None = None
    ) -> None:
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
        self.path = path
        self.chart = chart  # a monitor page's chart URL, fetched after each full answer
        self.monitor_id = monitor_id  # a monitor page's monitor (its version is "every.own")
        self.token = ""
        self.version = "0"
        self.token_at = self.full_at = self.chart_at = 0.0
        self.seen: dict[str, float] = {}  # version -> when this tab first received it
        self.statuses: dict[str, int] = {}
        self.stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def count(self, kind: str) -> None:
        self.statuses[kind] = self.statuses.get(kind, 0) + 1

    async def run(self, period: float, until: float) -> None:
        await asyncio.sleep(random.uniform(0, period))
        while time.monotonic() < until:
            try:
                await self.poll()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.count("retried")  # a closed keep-alive connection: again
                self.stream = None
                continue
            await asyncio.sleep(period)
        if self.stream:
            self.stream[1].close()

    async def poll(self) -> None:
        now = time.monotonic()
        if now - self.token_at >= RENEW_SECONDS:
            seen, kind = None, "renew"  # Django answers, with a new token
        elif now - self.full_at >= FULL_EVERY:
            seen, kind = '"refresh"', "refresh"
        else:
            seen, kind = f'"{self.version}"', "poll"
        status, headers, body = await self.get(f"{self.path}?t={self.token}", seen)
        self.count(f"{kind} {status}")
        if status != 200:
            return
        previous, self.version = self.version, headers["etag"].strip('"')
        self.seen.setdefault(self.version, time.monotonic())
        self.full_at = time.monotonic()
        if body.startswith(b'{"token":'):
            self.token, self.token_at = json.loads(body)["token"], time.monotonic()
        moved = self.version != previous  # not the minute's refresh of the same version
        if self.chart and moved and time.monotonic() - self.chart_at >= CHART_GAP:
            self.chart_at = time.monotonic()
            status, _, _ = await self.get(self.chart, None)
            self.count(f"chart {status}")

    async def get(self, target: str, seen: str | None) -> tuple[int, dict[str, str], bytes]:
        if self.stream is None:
            self.stream = await asyncio.open_connection("127.0.0.1", PORT)
        reader, writer = self.stream
        condition = f"If-None-Match: {seen}\r\n" if seen else ""
        writer.write(
            (
                f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Cookie: {self.cookie}\r\n{condition}Accept: application/json\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            writer.close()
            self.stream = None
        return status, headers, body


async def first_answers(tabs: list[Tab]) -> None:
    """Each tab's token and version, as its page load gives them."""
    async with httpx.AsyncClient(base_url=BASE, timeout=30) as client:
        for tab in tabs:
            response = await client.get(tab.path, headers={"Cookie": tab.cookie})
            response.raise_for_status()
            body = response.json()
            tab.token, tab.version = body["token"], str(body["version"])
            tab.token_at = tab.full_at = time.monotonic()


Change = tuple[float, int, int, str]  # started, monitor id, dashboard version, its page's


async def changes(
    owner_id: int, monitors: list[Monitor], every: float, until: float
) -> list[Change]:
    made: list[Change] = []
    while every > 0 and time.monotonic() + every < until - 3:
        await asyncio.sleep(every)
        monitor = random.choice(monitors)
        started = time.monotonic()
        await asyncio.to_thread(_toggle, monitor)
        page = live.monitor_version(owner_id, monitor.pk) or "0.0"
        made.append((started, monitor.pk, live.version(owner_id) or 0, page))
    return made


def _reached(seen: str, wanted: str) -> bool:
    """A version at least as new as ``wanted`` ("12", or a monitor page's "every.own")."""
    return all(int(a) >= int(b) for a, b in zip(seen.split("."), wanted.split("."), strict=True))


def when_seen(tab: Tab, change: Change) -> float | bool | None:
    """When ``tab`` first had ``change`` (None: never; False: not its page's change)."""
    _, monitor_id, dashboard, page = change
    if tab.monitor_id is not None and tab.monitor_id != monitor_id:
        return False  # another monitor's change: this page rightly does not move
    wanted = page if tab.monitor_id is not None else str(dashboard)
    return min((w for ver, w in tab.seen.items() if _reached(ver, wanted)), default=None)


def _toggle(monitor: Monitor) -> None:
    monitor.refresh_from_db()
    services.monitor_set_enabled(monitor=monitor, enabled=not monitor.enabled)
    from django.db import connection

    connection.close()


async def run_tabs(
    tabs: list[Tab], seconds: float, period: float, change: tuple[int, list[Monitor], float]
) -> list[Change]:
    until = time.monotonic() + seconds
    owner_id, monitors, every = change
    made = asyncio.ensure_future(changes(owner_id, monitors, every, until))
    await asyncio.gather(made, *(t.run(period, until) for t in tabs))
    return made.result()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tabs", type=int, default=100)
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--every",
        type=float,
        default=5,
        help="seconds between state changes (0: none, polling only)",
    )
    parser.add_argument("--period", type=float, default=1.5, help="poll period of a tab (s)")
    parser.add_argument(
        "--monitor-tabs", type=int, default=0, help="tabs on a monitor page (with its chart)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print the web workers' merged WSGI profile (slower: compare no CPU figure)",
    )
    args = parser.parse_args()

    owner, monitors = account(args.monitors)
    keys = sessions(owner, args.tabs)
    profiles = tempfile.mkdtemp(prefix="bench-live-profile-") if args.profile else None
    with tempfile.TemporaryDirectory(prefix="bench-live-static-") as static_root:
        server = start_server(static_root, profiles)
        try:
            groups = roots(server, charts=args.monitor_tabs > 0)
            tabs = [
                Tab(key, f"/app/live/monitors/{m.pk}", f"/app/monitors/{m.pk}/chart", m.pk)
                if i < args.monitor_tabs
                else Tab(key, "/app/live/dashboard", None)
                for i, (key, m) in enumerate(zip(keys, monitors * args.tabs, strict=False))
            ]
            asyncio.run(first_answers(tabs))

            idle0, t0 = cpu(groups), time.monotonic()
            time.sleep(min(args.seconds, 30))
            idle1, t1 = cpu(groups), time.monotonic()

            busy0, b0 = cpu(groups), time.monotonic()
            made = asyncio.run(
                run_tabs(tabs, args.seconds, args.period, (owner.pk, monitors, args.every))  # type: ignore[attr-defined]
            )
            busy1, b1 = cpu(groups), time.monotonic()
        finally:
            server.terminate()
            server.wait(timeout=30)
    load = os.getloadavg()

    idle = {g: (idle1[g] - idle0[g]) / (t1 - t0) * 100 for g in groups}
    busy = {g: (busy1[g] - busy0[g]) / (b1 - b0) * 100 for g in groups}
    requests: dict[str, int] = {}
    for tab in tabs:
        for status, n in tab.statuses.items():
            requests[status] = requests.get(status, 0) + n
    latencies: list[float] = []
    missed = 0
    per_change_max: list[float] = []
    firsts: list[float] = []
    on_monitor_pages = 0
    for change in made:
        started = change[0]
        seen = [when_seen(t, change) for t in tabs]
        on_monitor_pages += sum(
            1 for t, s in zip(tabs, seen, strict=True) if t.monitor_id and s is not False
        )
        missed += sum(1 for s in seen if s is None)
        got = [s - started for s in seen if isinstance(s, float)]
        latencies += got
        if got:
            per_change_max.append(max(got))
            firsts.append(min(got))

    print(
        f"bench_live: {args.tabs} tabs polling every {args.period:g} s, {args.monitors} monitors, "
        f"{args.seconds:g} s, a state change every {args.every:g} s ({len(made)} changes); "
        f"{args.monitor_tabs} of the tabs on a monitor page with its chart"
    )
    total = sum(requests.values())
    print(
        f"  requests {total} ({total / (b1 - b0):.0f}/s): "
        + ", ".join(f"{kind}: {n}" for kind, n in sorted(requests.items()))
    )
    print(
        "  CPU, % of one core   "
        + "  ".join(f"{g} {busy[g]:.1f} (idle {idle[g]:.1f})" for g in groups)
    )
    spent = sum(busy.values()) - sum(idle.values())
    print(
        f"  total {sum(busy.values()):.1f} % while polling, {sum(idle.values()):.1f} % idle: "
        f"{spent:.1f} % of one core spent on live updates"
    )
    print(
        f"  change committed -> tab has it: p50 {pct(latencies, 50):.2f} s, "
        f"p99 {pct(latencies, 99):.2f} s, max {max(latencies, default=0):.2f} s; "
        f"all tabs it concerns have it: p99 {pct(per_change_max, 99):.2f} s over "
        f"{len(per_change_max)} changes; (tab, change) pairs never seen: {missed}; "
        f"pairs on a monitor page of the changed monitor: {on_monitor_pages}"
    )
    print("  first tab to have each change: " + ", ".join(f"{f:.2f} s" for f in firsts))
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores, shared)")
    if profiles:
        print_profiles(Path(profiles))


def print_profiles(folder: Path) -> None:
    """The workers' profiles merged (first answers and polling window together)."""
    import io
    import pstats
    import shutil

    found = sorted(folder.glob("worker-*.prof"))
    if found:
        out = io.StringIO()
        stats = pstats.Stats(str(found[0]), stream=out)
        for extra in found[1:]:
            stats.add(str(extra))
        stats.sort_stats("cumulative").print_stats(60)
        print(out.getvalue())
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
