"""Live pages at 100 open dashboards (issue 20, point 3).

One comped account with 200 monitors; gunicorn as ``scripts/run_all.sh`` runs it (2 workers x 4
threads, production settings, static files collected to a temporary directory). 100 simulated
tabs poll the dashboard's live URL exactly as static/js/live.js does: one request per tab about
every 1.5 s (random phase, the next one a period after the answer), ``If-None-Match`` with the
version last seen, each tab with its own signed-in session and keep-alive connection.

Every ``--every`` seconds one monitor is paused or resumed through ``monitors.services`` (a real
state change: incident, outbox, the owner's counter moved on commit). For each change: the time
from just before the service call to the moment each tab received the new version.

Printed: requests, 304s and full answers; the CPU (utime + stime) of gunicorn (master and
workers), Postgres (postmaster and backends) and Redis during the polling window, as % of one
core, and the same with the tabs idle for the same time (what the updates cost is the
difference); latency p50 / p99 / max over all (tab, change) pairs; the load average.

    .venv/bin/python bench/bench_live.py [--tabs 100] [--monitors 200] [--seconds 60] [--every 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time

import common

# The tabs' sessions are signed with the server's key: this process uses the same one. The
# counters and cached answers go to Redis database 7 (REDIS_LIVE_DB), away from what tests and
# other benches clear in database 0; the server started below inherits both.
REDIS_PORT = os.environ.get("GROWALERT_REDIS_PORT", "16379")
common.setup_django(
    env={
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", common.BENCH_SECRET_KEY),
        "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/{os.environ.get('REDIS_LIVE_DB', '7')}",
    }
)

import httpx
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.sessions.backends.db import SessionStore

from billing.gating import comp
from monitors import live, services
from monitors.models import Monitor, Source

PORT = int(os.environ.get("BENCH_LIVE_PORT", "26801"))
BASE = f"http://127.0.0.1:{PORT}"


# ---------------------------------------------------------------- set-up


def account(monitors: int) -> tuple[object, list[Monitor]]:
    owner, _ = get_user_model().objects.get_or_create(username="bench-live")
    comp(owner)
    Monitor.objects.filter(owner=owner).delete()
    source, _ = Source.objects.update_or_create(
        owner=owner,
        name="bench-live",
        defaults={"url": "http://127.0.0.1:9", "database": "bench_live"},
    )
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


def start_server(static_root: str) -> subprocess.Popen[bytes]:
    env = common.production_env(DJANGO_STATIC_ROOT=static_root)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=common.ROOT,
        env=env,
        check=True,
    )
    log = (common.LOG_DIR / "bench_live_gunicorn.log").open("wb")
    server = common.start_gunicorn(PORT, env, workers=2, threads=4, log=log)
    common.wait_ready(BASE)
    return server


# ---------------------------------------------------------------- CPU of process trees


def roots(server: subprocess.Popen[bytes]) -> dict[str, list[int]]:
    """gunicorn, Postgres and Redis: what a poll can cost (no InfluxDB: live answers have no
    charts)."""
    found = common.service_roots({"gunicorn": [server.pid]})
    return {name: pids for name, pids in found.items() if name != "influxd"}


cpu = common.cpu_by_tree


# ---------------------------------------------------------------- the tabs


class Tab:
    """One open dashboard: a keep-alive HTTP/1.1 connection of its own and its session cookie.
    Requests are written by hand (asyncio streams), so 100 tabs cost this process little and
    what is measured is the server."""

    def __init__(self, session: str, token: str, version: int) -> None:
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
        self.token = token
        self.version = version
        self.seen: dict[int, float] = {}  # version -> when this tab first received it
        self.statuses: dict[int, int] = {}
        self.stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def run(self, period: float, until: float) -> None:
        await asyncio.sleep(random.uniform(0, period))
        while time.monotonic() < until:
            try:
                status, headers = await self.get()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.statuses[0] = self.statuses.get(0, 0) + 1  # closed keep-alive: again
                self.stream = None
                continue
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self.version = int(headers["etag"].strip('"'))
                self.seen.setdefault(self.version, time.monotonic())
            await asyncio.sleep(period)
        if self.stream:
            self.stream[1].close()

    async def get(self) -> tuple[int, dict[str, str]]:
        if self.stream is None:
            self.stream = await asyncio.open_connection("127.0.0.1", PORT)
        reader, writer = self.stream
        writer.write(
            (
                f"GET /app/live/dashboard?t={self.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f'Cookie: {self.cookie}\r\nIf-None-Match: "{self.version}"\r\n'
                "Accept: application/json\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
        await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            writer.close()
            self.stream = None
        return status, headers


async def first_answer(session: str) -> tuple[str, int]:
    async with httpx.AsyncClient(base_url=BASE, timeout=30) as client:
        response = await client.get(
            "/app/live/dashboard", cookies={settings.SESSION_COOKIE_NAME: session}
        )
        response.raise_for_status()
        body = response.json()
        return body["token"], body["version"]


async def changes(
    owner_id: int, monitors: list[Monitor], every: float, until: float
) -> dict[int, float]:
    made: dict[int, float] = {}  # version -> when the change started
    while every > 0 and time.monotonic() + every < until - 3:
        await asyncio.sleep(every)
        monitor = random.choice(monitors)
        started = time.monotonic()
        await asyncio.to_thread(_toggle, monitor)
        made[live.version(owner_id) or 0] = started
    return made


def _toggle(monitor: Monitor) -> None:
    monitor.refresh_from_db()
    services.monitor_set_enabled(monitor=monitor, enabled=not monitor.enabled)
    from django.db import connection

    connection.close()


async def run_tabs(
    tabs: list[Tab], seconds: float, period: float, change: tuple[int, list[Monitor], float]
) -> dict[int, float]:
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
    args = parser.parse_args()

    owner, monitors = account(args.monitors)
    keys = sessions(owner, args.tabs)
    with tempfile.TemporaryDirectory(prefix="bench-live-static-") as static_root:
        server = start_server(static_root)
        try:
            groups = roots(server)
            token, version = asyncio.run(first_answer(keys[0]))
            tabs = [Tab(k, token, version) for k in keys]

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
    requests: dict[int, int] = {}
    for tab in tabs:
        for status, n in tab.statuses.items():
            requests[status] = requests.get(status, 0) + n
    latencies: list[float] = []
    missed = 0
    per_change_max: list[float] = []
    firsts: list[float] = []
    for v, started in made.items():
        seen = [min((w for ver, w in t.seen.items() if ver >= v), default=None) for t in tabs]
        missed += sum(1 for s in seen if s is None)
        got = [s - started for s in seen if s is not None]
        latencies += got
        if got:
            per_change_max.append(max(got))
            firsts.append(min(got))

    print(
        f"bench_live: {args.tabs} tabs polling every {args.period:g} s, {args.monitors} monitors, "
        f"{args.seconds:g} s, a state change every {args.every:g} s ({len(made)} changes)"
    )
    total = sum(requests.values())
    print(
        f"  requests {total} ({total / (b1 - b0):.0f}/s): "
        + ", ".join(f"{status or 'retried'}: {n}" for status, n in sorted(requests.items()))
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
        f"all {args.tabs} tabs have it: p99 {pct(per_change_max, 99):.2f} s over "
        f"{len(per_change_max)} changes; (tab, change) pairs never seen: {missed}"
    )
    print("  first tab to have each change: " + ", ".join(f"{f:.2f} s" for f in firsts))
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores, shared)")


if __name__ == "__main__":
    main()
