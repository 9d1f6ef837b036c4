"""1,000 incidents escalating at once: time from an escalation step's due time to its
notifications committed (issue 19's benchmark; target p99 at most 1 s).

Setup in the development database: one bench user with BENCH_MONITORS (10,000) monitors
(paused: nothing evaluates them, they are the table the claim joins through), BENCH_FIRING
(1,000) of them with an open incident, a default escalation policy whose first step
(after 1 minute) notifies BENCH_CHANNELS (2) webhook channels. Every round, all the incidents'
first step falls due at the same instant D.

Beat's part is emulated in this process, on one clock, in time order: the task body of
``escalate-due-incidents`` (``escalation.tick``: discover, every due step, the coming wakes)
every second, its last tick before D at a random phase, and the runs it queues at the coming
due times (``take_due_escalations`` with a Celery ETA; here a timer at that instant). Measured
twice: beat's tick alone (as before the wake; BENCH_COMPARE=0 skips it) and with the wakes.
For each incident: due -> commit latency = the moment the transaction that wrote its step's
notifications committed - D. Also printed: the run's own time to its commit (claim, write
2,000 outbox rows, advance 1,000 rows), and with queueing the deliveries after the commit
(monitors/notify/queue.py, bursts of 100 rows, as every notification is queued), this
process's CPU per round (the Python side; Postgres's is not counted), and the idle tick
(nothing due, 1,000 open incidents already escalating). Delivery is not measured (its tasks go
to a private queue that no worker reads, then the queue is dropped).

    .venv/bin/python bench/bench_escalation.py
"""

from __future__ import annotations

import heapq
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

PID = os.getpid()
QUEUE = f"bench-escalation-delivery-{PID}"
common.setup_django(env={"CELERY_DELIVERY_QUEUE": QUEUE})

from django.contrib.auth import get_user_model
from django.utils import timezone

from monitors.models import (
    Channel,
    Escalation,
    EscalationPolicy,
    EscalationStep,
    Incident,
    Monitor,
    Notification,
)
from monitors.notify import escalation

