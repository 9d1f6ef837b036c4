"""What one unchanged live poll (a 304) costs the web server, and where it goes (issue 20.3).

bench_live.py measures the whole live-page load; this bench isolates its commonest request:
``--tabs`` simulated tabs (bench_live's, each with its own session, token and keep-alive
connection) poll ``/app/live/dashboard`` every ``--period`` seconds with the version they have,
nothing changes, so every answer is a 304 given in front of Django
(growalert/pages/live_wsgi.py). The web server (granian, ``python -m growalert.serve``) runs as
scripts/run_all.sh runs it (2 workers x 4 threads).

Printed: requests and their rate; the web server's CPU per request (ms), idle CPU subtracted,
split into the workers' runtime threads (granian's Rust event loop: accepting, HTTP parsing,
keep-alive, writing the answer), their blocking threads (the WSGI application, in Python), the
rest of the workers (their main threads, idle once started) and the master; the load average.
``--access-log`` adds granian's access log (as ``make run`` has it: the unchanged polls' lines
are built, then left out by growalert.serve's filter), ``--profile`` prints the blocking
threads' merged cProfile of the WSGI application (bench/profiled_wsgi.py; granian's HTTP
handling is not in it; the figures of such a run include the profiler's cost). ``--floor``
serves bench/live_poll_floor.py (a 304 with no work) in place of growalert.wsgi: what the server
alone costs per poll.

    .venv/bin/python bench/bench_live_poll.py [--tabs 100] [--period 1.5] [--seconds 30]
        [--access-log] [--profile] [--floor]
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

RUNTIME = "tokio-rt-worker"  # the name granian gives its runtime threads


def _times(stat: str) -> tuple[str, int, float]:
    """(name, start time, CPU seconds: utime + stime) of a /proc stat line."""
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return name, int(fields[19]), (int(fields[11]) + int(fields[12])) / common.TICKS


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of one granian worker: "runtime" (its Rust runtime thread: the first thread
    named tokio-rt-worker, growalert.serve leaving granian's runtime threads at 1), "main" (the
    main thread, waiting for the stop signal once the worker has started) and "pool" (the rest
    of the process: the blocking threads that call the WSGI application, started after the
    runtime thread, named "python" when the main thread starts them and tokio-rt-worker when the
    runtime does; taken as the process's total less the other two, so that a blocking thread
    granian ends when idle still counts)."""
    try:
        _, _, total = _times(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return {"runtime": 0.0, "pool": 0.0, "main": 0.0}
    threads: list[tuple[int, int, str, float]] = []  # (start time, tid, name, CPU seconds)
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name, start, seconds = _times(Path(f"/proc/{pid}/task/{tid}/stat").read_text())
        except OSError:
            continue
        threads.append((start, int(tid), name, seconds))
    main = sum(seconds for _, tid, _, seconds in threads if tid == pid)
    runtime = next(
        (seconds for _, tid, name, seconds in sorted(threads) if name == RUNTIME and tid != pid),
        0.0,
    )
    return {"runtime": runtime, "pool": total - runtime - main, "main": main}


def workers_cpu(server: subprocess.Popen[bytes]) -> dict[str, float]:
    """The web server master's CPU and its workers' runtime, pool and main threads'."""
    totals = {"master": 0.0, "runtime": 0.0, "pool": 0.0, "main": 0.0}
    totals["master"] = _times(Path(f"/proc/{server.pid}/stat").read_text())[2]
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
        "--floor", action="store_true", help="the server alone: bench/live_poll_floor.py answers"
    )
    args = parser.parse_args()

    owner, _ = bench_live.account(5)
    keys = bench_live.sessions(owner, args.tabs)
    profiles = Path(tempfile.mkdtemp(prefix="bench-live-poll-profile-"))
    with tempfile.TemporaryDirectory(prefix="bench-live-poll-static-") as static_root:
        app = "bench.live_poll_floor:application" if args.floor else None
        env = common.production_env(
            DJANGO_STATIC_ROOT=static_root,
            BENCH_PROFILE_DIR=str(profiles),
            **({"BENCH_PROFILE_APP": app} if app and args.profile else {}),
        )
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
            cwd=common.ROOT,
            env=env,
            check=True,
        )
        log = (common.LOG_DIR / "bench_live_poll_web.log").open("wb")
        server = common.start_web_server(
            bench_live.PORT,
            env,
            workers=2,
            threads=4,
            log=log,
            app="bench.profiled_wsgi:application" if args.profile else app,
            extra=["--access-log"] if args.access_log else [],
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
        f"{', the server alone (bench/live_poll_floor.py)' if args.floor else ''}"
    )
    print(
        f"  requests {total} ({total / (b1 - b0):.0f}/s): "
        + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    )
    print(
        f"  web server (granian) CPU per request {sum(per.values()):.3f} ms: workers' runtime "
        f"threads {per['runtime']:.3f}, blocking threads {per['pool']:.3f}, main threads "
        f"{per['main']:.3f}, master {per['master']:.3f}; "
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
