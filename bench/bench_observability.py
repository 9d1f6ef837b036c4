"""Operations switched on vs off, in the same run: evaluations/s through real Celery workers and
API requests/s through gunicorn under wrk.

"on" is what docs/operations.md recommends for production: JSON logs (LOG_FORMAT=json, INFO)
and OpenTelemetry traces sampled at 10 % (OTEL_TRACES_SAMPLER_ARG=0.1), exported over OTLP/HTTP
to a receiver on loopback that parses every request (tests/observability/receivers.py). "off"
is the default: plain logs at INFO, no tracing. Sentry is left out (it costs nothing until an
error happens). The two are measured in alternating rounds (the order reversed every other
round) and medians compared: this machine is shared, one run of each in a row compares
different moments.

Evaluations: MONITORS monitors due at once, claimed and cut into batches here, one
``evaluate_monitors`` task per batch sent to a prefork worker of WORKERS processes; timed until
every monitor has applied the tick. API: ``GET /monitors?limit=50`` with token auth, as in
bench_api.py.

    .venv/bin/python bench/bench_observability.py [--monitors=10000] [--rounds=3] [--seconds=10]

``BENCH_ON=logs`` or ``BENCH_ON=traces`` makes "on" only the JSON logs or only the traces.

Each round also counts the CPU (utime + stime) the work took: the worker's process tree per
1,000 evaluations and gunicorn's per 1,000 requests. On a shared machine the rates swing with
what else runs; the CPU per unit of work barely does, and off/on of it is the throughput ratio
of a deployment whose workers are CPU-bound.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def worker(on: bool, otlp: OtlpReceiver, queue: str) -> Iterator[int]:
    env = mode_env(on, otlp) | {
        "CELERY_QUEUE": queue,
        "SOURCES_ALLOW_PRIVATE_ADDRESSES": "true",
    }
    log_path = LOG / f"bench-observability-worker-{'on' if on else 'off'}.log"
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
            "--pool",
            "prefork",
            "--concurrency",
            str(WORKERS),
            "--hostname",
            f"bench-obs-{os.getpid()}@%h",
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


def tree_cpu(pid: int) -> float:
    return common.cpu_by_tree({"tree": [pid]})["tree"]


def evaluations_per_second(ids: list[int], queue: str, pid: int) -> tuple[float, float]:
    """(evaluations/s, CPU ms of the worker's processes per 1,000 evaluations)."""
    bench_pipeline.make_due(ids)
    cpu_before = tree_cpu(pid)
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
    return len(ids) / elapsed, (tree_cpu(pid) - cpu_before) * 1e6 / len(ids)


def api_requests_per_second(
    on: bool, otlp: OtlpReceiver, token: str, seconds: int
) -> tuple[float, float]:
    """(requests/s, CPU ms of the gunicorn processes per 1,000 requests)."""
    port = free_port(28000)
    env = common.production_env(mode_env(on, otlp), API_RATE_LIMIT="100000000/min")
    log_path = LOG / f"bench-observability-web-{'on' if on else 'off'}.log"
    out = open(log_path, "wb")  # noqa: SIM115
    server = common.start_gunicorn(port, env, workers=WORKERS, log=out)
    base = f"http://127.0.0.1:{port}"
    try:
        common.wait_ready(base)
        auth = f"Authorization: Token {token}"
        bench_api.wrk(f"{base}/monitors?limit=50", 2, [auth])  # warm-up
        cpu_before = tree_cpu(server.pid)
        rps, _, _ = bench_api.wrk(f"{base}/monitors?limit=50", seconds, [auth])
        return rps, (tree_cpu(server.pid) - cpu_before) * 1e6 / (rps * seconds)
    finally:
        server.terminate()
        server.wait(10)
        out.close()


def main() -> None:
    monitors = option("monitors", 10_000)
    rounds = option("rounds", 3)
    seconds = option("seconds", 10)
    otlp = OtlpReceiver()
    queue = f"bench-observability-{os.getpid()}"
    bench_pipeline.seed_influx()
    _, ids = bench_pipeline.seed_monitors(monitors)
    token = bench_api.seed()
    connection.close()
    evals: dict[bool, list[float]] = {False: [], True: []}
    api: dict[bool, list[float]] = {False: [], True: []}
    eval_cpu: dict[bool, list[float]] = {False: [], True: []}
    api_cpu: dict[bool, list[float]] = {False: [], True: []}
    print(
        f"{monitors:,} monitors, batch size {settings.EVALUATION_BATCH_SIZE}, {WORKERS} worker "
        f"processes / gunicorn workers, {rounds} rounds, wrk {seconds} s"
    )
    for i in range(rounds):
        for on in (False, True) if i % 2 == 0 else (True, False):
            with worker(on, otlp, queue) as pid:
                evaluations_per_second(ids, queue, pid)  # warm-up: pool processes connect
                rate, cpu = evaluations_per_second(ids, queue, pid)
                evals[on].append(rate)
                eval_cpu[on].append(cpu)
            rate, cpu = api_requests_per_second(on, otlp, token, seconds)
            api[on].append(rate)
            api_cpu[on].append(cpu)
            print(
                f"  round {i + 1} {'on ' if on else 'off'}: {evals[on][-1]:,.0f} evaluations/s"
                f" ({eval_cpu[on][-1]:.0f} ms CPU per 1,000), {api[on][-1]:,.0f} API req/s"
                f" ({api_cpu[on][-1]:.0f} ms CPU per 1,000), load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    spans = len(otlp.spans)
    otlp.close()
    Monitor.objects.filter(owner__username="bench").delete()
    print(f"{'':<28}{'off':>10}{'on':>10}{'on/off':>9}")
    for label, samples in (("evaluations/s (median)", evals), ("API req/s (median)", api)):
        off, on_ = statistics.median(samples[False]), statistics.median(samples[True])
        print(f"{label:<28}{off:>10,.0f}{on_:>10,.0f}{on_ / off:>9.2f}")
    # Less sensitive to what else runs on the machine than the rates: the CPU the work itself
    # took (worker processes for evaluations, gunicorn workers for the API). off/on is the
    # throughput ratio of a CPU-bound deployment.
    for label, samples in (("eval CPU ms/1,000 (median)", eval_cpu), ("API CPU ms/1,000", api_cpu)):
        off, on_ = statistics.median(samples[False]), statistics.median(samples[True])
        print(f"{label:<28}{off:>10,.0f}{on_:>10,.0f}{on_ / off:>9.2f}  (off/on {off / on_:.2f})")
    print(f"spans received by the OTLP endpoint (10 % sampled): {spans:,}")


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
