"""The flip workload of issue 18, path (b): readings sent to POST /ingest, evaluated on arrival.

N devices ``dI`` report ``sensor_value,device=dI value=20`` every second through POST /ingest on
the web server (granian, ``python -m growalert.serve``; DEBUG off, 2 workers x 4 threads, as
scripts/run_all.sh runs it). They report through
gateways: one request per GROUP (100) devices each second, with the gateway's ingest key (a
greenhouse's GRO-01 hub relays its sensors; one request per sensor per second would make the
Python client of this bench the bottleneck, not growalert). The gateways' sends are spread over
the second. One monitor per device: ``last`` value over a window of 2 s above 30, one webhook
channel to a loopback receiver in this process that timestamps arrivals. The monitors' interval
is 10 s (the floor): on this path it only paces the poller's no-data check; their decisions are
taken on arrival.

Processes, as scripts/run_all.sh starts them: the web server, ``manage.py ingest_flusher``,
``manage.py evaluate_on_arrival`` (one process per shard: BENCH_SHARDS, default 1, sets
ARRIVAL_SHARDS), an evaluation worker (prefork, the poller's no-data checks) and a delivery
worker (threads) on private queues; beat's part (the dispatcher every second, the sweeper every
5 s) runs in a thread of this process, its CPU that thread's.

1. Steady state: CPU (utime + stime) of every process tree (postgres, redis, influxd, web: granian's
   master and workers, flusher, evaluator, both workers, the beat thread) over BENCH_WINDOW (60) s,
   per 1,000 readings sent. This process's own sending is not counted (it is the devices).
2. Rounds: BENCH_ROUNDS (10) times, K (100) fresh devices flip to 35 at a random instant, each
   device's ``fired`` arrival is recorded; hold 3 s, flip back, record ``resolved``. Reported:
   flip -> arrival (includes the wait for the device's next send: 0-1 s), write -> arrival
   (from the start of the POST that carried the changed reading: what the path itself adds),
   lost and duplicated; and the breakdown write -> 202 (in the stream), 202 -> outbox row
   written (evaluation, in the evaluator's transaction), outbox row -> arrival (commit,
   delivery queue, send), and the slowest of each hop in each round. The evaluator's own log
   lines (read -> decided -> committed per stream read) are printed too. BENCH_QUIET seconds
   without a flip before the middle round show whether a quiet spell slows the next alert.

BENCH_PUSH=1 measures path (c) instead: the same devices' readings written to the customers'
InfluxDB (tests/customer_influx.py), one write per GROUP devices as the gateways send, and that
InfluxDB subscribed to growalert (``CREATE SUBSCRIPTION ... DESTINATIONS ALL`` the web server's
``/influx/write``, devices/ingest/pushed.py): its monitors are on a pushing customer source. Its
"write" is the write to the customer's InfluxDB, "in the stream" that write's 204, and its CPU
counts the customer's influxd too (with the deployment's, under "influxd").

    .venv/bin/python bench/bench_flip_arrival.py [N]
    BENCH_PUSH=1 .venv/bin/python bench/bench_flip_arrival.py [N]
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import common  # bench/common.py: this directory is first on sys.path

PID = os.getpid()
QUEUES = {
    "CELERY_EVALUATION_QUEUE": f"bench-arrival-eval-{PID}",
    "CELERY_DELIVERY_QUEUE": f"bench-arrival-delivery-{PID}",
}
LIMITS = {
    "INGEST_DEVICE_REQUESTS_PER_SECOND": "1000",
    "INGEST_DEVICE_POINTS_PER_SECOND": "100000",
    "INGEST_ACCOUNT_POINTS_PER_SECOND": "10000000",
}
os.environ["PYTHONPATH"] = str(common.ROOT)
SHARDS = int(os.environ.get("BENCH_SHARDS", "1"))
PUSH = os.environ.get("BENCH_PUSH", "") not in ("", "0")
common.setup_django(
    defaults={"SOURCES_ALLOW_PRIVATE_ADDRESSES": "true"},
    env={
        **QUEUES,
        **LIMITS,
        "ARRIVAL_SHARDS": str(SHARDS),
        "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        "NOTIFY_RECEIVER_CONCURRENCY": os.environ.get("BENCH_RECEIVER_CONCURRENCY", "64"),
    },
)

import httpx
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection
from django.utils import timezone

from devices import hosted, services
from devices.models import Device
from monitors import services as monitor_services
from monitors import tasks
from monitors.models import DeliveryAttempt, Monitor, Notification
from monitors.notify import tasks as notify_tasks
from tests import customer_influx

K = int(os.environ.get("BENCH_K", "100"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
WINDOW = float(os.environ.get("BENCH_WINDOW", "60"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "20"))
GROUP = int(os.environ.get("BENCH_GROUP", "100"))
SENDERS = int(os.environ.get("BENCH_SENDERS", "8"))
HOLD = 3.0
# Seconds of steady readings without a flip before the middle round: does a quiet spell (the
# usual state of a deployment between alerts) make the next round slow, as the first is?
QUIET = float(os.environ.get("BENCH_QUIET", "0"))
EVAL_PROCESSES = int(os.environ.get("BENCH_EVAL_PROCESSES", "1"))
DELIVERY_THREADS = int(os.environ.get("BENCH_DELIVERY_THREADS", "32"))
USER = "bench-flip-arrival"
PUSHED_DATABASE = "growalert_bench_pushed"  # on the customers' InfluxDB (BENCH_PUSH)


class Devices(threading.Thread):
    """The gateways: each second, one POST per GROUP devices, spread over the second."""

    def __init__(self, base: str, keys: list[str], devices: int) -> None:
        super().__init__(daemon=True)
        self.base, self.keys, self.devices = base, keys, devices
        self.flipped: set[int] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sent = 0  # readings accepted
        self.refused = 0
        self.late = 0
        # per device: (POST started, 202 received) of the first send after its last flip
        self.written: dict[int, tuple[float, float]] = {}
        self._watch: dict[int, bool] = {}  # device -> value it must carry to count as written
        self.pool = ThreadPoolExecutor(SENDERS)
        self.local = threading.local()

    def client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(timeout=10)
        return client

    def send(self, gateway: int) -> None:
        first = gateway * GROUP
        members = range(first, min(first + GROUP, self.devices))
        with self.lock:
            values = {d: 35.0 if d in self.flipped else 20.0 for d in members}
        stamp = time.time_ns()
        body = "\n".join(f"sensor_value,device=d{d} value={values[d]} {stamp}" for d in members)
        started = time.time()
        if PUSH:  # to the customer's InfluxDB, which pushes it on to growalert
            answer = self.client().post(self.base, params={"db": PUSHED_DATABASE}, content=body)
        else:
            answer = self.client().post(
                f"{self.base}/ingest",
                content=body,
                headers={"X-API-Key": self.keys[gateway], "Content-Type": "text/plain"},
            )
        done = time.time()
        with self.lock:
            if answer.status_code != (204 if PUSH else 202):
                self.refused += len(members)
                return
            self.sent += len(members)
            for d in members:
                want = self._watch.get(d)
                if want is not None and (values[d] > 30) == want:
                    self.written[d] = (started, done)
                    del self._watch[d]

    def run(self) -> None:
        gateways = len(self.keys)
        tick = time.time()
        while not self.stopping.is_set():
            for g in range(gateways):
                at = tick + g / gateways
                self.stopping.wait(max(0.0, at - time.time()))
                self.pool.submit(self.send, g)
            tick += 1.0
            if time.time() - tick > 1.0:
                self.late += 1
                tick = time.time()
        self.pool.shutdown(wait=True)

    def flip(self, devices: list[int], on: bool) -> None:
        with self.lock:
            self.flipped = common.flipped_after(self.flipped, devices, on)
            for d in devices:
                self._watch[d] = on
                self.written.pop(d, None)


class Beat(threading.Thread):
    """Beat's part: the dispatcher every second, on the second; the sweeper every 5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.cpu = 0.0

    def run(self) -> None:
        tick, n = time.time(), 0
        while not self.stopping.is_set():
            tasks.dispatch_due_monitors()
            if n % 5 == 0:
                notify_tasks.deliver_due_notifications()
            n += 1
            self.cpu = time.thread_time()
            tick += 1.0
            self.stopping.wait(max(0.0, tick - time.time()))
        close_old_connections()
        connection.close()