MONITORS = int(os.environ.get("BENCH_MONITORS", "10000"))
FIRING = int(os.environ.get("BENCH_FIRING", "1000"))
CHANNELS = int(os.environ.get("BENCH_CHANNELS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
ARM_AHEAD = 4.0  # seconds from arming a round to its due time
COMPARE = os.environ.get("BENCH_COMPARE", "1") == "1"  # also measure beat's tick alone
USERNAME = "bench-escalation"


def setup() -> tuple[list[Incident], EscalationPolicy]:
    owner, source = common.customer_source(USERNAME, "bench_escalation")
    Channel.objects.filter(owner=owner).delete()
    EscalationPolicy.objects.filter(owner=owner).delete()
    channels = []
    for n in range(CHANNELS):
        channel = Channel(owner=owner, name=f"bench {n}", kind=Channel.Kind.WEBHOOK)
        channel.config = {"url": "http://127.0.0.1:9/hook"}
        channel.save()
        channels.append(channel)
    monitors = Monitor.objects.bulk_create(
        [
            common.monitor(owner, source, f"m{i}", f"dev-{i}", critical=30.0, enabled=False)
            for i in range(MONITORS)
        ],
        batch_size=5000,
    )
    policy = EscalationPolicy.objects.create(
        owner=owner, name="bench", is_default=True, repeat_minutes=None
    )
    policy.created_at = timezone.now() - timedelta(days=1)
    policy.save(update_fields=["created_at"])
    step = EscalationStep.objects.create(policy=policy, position=0, after_minutes=1)
    step.channels.set(channels)
    opened = timezone.now() - timedelta(hours=1)
    incidents = Incident.objects.bulk_create(
        [
            Incident(monitor=m, opened_at=opened, summary="31 °C, above 30 °C", last_value=31.0)
            for m in random.Random(7).sample(monitors, FIRING)
        ]
    )
    return incidents, policy


def arm(incidents: list[Incident], due: object) -> None:
    """Every incident's first step falls due at ``due``, not yet taken."""
    Notification.objects.filter(incident__in=incidents).delete()
    Escalation.objects.filter(incident__in=incidents).update(
        next_step=0, repeats=0, due_at=due, finished_at=None, finished_reason=""
    )


def run(body: Callable[[], int]) -> tuple[int, float, float, float]:
    """One task body; (rows taken, seconds to the last commit, seconds in all, the last
    commit's perf_counter)."""
    began = time.perf_counter()
    committed = began
    run_due = escalation.run_due

    def timed_run_due(**kwargs: Any) -> escalation.Result:
        nonlocal committed
        result = run_due(**kwargs)  # commits, then queues the deliveries
        committed = result.committed_at or committed
        return result

    escalation.run_due = timed_run_due
    try:
        taken = body()
    finally:
        escalation.run_due = run_due
    return taken, committed - began, time.perf_counter() - began, committed


def beat(found: list[datetime]) -> int:
    """Beat's tick; the due times it queues runs at go to ``found``."""
    result = escalation.tick()
    found.extend(result.wakes)
    return result.taken


def round_latencies(
    incidents: list[Incident], rng: random.Random, *, wake: bool
) -> tuple[list[float], float, float]:
    """One round: beat's ticks every second at a random phase against the due time and, with
    ``wake``, the runs the ticks queue at the coming due times (Celery ETA), emulated on one
    clock in this process, in time order."""
    # arming rewrites 1,000 rows and deletes 2,000: under load it takes a second or more, and
    # the due time must still be ahead of beat's last tick before it
    due_wall = time.time() + ARM_AHEAD
    due = timezone.now() + timedelta(seconds=ARM_AHEAD)
    arm(incidents, due)
    due_perf = time.perf_counter() + (due_wall - time.time())
    if due_perf - 1.0 < time.perf_counter():
        print(f"  (arming took more than {ARM_AHEAD - 1:.0f} s: this round's first tick is late)")
    # beat's phase against the due time: its last tick before the due time is up to 1 s before
    first_tick = due_perf - 1.0 + rng.uniform(0, 1.0)
    latencies: list[float] = []
    events: list[tuple[float, str]] = [(first_tick, "tick")]
    to_commit = spent = 0.0
    while len(latencies) < len(incidents):
        at, kind = heapq.heappop(events)
        time.sleep(max(0.0, at - time.perf_counter()))
        if kind == "tick":
            found: list[datetime] = []
            taken, to_commit_, spent_, committed = run(partial(beat, found))
            heapq.heappush(events, (max(at + 1.0, time.perf_counter()), "tick"))
            if wake:
                for eta in found:
                    heapq.heappush(events, (due_perf + (eta - due).total_seconds(), "wake"))
        else:
            taken, to_commit_, spent_, committed = run(escalation.take_due)
        if taken:
            to_commit, spent = to_commit_, spent_
        latencies += [committed - due_perf] * taken
    return latencies, to_commit, spent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    began = time.perf_counter()
    incidents, _ = setup()
    print(f"setup: {MONITORS:,} monitors, {FIRING:,} open incidents, {CHANNELS} channels per step")
    print(f"       ({time.perf_counter() - began:.1f} s)")
    escalation.discover()  # the due rows, as the first tick after the incidents opened would
    for wake in (False, True) if COMPARE else (True,):
        what = "woken at the due time" if wake else "beat's tick only"
        rng = random.Random(19)
        all_latencies: list[float] = []
        cpu = time.process_time()
        for n in range(ROUNDS):
            latencies, to_commit, spent = round_latencies(incidents, rng, wake=wake)
            all_latencies += latencies
            written = Notification.objects.filter(incident__in=incidents, event="escalated")
            print(
                f"{what}, round {n + 1}: due -> commit "
                f"{statistics.median(latencies) * 1000:.0f} ms for all {len(latencies):,}; "
                f"the run: {to_commit * 1000:.0f} ms to its commit, {spent * 1000:.0f} ms with "
                f"queueing {written.count():,} deliveries"
            )
        cpu = time.process_time() - cpu
        print(
            f"{what}: due -> notifications committed over {ROUNDS} rounds: "
            f"p50 {pct(all_latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {pct(all_latencies, 0.99) * 1000:.0f} ms, "
            f"max {max(all_latencies) * 1000:.0f} ms (target p99 <= 1000 ms); this process's "
            f"CPU {cpu / ROUNDS * 1000:.0f} ms per round"
        )
    idle = []
    for _ in range(5):
        idle.append(run(lambda: escalation.tick().taken)[2])
    print(
        f"idle tick (nothing due, {FIRING:,} escalating): {statistics.median(idle) * 1000:.1f} ms"
    )
    print(f"load average: {os.getloadavg()}")
    cleanup()


def cleanup() -> None:
    import redis
    from django.conf import settings

    Monitor.objects.filter(owner__username=USERNAME).delete()  # before their sources
    get_user_model().objects.filter(username=USERNAME).delete()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(QUEUE)


if __name__ == "__main__":
    main()
