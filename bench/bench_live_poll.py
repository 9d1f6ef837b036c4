"""What one unchanged live poll (a 304) costs the web server, and where it goes (issue 20.3).

bench_live.py measures the whole live-page load; this bench isolates its commonest request:
``--tabs`` simulated tabs (bench_live's, each with its own session, token and keep-alive
connection) poll ``/app/live/dashboard`` every ``--period`` seconds with the version they have,
nothing changes, so every answer is a 304 given in front of Django
(growalert/pages/live_wsgi.py). gunicorn runs as scripts/run_all.sh runs it (2 workers x 4
threads).

Printed: requests and their rate; gunicorn's CPU per request (ms), idle CPU subtracted, split
into the workers' main threads (gthread's poller: accepting, keep-alive bookkeeping, handing
connections to the thread pool and back) and their pool threads (parsing, the WSGI app,
writing the answer); the load average. ``--access-log`` adds gunicorn's access log (as
``make run`` has it), ``--profile`` prints the pool threads' merged cProfile
(bench/gunicorn_profile.py; the figures of such a run include the profiler's cost).

    .venv/bin/python bench/bench_live_poll.py [--tabs 100] [--period 1.5] [--seconds 30]
        [--access-log] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_live  # sets Django up as bench_live does (same Redis database, same key)
import common


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of one process's main thread and of its other threads."""
    main = others = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / common.TICKS
        if int(tid) == pid:
            main += seconds
        else:
            others += seconds
    return {"main": main, "pool": others}


def workers_cpu(server: subprocess.Popen[bytes]) -> dict[str, float]:
    """The gunicorn master's CPU and its workers' main and pool threads'."""
    totals = {"master": 0.0, "main": 0.0, "pool": 0.0}
    totals["master"] = sum(thread_cpu(server.pid).values())
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := common._stat(int(entry))) and stat[0] == server.pid:
            for part, seconds in thread_cpu(int(entry)).items():
                totals[part] += seconds
    return totals


async def poll(tabs: list[bench_live.Tab], seconds: float, period: float) -> None:
    until = time.monotonic() + seconds

    async def run(tab: bench_live.Tab) -> None:
        await asyncio.sleep(random.uniform(0, period))
        while time.monotonic() < until:
            status, _, _ = await tab.get(f"{tab.path}?t={tab.token}", f'"{tab.version}"')
            tab.count(str(status))
            await asyncio.sleep(period)
        if tab.stream:
            tab.stream[1].close()

    await asyncio.gather(*(run(t) for t in tabs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tabs", type=int, default=100)
    parser.add_argument("--period", type=float, default=1.5)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--access-log", action="store_true", help="as make run has it")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--floor", action="store_true", help="gunicorn alone: bench/live_poll_floor.py answers"
    )
    args = parser.parse_args()

    owner, _ = bench_live.account(5)
    keys = bench_live.sessions(owner, args.tabs)
    profiles = Path(tempfile.mkdtemp(prefix="bench-live-poll-profile-"))
    with tempfile.TemporaryDirectory(prefix="bench-live-poll-static-") as static_root:
        env = common.production_env(DJANGO_STATIC_ROOT=static_root, BENCH_PROFILE_DIR=str(profiles))
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
            cwd=common.ROOT,
            env=env,
            check=True,
        )
        log = (common.LOG_DIR / "bench_live_poll_gunicorn.log").open("wb")
        config = Path(__file__).resolve().parent / "gunicorn_profile.py"
        server = common.start_gunicorn(
            bench_live.PORT,
            env,
            workers=2,
            threads=4,
            log=log,
            config=config if args.profile else None,
            extra=["--access-logfile", "-"] if args.access_log else [],
            app="bench.live_poll_floor:application" if args.floor else "growalert.wsgi",
        )
        common.wait_ready(bench_live.BASE)
        try:
            tabs = [bench_live.Tab(key, "/app/live/dashboard", None) for key in keys]
            if not args.floor:
                asyncio.run(bench_live.first_answers(tabs))
            idle0, t0 = workers_cpu(server), time.monotonic()
            time.sleep(10)
            idle1, t1 = workers_cpu(server), time.monotonic()
            busy0, b0 = workers_cpu(server), time.monotonic()
            asyncio.run(poll(tabs, args.seconds, args.period))
            busy1, b1 = workers_cpu(server), time.monotonic()
        finally:
            server.terminate()
            server.wait(timeout=30)
    load = os.getloadavg()
    statuses: dict[str, int] = {}
    for tab in tabs:
        for status, n in tab.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    total = sum(statuses.values())
    spent = {
        part: (busy1[part] - busy0[part]) - (idle1[part] - idle0[part]) / (t1 - t0) * (b1 - b0)
        for part in busy0
    }
    per = {part: seconds / total * 1000 for part, seconds in spent.items()}
    print(
        f"bench_live_poll: {args.tabs} tabs every {args.period:g} s for {args.seconds:g} s"
        f"{', access log' if args.access_log else ''}{', profiled' if args.profile else ''}"
        f"{', gunicorn alone (bench/live_poll_floor.py)' if args.floor else ''}"
    )
    print(
        f"  requests {total} ({total / (b1 - b0):.0f}/s): "
        + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    )
    print(
        f"  gunicorn CPU per request {sum(per.values()):.3f} ms: workers' main threads "
        f"{per['main']:.3f}, pool threads {per['pool']:.3f}, master {per['master']:.3f}; "
        f"{sum(spent.values()) / (b1 - b0) * 100:.1f} % of one core"
    )
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores, shared)")
    if args.profile:
        found = list(profiles.glob("worker-*.prof"))
        if found:
            stats = pstats.Stats(str(found[0]))
            for extra in found[1:]:
                stats.add(str(extra))
            out = io.StringIO()
            stats.stream = out  # type: ignore[attr-defined]
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(30)
            print(out.getvalue())
    shutil.rmtree(profiles, ignore_errors=True)


if __name__ == "__main__":
    main()