def seed(devices: int, url: str) -> tuple[list[int], list[str]]:
    owner, channel = common.webhook_channel(USER, url)
    channel.verified = True
    channel.save()
    Monitor.objects.filter(owner=owner).delete()
    Device.objects.filter(owner=owner).delete()
    gateways = (devices + GROUP - 1) // GROUP
    keys = [services.device_add(owner=owner, name=f"gateway {g}")[1] for g in range(gateways)]
    source = hosted.hosted_source(owner_id=owner.pk)
    hosted.ensure_database(source.database)
    with hosted.client() as conn:
        conn.query("DROP SERIES FROM sensor_value", database=source.database, method="POST")
    monitors = common.flip_monitors(owner, source, channel, devices, timedelta(seconds=10))
    common.spread_schedules(monitors, owner, source, timezone.now() + timedelta(seconds=2), 10)
    return [m.pk for m in monitors], keys


def seed_pushed(devices: int, url: str, site: str) -> tuple[list[int], list[str]]:
    """Path (c): the monitors on a customer source whose InfluxDB pushes to ``site``."""
    from django.conf import settings

    owner, source = common.customer_source(f"{USER}-pushed", PUSHED_DATABASE)
    _, channel = common.webhook_channel(f"{USER}-pushed", url)
    channel.verified = True
    channel.save()
    influx_url = customer_influx.url()
    _influxql(influx_url, f'DROP DATABASE "{PUSHED_DATABASE}"')  # its subscriptions too
    _influxql(influx_url, f'CREATE DATABASE "{PUSHED_DATABASE}"')
    settings.SITE_URL = site
    setup = monitor_services.source_push_enable(source=source)
    _influxql(influx_url, setup.subscription)
    monitors = common.flip_monitors(owner, source, channel, devices, timedelta(seconds=10))
    common.spread_schedules(monitors, owner, source, timezone.now() + timedelta(seconds=2), 10)
    gateways = (devices + GROUP - 1) // GROUP
    return [m.pk for m in monitors], [""] * gateways


