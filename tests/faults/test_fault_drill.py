"""The fault drill (issue 14, "Faults stay local"): each fault injected for real on real services
and real processes, and every notification counted at loopback receivers.

Each scenario runs a real Celery evaluation worker with beat on a private evaluation queue and a
real threads-pool delivery worker on a private delivery queue, on the test database, with a fleet
of monitors on a 10 s interval seeded in the customers' InfluxDB. ``account`` then reports, from
the receivers' requests and the database:

* expected: outbox rows (Notification) for the watched channels;
* received: their idempotency keys answered 2xx at least once;
* lost: expected keys never answered 2xx;
* resent after 2xx: answers 2xx beyond the first for one key (the same key accepted twice);
* two keys: state changes notified under more than one key (a state change is the monitor, its
  incident, the event and the channel; for rows with no incident, the monitor's state_version
  in the key stands in for the incident);
* evaluation lag during the fault: the age of the oldest due monitor not yet claimed, sampled
  every 0.25 s from the Schedule table (p50/p99/max), and how many monitors were evaluated.

Scenarios: (1) a receiver hanging 60 s while 1,000 monitors keep their interval; (2) Postgres
stopped and started during a burst of 300 sends; (3) a receiver answering 500 for longer than the
old give-up; (4) the delivery worker SIGKILLed mid-burst and started again. Each asserts nothing
lost, nothing accepted twice, no state change under two keys, and a bounded lag.

Wall time on the 2-core development machine (shared with other work): 169 s for the file
(83 s the hang, 42 s the outage, 19 s the SIGKILL, 18 s the Postgres restart), 175 s with
pytest's start-up; ``pytest -s`` prints the accounting of each scenario. Scenarios (2) to (4)
write their outbox rows directly, one state change each, so only (1), where the evaluation
writes them, can show two keys for one state change.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, Any

import pytest
from django.db import OperationalError, connection
from django.db.models import Min
from django.utils import timezone

from billing.gating import comp
from monitors.influxdb import client as influx
from monitors.models import Channel, Monitor, Notification, Schedule
from monitors.notify import breaker
from monitors.notify.tasks import deliver_notification
from tests.conftest import ROOT, services, start_celery_worker, stop_celery_worker
from tests.factories import ChannelFactory, SourceFactory, UserFactory
from tests.notify.conftest import Receiver
from tests.notify.test_delivery import PAYLOAD
from tests.notify.test_end_to_end import _database_url

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "Growalert-Idempotency-Key"
INTERVAL = timedelta(seconds=10)


# --- the accounting ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


@dataclass
class Lag:
    """Evaluation lag of a fleet, sampled from the database while a fault lasts."""

    owner_id: int
    samples: list[float] = field(default_factory=list)
    unreadable: int = 0  # samples the database could not answer (it was down)

    def sample(self) -> None:
        try:
            now = timezone.now()
            oldest = Schedule.objects.filter(
                owner_id=self.owner_id, next_due_at__lte=now
            ).aggregate(oldest=Min("next_due_at"))["oldest"]
            self.samples.append((now - oldest).total_seconds() if oldest else 0.0)
        except OperationalError:
            self.unreadable += 1
            connection.close()

    def watch(self, seconds: float, *, until: Callable[[], bool] = lambda: False) -> None:
        """Samples every 0.25 s for ``seconds`` or until ``until()`` holds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sample()
            try:
                if until():
                    return
            except OperationalError:
                connection.close()
            time.sleep(0.25)


@dataclass
class Tally:
    scenario: str
    expected: int
    received: int
    lost: int
    resent_after_2xx: int
    two_keys: int
    unknown: int  # keys accepted that no outbox row has
    lag_p50: float
    lag_p99: float
    lag_max: float
    extra: dict[str, Any] = field(default_factory=dict)

    def show(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"\n[drill] {self.scenario}: expected={self.expected} received={self.received} "
            f"lost={self.lost} resent_after_2xx={self.resent_after_2xx} "
            f"two_keys={self.two_keys} unknown={self.unknown} "
            f"lag p50={self.lag_p50:.2f}s p99={self.lag_p99:.2f}s max={self.lag_max:.2f}s"
            f" {extra}"
        )


