"""Operations switched on vs off, in the same run: evaluations/s through real Celery workers and
API requests/s through the web server (granian) under wrk, each with the CPU the work took.

"on" is what docs/operations.md recommends for production: JSON logs (LOG_FORMAT=json, INFO)
and OpenTelemetry traces sampled at 10 % (OTEL_TRACES_SAMPLER_ARG=0.1), exported over OTLP/HTTP
to a receiver on loopback that parses every request (tests/observability/receivers.py). "off"
is the default: plain logs at INFO, no tracing. Sentry is left out (it costs nothing until an
error happens). Workers and the web server run as deployed: DEBUG off.

Both modes' worker (prefork, WORKERS processes, a queue each) and both web servers (``python -m
growalert.serve``: WORKERS workers of one WSGI thread each) are started once and stay up; the run is
PAIRS short off/on pairs, the order reversed every other pair, so the two halves of a pair see
nearly the same machine. Each pair's on/off ratio is one sample; the median and the spread of those
are reported, with each mode's median.

Evaluations: MONITORS monitors due at once, claimed and cut into batches here, one
``evaluate_monitors`` task per batch sent to the mode's worker; timed until every monitor has
applied the tick. The fresh monitors first go through SETTLE unmeasured ticks, alternately on
either worker: a new monitor with flap detection writes its whole row at each of its first ~20
checks, so early ticks cost several times a steady one (the earlier version of this bench
measured only those), and each worker's pool processes connect and keep the monitors resident.
The customers' InfluxDB holds a constant value per device for the next 90 minutes
(bench_pipeline.seed_steady_influx): every tick does the same work.
API: ``GET /monitors?limit=50`` with token auth, as in bench_api.py, SECONDS of wrk per half.

CPU (utime + stime, /proc) per 1,000 evaluations: the worker's process tree, and Postgres,
InfluxDB (the deployment's and the customers' influxd) and Redis (common.service_roots) while
that half ran; per 1,000 requests: the web server's tree (granian's master and workers) and
the same services. On a shared machine
the rates swing with what else runs; the CPU per unit of work much less, and its off/on is the
throughput ratio of a deployment whose workers are CPU-bound.

    .venv/bin/python bench/bench_observability.py [--monitors=10000] [--pairs=10] [--seconds=4]
        [--settle=24]

``BENCH_ON=logs`` or ``BENCH_ON=traces`` makes "on" only the JSON logs or only the traces.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import bench_api  # sets Django up (bench/common.py); wrk(), seed()
import bench_pipeline  # seed_influx(), seed_monitors(), make_due(), others()
import common
from django.conf import settings
from django.db import connection
from django.utils import timezone

from growalert.celery import app
from monitors.evaluate import dispatch
from monitors.models import Monitor
from tests import customer_influx
from tests.observability.receivers import OtlpReceiver, free_port

ROOT = common.ROOT
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
LOG = ROOT / ".local" / "log"
SLACK = timedelta(seconds=2)  # make_due: due 1 s ago; every tick of this round is after this


def option(name: str, default: int) -> int:
    prefix = f"--{name}="
    return next((int(a[len(prefix) :]) for a in sys.argv[1:] if a.startswith(prefix)), default)


def mode_env(on: bool, otlp: OtlpReceiver) -> dict[str, str]:
    drop = ("LOG_FORMAT", "SENTRY_DSN", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER_ARG")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if on:  # BENCH_ON=logs or =traces switches on one of the two, to see which costs what
        part = os.environ.get("BENCH_ON", "both")
        if part in ("both", "logs"):
            env |= {"LOG_FORMAT": "json"}
        if part in ("both", "traces"):
            env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    return env


def label(on: bool) -> str:
    return "on" if on else "off"


@contextmanager
def worker(on: bool, otlp: OtlpReceiver, queue: str) -> Iterator[int]:
    env = common.production_env(
        mode_env(on, otlp),
        CELERY_QUEUE=queue,
        SOURCES_ALLOW_PRIVATE_ADDRESSES="true",
        # a round is done when every row carries its tick: every evaluation writes its row
        EVALUATION_ROW_REFRESH_SECONDS="0",
    )
    log_path = LOG / f"bench-observability-worker-{label(on)}.log"
    out = open(log_path, "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "growalert",
            "worker",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--queues",
            queue,
            "--pool",
            "prefork",
            "--concurrency",
            str(WORKERS),
            "--hostname",
            f"bench-obs-{label(on)}-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "ready" not in Path(log_path).read_text(errors="replace"):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"the worker did not start: see {log_path}")
            time.sleep(0.2)
        yield process.pid
    finally:
        common.stop([(process, out)])


@contextmanager
def web(on: bool, otlp: OtlpReceiver) -> Iterator[tuple[str, int]]:
    port = free_port(28000 + (100 if on else 0))
    env = common.production_env(mode_env(on, otlp), API_RATE_LIMIT="100000000/min")
    log_path = LOG / f"bench-observability-web-{label(on)}.log"
    out = open(log_path, "wb")  # noqa: SIM115
    server = common.start_web_server(port, env, workers=WORKERS, threads=1, log=out)
    base = f"http://127.0.0.1:{port}"
    try:
        common.wait_ready(base)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(10)
        out.close()


SERVICES = ("postgres", "influxd", "redis")
Cpu = dict[str, float]


def cpu_now(pid: int) -> dict[str, float]:
    """CPU seconds so far of ``pid``'s tree ("work") and of each service."""
    return common.cpu_by_tree(common.service_roots({"work": [pid]}))