def _influxql(url: str, statement: str) -> None:
    answer = httpx.post(f"{url}/query", data={"q": statement, "db": PUSHED_DATABASE})
    answer.raise_for_status()
    if '"error"' in answer.text:
        raise RuntimeError(f"{statement[:60]}: {answer.text}")


def start(name: str, command: list[str], env: dict[str, str]) -> common.Started:
    log = open(common.LOG_DIR / f"bench-flip-arrival-{name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        command, cwd=common.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return process, log


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


def figures(label: str, values: list[float]) -> str:
    return (
        f"{label}: n={len(values)}, p50 {pct(values, 50) * 1000:.0f} ms, "
        f"p99 {pct(values, 99) * 1000:.0f} ms, max {max(values, default=0) * 1000:.0f} ms"
    )


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    common.LOG_DIR.mkdir(parents=True, exist_ok=True)
    receiver = common.FlipReceiver()
    port = common.free_port()
    if PUSH:
        ids, keys = seed_pushed(devices, receiver.url, f"http://127.0.0.1:{port}")
    else:
        ids, keys = seed(devices, receiver.url)
    env = common.production_env(**QUEUES, **LIMITS, ARRIVAL_SHARDS=str(SHARDS))
    env["WEBHOOKS_ALLOW_PRIVATE_ADDRESSES"] = "true"
    python = str(common.ROOT / ".venv" / "bin" / "python")
    web_log = open(common.LOG_DIR / "bench-flip-arrival-web.log", "wb")  # noqa: SIM115
    web = common.start_web_server(port, env, workers=2, threads=4, log=web_log)
    processes = {
        "web": (web, web_log),
        "flusher": start("flusher", [python, "manage.py", "ingest_flusher"], env),
    }
    for shard in range(SHARDS):  # one process per shard; shard 0's is "evaluator"
        name = "evaluator" if shard == 0 else f"evaluator-{shard}"
        command = [python, "manage.py", "evaluate_on_arrival", "--shard", str(shard)]
        processes[name] = start(name, command, env)
    from django.conf import settings

    processes["evaluation worker"] = common.start_worker(
        common.LOG_DIR / "bench-flip-arrival-eval.log",
        hostname=f"bench-arrival-eval-{PID}@%h",
        pool="prefork",
        concurrency=EVAL_PROCESSES,
        queues=settings.CELERY_EVALUATION_QUEUE,
    )
    processes["delivery worker"] = common.start_worker(
        common.LOG_DIR / "bench-flip-arrival-delivery.log",
        hostname=f"bench-arrival-delivery-{PID}@%h",
        pool="threads",
        concurrency=DELIVERY_THREADS,
        queues=settings.CELERY_DELIVERY_QUEUE,
    )
    base = f"http://127.0.0.1:{port}"
    common.wait_ready(base)
    sender = Devices(f"{customer_influx.url()}/write" if PUSH else base, keys, devices)
    beat = Beat()
    try:
        sender.start()
        beat.start()
        roots = common.service_roots({name: [p.pid] for name, (p, _) in processes.items()})
        time.sleep(WARMUP)
        sent0, cpu0, t0 = sender.sent, common.cpu_by_tree(roots), time.time()
        cpu0["beat (dispatcher)"] = beat.cpu
        time.sleep(WINDOW)
        sent1, cpu1, t1 = sender.sent, common.cpu_by_tree(roots), time.time()
        cpu1["beat (dispatcher)"] = beat.cpu
        readings = sent1 - sent0
        split = {name: cpu1[name] - cpu0.get(name, 0.0) for name in cpu1}
        total = sum(split.values())
        uptime_window = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

        flip_fired: list[float] = []
        flip_resolved: list[float] = []
        write_fired: list[float] = []
        write_resolved: list[float] = []
        accepted: list[float] = []
        write_at: dict[int, float] = {}  # monitor -> POST start of the changed reading
        round_of: dict[int, int] = {}  # the same key -> its round
        lost = 0
        slowest: dict[str, list[float]] = {"fired": [], "resolved": []}  # per round
        order = list(range(devices))
        random.Random(18).shuffle(order)
        for r in range(ROUNDS):
            chosen = order[(r * K) % devices : (r * K) % devices + K]
            monitors = {ids[d] for d in chosen}
            time.sleep(random.uniform(0.0, 1.0) + (QUIET if r == ROUNDS // 2 else 0.0))
            for kind, on in (("fired", True), ("resolved", False)):
                since = time.time()
                sender.flip(chosen, on=on)
                receiver.wait_for(kind, monitors, 20)
                arrived = receiver.arrivals(kind)
                with sender.lock:
                    written = {ids[d]: sender.written.get(d) for d in chosen}
                got = [arrived[m] - since for m in monitors if m in arrived]
                slowest[kind].append(
                    max(
                        (
                            arrived[m] - at[0]
                            for m in monitors
                            if m in arrived and (at := written[m]) is not None
                        ),
                        default=float("nan"),
                    )
                )
                lost += len(monitors) - len(got)
                (flip_fired if on else flip_resolved).extend(got)
                for m in monitors:
                    if m in arrived and written[m] is not None:
                        post_at, answered_at = written[m]  # type: ignore[misc]
                        (write_fired if on else write_resolved).append(arrived[m] - post_at)
                        accepted.append(answered_at - post_at)
                        write_at[m * 2 + (0 if on else 1)] = post_at
                        round_of[m * 2 + (0 if on else 1)] = r
                if on:
                    time.sleep(HOLD)
        time.sleep(2)  # a late duplicate would show up by now
        rows = Notification.objects.filter(monitor_id__in=ids).values_list(
            "pk", "idempotency_key", "created_at", "monitor_id", "event"
        )
        first_attempt = dict(
            DeliveryAttempt.objects.filter(notification__monitor_id__in=ids, number=1).values_list(
                "notification_id", "started_at"
            )
        )
        # each hop of the changed readings, by event (fired, resolved)
        evaluated: dict[str, list[float]] = defaultdict(list)
        delivered: dict[str, list[float]] = defaultdict(list)
        picked: dict[str, list[float]] = defaultdict(list)  # outbox row -> send started
        sending: dict[str, list[float]] = defaultdict(list)  # send started -> arrival
        # the slowest of each hop per round, by event: (written, picked, sent) in ms
        hops: dict[str, list[list[float]]] = {
            kind: [[0.0, 0.0, 0.0] for _ in range(ROUNDS)] for kind in ("fired", "resolved")
        }
        with receiver.lock:
            for pk, key, created, monitor_id, event in rows:
                post_at = write_at.get(monitor_id * 2 + (0 if event == "fired" else 1))
                if key in receiver.received and post_at is not None:
                    evaluated[event].append(created.timestamp() - post_at)
                    delivered[event].append(receiver.received[key] - created.timestamp())
                    started = first_attempt.get(pk)
                    if started is not None:
                        picked[event].append(started.timestamp() - created.timestamp())
                        sending[event].append(receiver.received[key] - started.timestamp())
                        slowest_hops = hops[event][round_of[monitor_id * 2 + (event != "fired")]]
                        for i, took in enumerate(
                            (evaluated[event][-1], picked[event][-1], sending[event][-1])
                        ):
                            slowest_hops[i] = max(slowest_hops[i], took * 1000)
    finally:
        beat.stopping.set()
        sender.stopping.set()
        beat.join()
        sender.join()
        common.stop(processes.values())
        Monitor.objects.filter(pk__in=ids).delete()
        if PUSH:
            _influxql(customer_influx.url(), f'DROP DATABASE "{PUSHED_DATABASE}"')
        else:
            Device.objects.filter(owner=get_user_model().objects.get(username=USER)).delete()

    path = (
        "path (c), pushed by the customer's InfluxDB (a subscription to /influx/write)"
        if PUSH
        else "path (b)"
    )
    print(
        f"bench_flip_arrival {path}: N={devices:,} devices through {len(keys)} gateways "
        f"(one POST of {GROUP} readings per gateway per second), K={K}, {ROUNDS} rounds; "
        f"web server (granian) 2x4, flusher, {SHARDS} evaluator shard(s), evaluation worker "
        f"prefork x{EVAL_PROCESSES}, delivery worker threads x{DELIVERY_THREADS}, dispatcher thread"
    )
    print(f"  load during the steady window: {uptime_window}")
    print("  " + figures("fired    write -> arrival", write_fired))
    print("  " + figures("resolved write -> arrival", write_resolved))
    print("  " + figures("fired    flip  -> arrival (incl. wait for next send)", flip_fired))
    print("  " + figures("resolved flip  -> arrival (incl. wait for next send)", flip_resolved))
    for kind, per_round in slowest.items():
        shown = ", ".join(f"{s * 1000:.0f}" for s in per_round)
        print(f"  {kind:8} slowest write -> arrival of each round: {shown} ms")
    print("  breakdown of the changed readings (fired and resolved):")
    accepted_hop = (
        "write -> the customer's InfluxDB's 204" if PUSH else "write -> 202 (in the stream)"
    )
    print("    " + figures(accepted_hop, accepted))
    for kind in ("fired", "resolved"):
        print(f"    {kind}:")
        print("      " + figures("write -> outbox row written (evaluated)", evaluated[kind]))
        hop = "outbox row -> webhook arrival (commit, queue, send)"
        print("      " + figures(hop, delivered[kind]))
        hop = "outbox row -> send started (commit, queue, claim)"
        print("        " + figures(hop, picked[kind]))
        print("        " + figures("send started -> webhook arrival", sending[kind]))
        shown = ", ".join("/".join(f"{ms:.0f}" for ms in each) for each in hops[kind])
        print(f"      slowest of each round (evaluated / send started / arrived): {shown} ms")
    print(f"  lost {lost}, duplicated {receiver.duplicates}")
    print(
        f"  steady window {t1 - t0:.0f} s: {readings:,} readings accepted "
        f"({readings / (t1 - t0):,.0f}/s), {sender.refused} refused; sender late {sender.late}x"
    )
    print(f"  whole-system CPU per 1,000 readings: {total / max(readings, 1) * 1e6:.1f} ms")
    for name, seconds in sorted(split.items(), key=lambda kv: -kv[1]):
        print(f"    {name:20} {seconds / max(readings, 1) * 1e6:6.1f} ms")
    for shard in range(SHARDS):
        name = "evaluator" if shard == 0 else f"evaluator-{shard}"
        log = (common.LOG_DIR / f"bench-flip-arrival-{name}.log").read_text().splitlines()
        print(f"  {name} log (last lines):")
        for line in [ln for ln in log if "arrival evaluator" in ln][-4:]:
            print("    " + line[-330:])


if __name__ == "__main__":
    main()