def account(
    scenario: str, receivers: list[Receiver], channels: list[Channel], lag: Lag, **extra: Any
) -> Tally:
    connection.close()  # a connection from before a restart is dead
    rows = list(
        Notification.objects.filter(channel__in=channels).values_list(
            "idempotency_key", "monitor_id", "incident_id", "event", "channel_id"
        )
    )
    expected = {key for key, *_ in rows}
    accepted = collections.Counter(
        hit.headers[KEY] for receiver in receivers for hit in list(receiver.accepted)
    )
    changes: dict[tuple[Any, ...], set[str]] = collections.defaultdict(set)
    for key, monitor_id, incident_id, event, channel_id in rows:
        version = incident_id if incident_id is not None else key.split(":")[1]
        changes[(monitor_id, version, event, channel_id)].add(key)
    tally = Tally(
        scenario=scenario,
        expected=len(expected),
        received=len(expected & set(accepted)),
        lost=len(expected - set(accepted)),
        resent_after_2xx=sum(count - 1 for count in accepted.values()),
        two_keys=sum(1 for keys in changes.values() if len(keys) > 1),
        unknown=len(set(accepted) - expected),
        lag_p50=percentile(lag.samples, 50),
        lag_p99=percentile(lag.samples, 99),
        lag_max=max(lag.samples, default=0.0),
        extra={"lag_samples": len(lag.samples), "db_unreadable": lag.unreadable, **extra},
    )
    print(tally.show())
    return tally


def assert_clean(tally: Tally, *, lag_p99: float) -> None:
    assert tally.expected > 0
    assert tally.lost == 0, tally
    assert tally.resent_after_2xx == 0, tally
    assert tally.two_keys == 0, tally
    assert tally.unknown == 0, tally
    assert tally.received == tally.expected, tally
    assert tally.lag_p99 < lag_p99, tally


# --- the fleet --------------------------------------------------------------------------------


@dataclass
class Fleet:
    owner: Any
    monitors: list[int]
    hot_devices: list[str]
    influx_db: Any

    def heat(self) -> None:
        """The hot devices go above the threshold: their monitors fire and notify."""
        self.influx_db.client.write(
            [
                influx.line("gro01", {"temperature": 40.0}, tags={"device": device})
                for device in self.hot_devices
            ],
            database=self.influx_db.database,
        )

    def evaluated_since(self, moment: Any) -> int:
        return Monitor.objects.filter(pk__in=self.monitors, last_evaluated_at__gte=moment).count()