def per_thousand(before: dict[str, float], after: dict[str, float], units: float) -> Cpu:
    return {name: (after[name] - before[name]) * 1e6 / units for name in ("work", *SERVICES)}


def evaluations(ids: list[int], queue: str, pid: int) -> tuple[float, Cpu]:
    """One tick of every monitor through the worker on ``queue``: (evaluations/s, CPU ms per
    1,000 evaluations of the worker's tree and of each service)."""
    bench_pipeline.make_due(ids)
    cpu_before = cpu_now(pid)
    started = time.perf_counter()
    now = timezone.now()
    claimed = dispatch.claim_due(now=now, excluded_owner_ids=bench_pipeline.others())
    batches = dispatch.batches(
        claimed, size=settings.EVALUATION_BATCH_SIZE, spread=settings.EVALUATION_SPREAD
    )
    for batch in batches:
        app.send_task(
            "monitors.tasks.evaluate_monitors",
            args=[[(c.monitor_id, c.due_at.isoformat()) for c in batch]],
            queue=queue,
            routing_key=queue,
        )
    pending = Monitor.objects.filter(pk__in=ids).exclude(evaluated_due_at__gte=now - SLACK)
    deadline = time.monotonic() + 300
    while pending.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{pending.count()} monitors never evaluated")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    return len(ids) / elapsed, per_thousand(cpu_before, cpu_now(pid), len(ids))


def requests(base: str, pid: int, token: str, seconds: int) -> tuple[float, Cpu]:
    """wrk for ``seconds``: (requests/s, CPU ms per 1,000 requests of the web server's tree and
    of each service)."""
    auth = f"Authorization: Token {token}"
    cpu_before = cpu_now(pid)
    rps, _, _ = bench_api.wrk(f"{base}/monitors?limit=50", seconds, [auth])
    return rps, per_thousand(cpu_before, cpu_now(pid), rps * seconds)


