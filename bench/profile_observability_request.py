"""CPU per API request with operations off and on, in one process per mode, without a server:
what bench_observability.py's "API CPU per 1,000 requests" measures, less noisy, and profiled.

Each mode runs in a fresh process (tracing is set up at import, as in a web server worker) that
imports growalert.wsgi with the mode's environment (DEBUG off, as bench_observability.py's web
server) and calls its WSGI application with ``GET /monitors?limit=50`` (token auth) REQUESTS
times after a warm-up, timing ``time.process_time`` around the loop: every thread of the
process is counted, the span exporter's included. The modes alternate for ROUNDS rounds (the
order reversed every other round) and the medians are printed. On a shared machine one
process's CPU time still swings with cache and frequency contention, less than wrk's rates.

    .venv/bin/python bench/profile_observability_request.py [--rounds=5] [--requests=2000]
        [--modes=off,logs,traces,both,out,in] [--profile=MODE]

``out`` and ``in`` are tracing with every request sampled out (ratio 0) and in (ratio 1).

A mode may name another source tree: ``--modes=traces,traces@/tmp/before`` runs the second
from /tmp/before (a copy of an earlier commit with this script and a ``.venv`` link in it),
to compare a change before and after in alternating rounds.

``--profile=traces`` also writes a cProfile of that mode's loop, in an extra round that is not
counted (cProfile slows it), and prints its top entries by cumulative and by own time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tracing's sampling ratio of each mode that has tracing on: "out" is what nine requests in ten
# pay at 10 %, "in" what the tenth pays.
RATIOS = {"traces": "0.1", "both": "0.1", "out": "0", "in": "1"}


def option(name: str, default: str) -> str:
    prefix = f"--{name}="
    return next((a[len(prefix) :] for a in sys.argv[1:] if a.startswith(prefix)), default)


def child(token: str, requests: int, profile_path: str) -> None:
    """In the mode's process: the WSGI application, called ``requests`` times."""
    import io
    import time

    sys.path.insert(0, ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")
    from growalert.wsgi import application

    def environ() -> dict[str, Any]:
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/monitors",
            "QUERY_STRING": "limit=50",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,  # as granian's environ
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }

    statuses: list[str] = []

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    def one() -> None:
        body = application(environ(), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()  # what granian does: request_finished, the span's end

    for _ in range(200):  # warm-up: connections, caches, first imports
        one()
    profile = None
    if profile_path:
        import cProfile

        profile = cProfile.Profile(time.process_time)  # CPU, not waits
        profile.enable()
    started = time.process_time()
    for _ in range(requests):
        one()
    cpu = time.process_time() - started
    if profile is not None:
        profile.disable()
        profile.dump_stats(profile_path)
    bad = [s for s in statuses if not s.startswith("200")]
    print(json.dumps({"us_per_request": cpu * 1e6 / requests, "not_200": len(bad)}))


def profile_path(mode: str) -> str:
    name = mode.replace("@", "-").replace("/", "_")
    return os.path.join(ROOT, ".local", "log", f"observability-{name}.prof")


def mode_env(mode: str, endpoint: str) -> dict[str, str]:
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import common

    drop = ("LOG_FORMAT", "SENTRY_DSN", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER_ARG")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if mode in ("logs", "both"):
        env["LOG_FORMAT"] = "json"
    if mode in RATIOS:
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER_ARG": RATIOS[mode]}
    return common.production_env(env, API_RATE_LIMIT="100000000/min")


def main() -> None:
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import bench_api  # sets Django up; seed()

    from tests.observability.receivers import OtlpReceiver

    rounds = int(option("rounds", "5"))
    requests = int(option("requests", "2000"))
    modes = option("modes", "off,traces").split(",")
    profiled = option("profile", "")
    token = bench_api.seed()
    otlp = OtlpReceiver()
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    print(f"{requests:,} requests a round, {rounds} rounds; load {os.getloadavg()}")
    # Round 0, when asked: the profiled modes under cProfile, not counted (it slows them).
    for i in range(0 if profiled else 1, rounds + 1):
        order = modes if i % 2 == 1 else list(reversed(modes))
        for mode in order if i else [m for m in modes if m in profiled.split(",")]:
            path = "" if i else profile_path(mode)
            setting, _, tree = mode.partition("@")
            out = subprocess.run(
                [
                    sys.executable,
                    os.path.join(tree or ROOT, "bench", os.path.basename(__file__)),
                    "--child",
                    token,
                    str(requests),
                    path,
                ],
                env=mode_env(setting, otlp.endpoint),
                cwd=tree or ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            if result["not_200"]:
                raise SystemExit(f"{mode}: {result['not_200']} answers were not 200")
            if not i:
                continue
            cpu[mode].append(result["us_per_request"])
            print(
                f"  round {i} {mode:<8}: {cpu[mode][-1]:,.0f} µs CPU per request,"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    base = statistics.median(cpu[modes[0]])
    for mode in modes:
        median = statistics.median(cpu[mode])
        print(f"{mode:<8} median {median:,.0f} µs per request  ({median / base:.3f} x {modes[0]})")
    print(f"spans received: {len(otlp.spans):,}")
    otlp.close()
    if profiled:
        print_profiles(profiled.split(","), requests)


def print_profiles(modes: list[str], requests: int) -> None:
    """Python function calls per request of each mode profiled (the main thread's: a figure
    the machine's load does not move, only the 10 % draw); then, for one mode its top
    entries, for more the functions the second calls more than the first, or longer."""
    import pstats

    for mode in modes:
        calls = pstats.Stats(profile_path(mode)).total_calls / requests  # type: ignore[attr-defined]
        print(f"{mode}: {calls:,.0f} function calls per request")

    if len(modes) == 1:
        stats = pstats.Stats(profile_path(modes[0]))
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        return
    base, other = (pstats.Stats(profile_path(m)).stats for m in modes[:2])  # type: ignore[attr-defined]
    rows = []
    for key, (_, calls, tottime, _, _) in other.items():
        _, calls0, tottime0, _, _ = base.get(key, (0, 0, 0.0, 0, {}))
        rows.append((tottime - tottime0, calls - calls0, key))
    rows.sort(reverse=True)
    print(f"{'own s more':>10} {'calls more':>10}  function ({modes[1]} vs {modes[0]})")
    for more, calls, (path, line, name) in rows[:60]:
        print(f"{more:>10.3f} {calls:>10,}  {path.split('site-packages/')[-1]}:{line}({name})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
    else:
        main()