def seed_fleet(influx_db: Any, count: int, hot: list[tuple[Channel, int]] = ()) -> Fleet:  # type: ignore[assignment]
    """``count`` monitors on a 10 s interval, due times spread over it; the first ones watch a
    hot device each and notify the channel given (``hot``: channel, how many monitors)."""
    owner = UserFactory(username=f"fleet-{os.getpid()}-{time.monotonic_ns()}")
    comp(owner)
    source = SourceFactory(owner=owner, database=influx_db.database)
    plan: list[Channel | None] = [c for c, n in hot for _ in range(n)]
    plan += [None] * (count - len(plan))
    devices = [f"hot-{i}" if c is not None else f"dev-{i % 50}" for i, c in enumerate(plan)]
    now_ms = int(time.time() * 1000)
    influx_db.client.write(
        [
            influx.line(
                "gro01",
                {"temperature": 20.0},
                tags={"device": d},
                timestamp_ms=now_ms - s * 60_000,
            )
            for d in sorted(set(devices))
            for s in range(3)
        ],
        database=influx_db.database,
    )
    monitors = Monitor.objects.bulk_create(
        [
            Monitor(
                owner=owner,
                source=source,
                name=f"drill {i}",
                measurement="gro01",
                field="temperature",
                tags={"device": device},
                aggregation="last",
                window=timedelta(minutes=10),
                comparator="above",
                critical=30.0,
                interval=INTERVAL,
            )
            for i, device in enumerate(devices)
        ]
    )
    Monitor.channels.through.objects.bulk_create(
        [
            Monitor.channels.through(monitor_id=m.pk, channel_id=c.pk)
            for m, c in zip(monitors, plan, strict=True)
            if c is not None
        ]
    )
    start = timezone.now() + timedelta(seconds=1)
    Schedule.objects.bulk_create(
        [
            Schedule(
                monitor=m,
                owner_id=owner.pk,
                source_id=source.pk,
                interval=INTERVAL,
                next_due_at=start + INTERVAL * i / count,
            )
            for i, m in enumerate(monitors)
        ],
        update_conflicts=True,
        unique_fields=["monitor"],
        update_fields=["next_due_at"],
    )
    hot_devices = [d for d, c in zip(devices, plan, strict=True) if c is not None]
    return Fleet(owner, [m.pk for m in monitors], hot_devices, influx_db)


def wait_evaluated(fleet: Fleet, *, every: bool = True, seconds: float = 60) -> None:
    """Until every monitor (or, ``every=False``, any: the loop runs) has been evaluated."""
    deadline = time.monotonic() + seconds
    evaluated = Monitor.objects.filter(pk__in=fleet.monitors, last_evaluated_at__isnull=False)
    while evaluated.count() < (len(fleet.monitors) if every else 1):
        assert time.monotonic() < deadline, "the fleet was never evaluated"
        time.sleep(0.25)


def log_lines(pipeline: Pipeline, part: str, text: str) -> int:
    """How many lines of a worker's log say ``text`` (the faults the code retried through)."""
    path = ROOT / ".local" / "log" / f"test-celery-drill-{pipeline.name}-{part}.log"
    return sum(text in line for line in path.read_text().splitlines())


def burst(channel: Channel, monitor_id: int, count: int) -> list[Notification]:
    """``count`` outbox rows for one channel, each its own state change of one monitor."""
    return Notification.objects.bulk_create(
        [
            Notification(
                channel=channel,
                monitor_id=monitor_id,
                event="fired",
                idempotency_key=f"m{monitor_id}:v{1000 + i}:fired:c{channel.pk}",
                payload=PAYLOAD,
            )
            for i in range(count)
        ]
    )


def all_sent(channels: list[Channel]) -> Callable[[], bool]:
    def check() -> bool:
        rows = Notification.objects.filter(channel__in=channels)
        return rows.exists() and not rows.exclude(status="sent").exists()

    return check


def healthy_receiver() -> Iterator[Receiver]:
    server = Receiver()
    names = [f"{h}:{server.server.server_address[1]}" for h in ("127.0.0.1", "localhost")]
    for name in names:
        breaker.forget(name)
    yield server
    server.close()
    for name in names:
        breaker.forget(name)


other_receiver = pytest.fixture(healthy_receiver)


# --- the processes ----------------------------------------------------------------------------