@dataclass
class Samples:
    """One measure (a rate or a CPU figure) of both modes, pair by pair."""

    off: list[float] = field(default_factory=list)
    on: list[float] = field(default_factory=list)

    def add(self, on: bool, value: float) -> None:
        (self.on if on else self.off).append(value)

    def ratios(self) -> list[float]:
        return [b / a for a, b in zip(self.off, self.on, strict=False) if a]

    def row(self, name: str) -> str:
        ratios = self.ratios()
        off, on = statistics.median(self.off), statistics.median(self.on)
        medians = f"{name:<34}{off:>9,.0f}{on:>9,.0f}"
        if not ratios:
            return medians
        return (
            f"{medians}"
            f"{statistics.median(ratios):>8.2f}   {min(ratios):.2f}-{max(ratios):.2f}"
            f"  (quartiles {quartiles(ratios)})"
        )


def quartiles(values: list[float]) -> str:
    if len(values) < 4:
        return "-"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:.2f}-{q3:.2f}"


def measure(
    name: str, pairs: int, half: Callable[[bool], tuple[float, Cpu]], unit: str
) -> dict[str, Samples]:
    """``pairs`` off/on pairs of ``half`` (the order reversed every other pair)."""
    found: dict[str, Samples] = {}
    for i in range(pairs):
        for on in (False, True) if i % 2 == 0 else (True, False):
            rate, cpu = half(on)
            found.setdefault(f"{name}/s", Samples()).add(on, rate)
            for part, value in cpu.items():
                found.setdefault(part, Samples()).add(on, value)
            found.setdefault("all", Samples()).add(on, sum(cpu.values()))
            print(
                f"  pair {i + 1:>2} {label(on):<3}: {rate:,.0f} {name}/s, CPU ms per 1,000 {unit}:"
                f" {' '.join(f'{k} {v:.0f}' for k, v in cpu.items())},"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    return found


def report(title: str, found: dict[str, Samples], unit: str) -> None:
    print(f"{title:<34}{'off':>9}{'on':>9}{'on/off':>8}   pairs' on/off: min-max")
    for key, samples in found.items():
        name = key if key.endswith("/s") else f"CPU ms/1,000 {unit}: {key}"
        print(samples.row(name))


def main() -> None:
    monitors = option("monitors", 10_000)
    pairs = option("pairs", 10)
    seconds = option("seconds", 4)
    otlp = OtlpReceiver()
    queues = {on: f"bench-observability-{label(on)}-{os.getpid()}" for on in (False, True)}
    bench_pipeline.seed_steady_influx(minutes=90)
    _, ids = bench_pipeline.seed_monitors(monitors)
    token = bench_api.seed()
    print(
        f"{monitors:,} monitors, batch size {settings.EVALUATION_BATCH_SIZE}, {WORKERS} worker "
        f"processes / web workers x 1 thread, {pairs} pairs, wrk {seconds} s; "
        f"load {os.getloadavg()}",
        flush=True,
    )
    connection.close()
    with ExitStack() as stack:
        pids = {on: stack.enter_context(worker(on, otlp, queues[on])) for on in (False, True)}
        # Warm-up, unmeasured: the fresh monitors settle (their first ~20 checks are dearer),
        # each worker's pool processes connect and keep the monitors resident.
        for i in range(max(option("settle", 24), 4)):
            on = i % 2 == 1
            evaluations(ids, queues[on], pids[on])
        evals = measure(
            "evaluations", pairs, lambda on: evaluations(ids, queues[on], pids[on]), "evaluations"
        )
    eval_spans = len(otlp.spans)
    with ExitStack() as stack:
        servers = {on: stack.enter_context(web(on, otlp)) for on in (False, True)}
        for base, _ in servers.values():  # warm-up
            bench_api.wrk(f"{base}/monitors?limit=50", 2, [f"Authorization: Token {token}"])
        api = measure(
            "requests", pairs, lambda on: requests(*servers[on], token, seconds), "requests"
        )
    api_spans = len(otlp.spans) - eval_spans
    otlp.close()
    Monitor.objects.filter(owner__username="bench").delete()
    print(f"load average at the end {os.getloadavg()}")
    report("evaluations (medians)", evals, "evaluations")
    report("API (medians)", api, "requests")
    print(f"spans received (10 % sampled): {eval_spans:,} evaluation, {api_spans:,} API")


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