class Pipeline:
    """An evaluation worker with beat and a threads-pool delivery worker, on private queues."""

    def __init__(self, name: str, *, evaluation_pool: str = "solo", **env: str) -> None:
        tag = f"{name}-{os.getpid()}"
        self.name = name
        self.evaluation_queue = f"test-drill-evaluation-{tag}"
        self.delivery_queue = f"test-drill-delivery-{tag}"
        self.env: dict[str, Any] = {
            "DATABASE_URL": _database_url(),
            "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
            # every evaluation writes its row: ``evaluated_since`` reads last_evaluated_at, which
            # a settled monitor otherwise refreshes only every 30 s
            "EVALUATION_ROW_REFRESH_SECONDS": "0",
            "CELERY_EVALUATION_QUEUE": self.evaluation_queue,
            "CELERY_DELIVERY_QUEUE": self.delivery_queue,
            "NOTIFY_RECEIVER_CONCURRENCY": "4",
            "NOTIFY_BREAKER_FAILURES": "3",
            "NOTIFY_BREAKER_COOLDOWN_SECONDS": "1",
            "NOTIFY_RETRY_BASE_SECONDS": "0.5",
            "NOTIFY_RETRY_MAX_SECONDS": "4",
            "NOTIFY_LEASE_SECONDS": "4",
            **env,
        }
        self.evaluation = start_celery_worker(
            f"drill-{name}-evaluation",
            beat=True,
            pool=evaluation_pool,
            concurrency=2,
            queues=self.evaluation_queue,
            **self.env,
        )
        self.delivery: tuple[subprocess.Popen[str], IO[str]] = self._start_delivery()

    def _start_delivery(self) -> tuple[subprocess.Popen[str], IO[str]]:
        return start_celery_worker(
            f"drill-{self.name}-delivery",
            pool="threads",
            concurrency=8,
            queues=self.delivery_queue,
            **self.env,
        )

    def enqueue(self, rows: list[Notification]) -> None:
        for row in rows:
            deliver_notification.apply_async(args=(str(row.pk),), queue=self.delivery_queue)

    def kill_delivery(self) -> None:
        process, log = self.delivery
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        log.close()

    def restart_delivery(self) -> None:
        self.delivery = self._start_delivery()

    def stop(self) -> None:
        if self.delivery[0].poll() is None:
            stop_celery_worker(*self.delivery)
        stop_celery_worker(*self.evaluation)


@contextmanager
def pipeline(name: str, **kwargs: Any) -> Iterator[Pipeline]:
    running = Pipeline(name, **kwargs)
    try:
        yield running
    finally:
        running.stop()


# --- the scenarios ----------------------------------------------------------------------------


def test_a_receiver_hanging_60s_while_1000_monitors_keep_their_interval(
    receiver, other_receiver, influx_db
):
    """1,000 monitors on a 10 s interval; 20 of them fire and notify a healthy receiver, 10 a
    receiver that hangs 60 s (far beyond the 5 s send timeout). The others' claims stay on
    time, the healthy receiver gets its notifications during the hang, and the hanging one
    gets all of its own after it recovers."""
    hanging = ChannelFactory(config={"url": receiver.url})
    healthy = ChannelFactory(owner=hanging.owner, config={"url": other_receiver.url})
    fleet = seed_fleet(influx_db, 1000, hot=[(hanging, 10), (healthy, 20)])
    lag = Lag(fleet.owner.pk)
    with pipeline("hang", evaluation_pool="prefork", NOTIFY_RECEIVER_CONCURRENCY="2"):
        wait_evaluated(fleet)
        receiver.hang = 60.0
        hang_started = timezone.now()
        fleet.heat()
        lag.watch(60)
        hang_ended = timezone.now()
        healthy_during = len(other_receiver.accepted)
        hanging_during = len(receiver.accepted)
        kept_interval = fleet.evaluated_since(hang_ended - 2 * INTERVAL)
        evaluated = fleet.evaluated_since(hang_started)
        receiver.hang = 0  # it recovers
        recovered = time.monotonic()
        Lag(fleet.owner.pk).watch(60, until=all_sent([hanging, healthy]))
        recovery = time.monotonic() - recovered

    tally = account(
        "receiver hanging 60 s, 1,000 monitors",
        [receiver, other_receiver],
        [hanging, healthy],
        lag,
        evaluated_during_hang=evaluated,
        evaluated_in_last_20s=kept_interval,
        healthy_received_during_hang=healthy_during,
        hanging_unanswered=len(receiver.hits) - len(receiver.accepted),
        hanging_max_in_flight=receiver.max_in_flight,
        all_in_after_recovery_s=round(recovery, 1),
    )
    assert_clean(tally, lag_p99=3.0)
    assert tally.expected == 30  # one "fired" per hot monitor and channel
    assert kept_interval == 1000  # every monitor evaluated within its last two intervals
    assert healthy_during == 20  # the healthy receiver was served during the hang
    assert hanging_during == 0
    assert receiver.max_in_flight <= 2


@pytest.mark.services
def test_postgres_restarted_during_a_burst_of_300_sends(receiver, influx_db, stopped_service):
    """300 sends through the delivery worker; once 60 have arrived Postgres is stopped (every
    connection terminated; sends already accepted cannot be recorded), stays down 3 s, and is
    started again. The workers retry on fresh connections (a send accepted before the stop is
    recorded within half its lease, 15 s with the default 30 s lease, so it is not sent
    again). Each key arrives once, none lost; the dispatcher's lag is bounded by the outage."""
    channel = ChannelFactory(config={"url": receiver.url})
    fleet = seed_fleet(influx_db, 100)
    rows = burst(channel, fleet.monitors[0], 300)
    lag = Lag(fleet.owner.pk)
    stopped_service.append("postgres")  # up again after the test, whatever happens
    with pipeline(
        "postgres", NOTIFY_RECEIVER_CONCURRENCY="8", NOTIFY_LEASE_SECONDS="30"
    ) as running:
        wait_evaluated(fleet, every=False)
        receiver.hang = 0.05
        running.enqueue(rows)
        deadline = time.monotonic() + 60
        while len(receiver.accepted) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        at_stop = len(receiver.accepted)
        started = time.monotonic()
        assert services("down", "postgres").returncode == 0
        lag.watch(3)  # unreadable: the database is down
        assert services("up", "postgres").returncode == 0
        outage = time.monotonic() - started
        connection.close()
        lag.watch(90, until=all_sent([channel]))
        retried = {
            part: log_lines(running, part, "database unavailable")
            for part in ("delivery", "evaluation")
        }

    tally = account(
        "Postgres restarted during a burst of 300",
        [receiver],
        [channel],
        lag,
        accepted_when_stopped=at_stop,
        postgres_down_s=round(outage, 1),
        hits=len(receiver.hits),
        db_errors_retried=retried,
    )
    assert retried["delivery"] > 0  # the fault reached the sends
    # the dispatcher cannot claim while Postgres is down: the lag is bounded by the outage
    assert_clean(tally, lag_p99=outage + 5.0)
    assert tally.expected == 300


def test_a_receiver_answering_500_longer_than_the_old_give_up_gets_everything_after(
    receiver, influx_db
):
    """A receiver answers 500 for 30 s, then 200. Time is scaled: retries back off from 0.1 s
    to at most 2 s, so the old give-up of 8 attempts (0.1+0.2+0.4+0.8+1.6+2+2+2 ≈ 9 s) is over
    long before the outage ends. With the defaults (2 s doubling, 8 attempts ≈ 2+4+…+256 ≈ 8.5
    min) a 10-minute outage outlasts that give-up in the same way; the 72 h budget itself is
    tested with time-machine in tests/notify/test_dead_letters.py. During the outage the
    receiver's circuit breaker opens and defers sends (not counted as attempts): counted
    below as deferred rows."""
    channel = ChannelFactory(config={"url": receiver.url})
    fleet = seed_fleet(influx_db, 100)
    rows = burst(channel, fleet.monitors[0], 40)
    lag = Lag(fleet.owner.pk)
    receiver.script = [500]
    outage = 30.0
    # how long the old give-up (8 attempts) took at these settings, jitter aside
    base, most = 0.1, 2.0
    old_give_up = sum(min(most, base * 2**n) for n in range(8))
    with pipeline(
        "outage", NOTIFY_RETRY_BASE_SECONDS=str(base), NOTIFY_RETRY_MAX_SECONDS=str(most)
    ) as running:
        wait_evaluated(fleet, every=False)
        running.enqueue(rows)
        deferred_seen = 0
        deadline = time.monotonic() + outage
        while time.monotonic() < deadline:
            lag.sample()
            deferred_seen = max(
                deferred_seen,
                Notification.objects.filter(
                    channel=channel, last_error__startswith="deferred"
                ).count(),
            )
            time.sleep(0.25)
        failures = len(receiver.hits)
        receiver.script = [200]  # it is back
        recovered = time.monotonic()
        lag.watch(60, until=all_sent([channel]))
        recovery = time.monotonic() - recovered

    attempts = list(Notification.objects.filter(channel=channel).values_list("attempts", flat=True))
    tally = account(
        "receiver answering 500 for 30 s",
        [receiver],
        [channel],
        lag,
        answered_500=failures,
        most_deferred_at_once=deferred_seen,
        attempts_max=max(attempts),
        all_in_after_recovery_s=round(recovery, 1),
        old_give_up_s=round(old_give_up, 1),
    )
    assert_clean(tally, lag_p99=3.0)
    assert tally.expected == 40
    # the circuit opened after NOTIFY_BREAKER_FAILURES (3) and then let one trial through
    # per cool-down (1 s, doubling): every row waited, deferred, not given up
    assert failures >= 3
    assert deferred_seen >= 20  # most of them waiting on the open circuit at once (40 seen)
    assert outage > 3 * old_give_up


def test_the_delivery_worker_sigkilled_mid_burst_and_restarted(receiver, influx_db):
    """200 sends; once some have arrived, every request is held (none can be answered 2xx in
    the instant of the kill) and the delivery worker is SIGKILLed with sends in flight, then
    started again. The rows it held are sent again after their lease; none lost, no key
    accepted twice.

    The killed worker's per-receiver slots (monitors/notify/breaker.py) are not handed back:
    they stay taken until their lease (breaker.LEASE_MS, 15 s) runs out. With as many slots
    as the worker had sends in flight, every send to that receiver is deferred that long (with
    the former 60 s lease: all in 60 s after the restart, instead of about 20 s). Here the
    receiver has 12 slots for the worker's 8 threads: the leak is counted (``slots_leaked``),
    and the other 4 slots carry the rest."""
    channel = ChannelFactory(config={"url": receiver.url})
    fleet = seed_fleet(influx_db, 100)
    rows = burst(channel, fleet.monitors[0], 200)
    lag = Lag(fleet.owner.pk)
    with pipeline("sigkill", NOTIFY_RECEIVER_CONCURRENCY="12") as running:
        wait_evaluated(fleet, every=False)
        receiver.hang = 0.05
        running.enqueue(rows)
        deadline = time.monotonic() + 60
        while len(receiver.accepted) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        receiver.hang = 60.0  # those being answered now wait
        time.sleep(0.5)
        in_flight = receiver.in_flight
        accepted_at_kill = len(receiver.accepted)
        running.kill_delivery()
        receiver.hang = 0
        time.sleep(0.5)  # the held requests see their sender gone
        leaked = breaker.state(channel)["in_flight"]
        killed = time.monotonic()
        running.restart_delivery()
        lag.watch(90, until=all_sent([channel]))
        recovery = time.monotonic() - killed

    tally = account(
        "delivery worker SIGKILLed mid-burst",
        [receiver],
        [channel],
        lag,
        accepted_at_kill=accepted_at_kill,
        in_flight_at_kill=in_flight,
        slots_leaked=leaked,
        hits=len(receiver.hits),
        all_in_after_kill_s=round(recovery, 1),
    )
    assert_clean(tally, lag_p99=3.0)
    assert tally.expected == 200
    assert in_flight > 0  # the kill landed mid-send
