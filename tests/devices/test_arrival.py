"""Evaluation on arrival (devices/arrival, docs/arrival.md) against the real Redis, Postgres and
InfluxDB: readings posted to /ingest are decided by the arrival evaluator without any poll.

Readings are stamped a minute ahead (the ingest accepts up to an hour): an evaluator decides a
reading only once its window lies wholly after the evaluator's start, and this lets the tests
decide at once instead of waiting a window out."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from django.conf import settings

from devices import hosted, services
from devices.arrival.evaluator import LEASE_PREFIX, ArrivalEvaluator, Round
from devices.ingest import queue
from monitors.evaluate import arrival, backtest, pipeline, time_zones
from monitors.models import Monitor, Notification
from tests.devices.ingest_helpers import arrival_monitor, flush, post, rows

pytestmark = [pytest.mark.services, pytest.mark.django_db]

SECOND_NS = 1_000_000_000


@pytest.fixture(autouse=True)
def _no_leftover_leases() -> Any:
    conn = redis.Redis.from_url(settings.REDIS_URL)
    for key in conn.scan_iter("growalert:arrival:*"):
        conn.delete(key)
    yield
    for key in conn.scan_iter("growalert:arrival:*"):
        conn.delete(key)
    conn.close()


@pytest.fixture
def evaluators() -> Any:
    made: list[ArrivalEvaluator] = []

    def make(**kwargs: Any) -> ArrivalEvaluator:
        evaluator = ArrivalEvaluator(**kwargs)
        made.append(evaluator)
        return evaluator

    yield make
    for evaluator in made:
        evaluator.close()


def _monitor(owner: Any, device: Any, **overrides: Any) -> Monitor:
    fields = {"measurement": "gro01", "field": "temperature", "tags": {"device_id": str(device.pk)}}
    source = hosted.hosted_source(owner_id=owner.pk)
    return arrival_monitor(source, device.name, **{**fields, **overrides})


def _base_ns(ahead_s: int = 60) -> int:
    return (time.time_ns() // SECOND_NS + ahead_s) * SECOND_NS


def _send(client: Any, key: str, readings: list[tuple[int, float]]) -> None:
    body = "\n".join(f"gro01 temperature={value} {at_ns}" for at_ns, value in readings)
    assert post(client, body, key=key, content_type="text/plain").status_code == 202


def _drain(evaluator: ArrivalEvaluator) -> list[Round]:
    rounds = [evaluator.evaluate_once()]
    while rounds[-1].entries:
        rounds.append(evaluator.evaluate_once())
    return rounds


def _events(rounds: list[Round]) -> list[tuple[int, int, str]]:
    return [e for r in rounds for e in r.events]


def test_a_reading_over_the_threshold_queues_a_firing_notification_without_any_poll(
    client, owner, device, evaluators
):
    dev, key = device
    monitor = _monitor(owner, dev)
    evaluator = evaluators()
    evaluator.evaluate_once()  # takes the shard's lease: its windows start now
    base = _base_ns()
    _send(client, key, [(base, 20.0), (base + SECOND_NS, 35.0)])

    rounds = _drain(evaluator)

    fired = Notification.objects.get(monitor=monitor, event="fired")
    assert fired.payload["value"] == 35.0
    assert fired.payload["occurred_at"].startswith(
        datetime.fromtimestamp((base + SECOND_NS) / 1e9, tz=UTC).isoformat()[:19]
    )
    monitor.refresh_from_db()
    assert monitor.status == "firing"
    assert monitor.incidents.filter(resolved_at=None).count() == 1
    assert sum(r.evaluations for r in rounds) == 2


def test_the_pending_period_is_honoured_then_recovery_resolves(client, owner, device, evaluators):
    dev, key = device
    monitor = _monitor(owner, dev, pending_for=3, recover_after=2)
    evaluator = evaluators()
    evaluator.evaluate_once()
    base = _base_ns()
    _send(client, key, [(base + i * SECOND_NS, 35.0) for i in range(2)])
    _drain(evaluator)
    monitor.refresh_from_db()
    assert monitor.status == "pending"
    assert not Notification.objects.filter(monitor=monitor).exists()

    _send(client, key, [(base + 2 * SECOND_NS, 36.0)])
    _drain(evaluator)
    assert Notification.objects.filter(monitor=monitor, event="fired").count() == 1

    _send(client, key, [(base + 3 * SECOND_NS, 20.0)])
    _drain(evaluator)
    monitor.refresh_from_db()
    assert monitor.status == "firing"  # one pass of the two recovery needs
    _send(client, key, [(base + 4 * SECOND_NS, 21.0)])
    _drain(evaluator)
    monitor.refresh_from_db()
    assert monitor.status == "ok"
    assert Notification.objects.filter(monitor=monitor, event="resolved").count() == 1
    assert monitor.incidents.get().resolved_at is not None


def test_the_arrival_path_and_the_backtest_take_the_same_decisions(
    client, owner, device, evaluators
):
    dev, key = device
    monitor = _monitor(
        owner,
        dev,
        aggregation="mean",
        window=timedelta(seconds=25),
        interval=timedelta(seconds=10),
        warning=25.0,
        pending_for=2,
        recover_after=2,
        flap_detection=False,
    )
    values = [20, 22, 26, 27, 31, 33, 35, 29, 24, 22, 21, 35, 36, 20, 20, 20, 26, 20, 19, 18]
    evaluator = evaluators()
    evaluator.evaluate_once()
    base = _base_ns()
    # One reading per interval: the backtest evaluates once per interval, the arrival path once
    # per reading; the window (25 s) holds two or three readings.
    readings = [(base + (i + 1) * 10 * SECOND_NS, float(v)) for i, v in enumerate(values)]
    for i in range(0, len(readings), 3):  # several batches, several reads
        _send(client, key, readings[i : i + 3])
    live = _events(_drain(evaluator))
    flush()

    end = datetime.fromtimestamp(readings[-1][0] / 1e9, tz=UTC)
    replayed = backtest.backtest(monitor, hours=len(values) * 10 / 3600, end=end)

    assert isinstance(replayed, backtest.Backtest)
    assert replayed.error is None
    assert [e["time"] for e in replayed.evaluations] == [at // 1_000_000 for at, _ in readings]
    expected = [(monitor.pk, e["time"], e["kind"]) for e in replayed.events]
    assert live == expected
    assert {kind for _, _, kind in live} >= {"fired", "resolved", "warning_raised"}
    monitor.refresh_from_db()
    assert monitor.status == replayed.evaluations[-1]["status"]


def test_two_shards_share_the_load_without_a_double_notification(
    client, settings, django_user_model, evaluators
):
    settings.ARRIVAL_SHARDS = 2
    owners = [
        django_user_model.objects.create_user(f"grower{i}", f"g{i}@example.com", "pw-long-enough")
        for i in range(4)
    ]
    devices = [services.device_add(owner=o, name="Bench") for o in owners]
    monitors = [_monitor(o, d) for o, (d, _) in zip(owners, devices, strict=True)]
    shards = [evaluators(shard=0), evaluators(shard=1)]
    for evaluator in shards:
        evaluator.evaluate_once()
    base = _base_ns()
    for _, key in devices:
        _send(client, key, [(base, 35.0)])

    done = {s.shard: sum(r.evaluations for r in _drain(s)) for s in shards}
    for evaluator in shards:  # a second pass finds nothing left to do
        assert _drain(evaluator)[0].entries == 0

    assert done == {0: 2, 1: 2}
    for monitor in monitors:
        assert Notification.objects.filter(monitor=monitor, event="fired").count() == 1


def test_two_shards_split_one_accounts_monitors_each_decided_by_one(
    client, settings, owner, evaluators
):
    """Shards are by monitor: one account's many monitors spread over every shard, each
    monitor's readings decided by exactly one of them."""
    settings.ARRIVAL_SHARDS = 2
    devices = [services.device_add(owner=owner, name=f"Bench {i}") for i in range(4)]
    monitors = [_monitor(owner, d) for d, _ in devices]
    shards = [evaluators(shard=0), evaluators(shard=1)]
    for evaluator in shards:
        evaluator.evaluate_once()
    base = _base_ns()
    for _, key in devices:
        _send(client, key, [(base, 20.0), (base + SECOND_NS, 35.0)])

    rounds = {s.shard: _drain(s) for s in shards}

    for shard, done in rounds.items():
        mine = {m.pk for m in monitors if m.pk % 2 == shard}
        assert len(mine) == 2
        assert sum(r.evaluations for r in done) == 4  # two readings of each of its two
        assert {pk for pk, _, kind in _events(done) if kind == "fired"} == mine
    for monitor in monitors:
        assert Notification.objects.filter(monitor=monitor, event="fired").count() == 1


def test_a_photoperiod_monitor_is_judged_by_the_nights_thresholds_at_night(
    client, owner, device, evaluators
):
    """Which thresholds hold is decided by each reading's time, as the poller's and the
    backtest's step decide it (the evaluator used the day's at night before)."""
    dev, key = device
    base = _base_ns()
    at = datetime.fromtimestamp(base / 1e9, tz=UTC)
    zone = ZoneInfo(time_zones.of_owner(owner.pk))
    lights_on = (at + timedelta(hours=2)).astimezone(zone).time().replace(second=0)
    lights_off = (at + timedelta(hours=3)).astimezone(zone).time().replace(second=0)
    monitor = _monitor(
        owner, dev, critical=30.0, night_critical=40.0, lights_on=lights_on, lights_off=lights_off
    )
    evaluator = evaluators()
    evaluator.evaluate_once()
    _send(client, key, [(base, 35.0), (base + 10 * SECOND_NS, 45.0)])

    live = _events(_drain(evaluator))
    flush()

    assert live == [(monitor.pk, (base + 10 * SECOND_NS) // 1_000_000, "fired")]
    replayed = backtest.backtest(monitor, hours=10 / 3600, end=at + timedelta(seconds=10))
    assert isinstance(replayed, backtest.Backtest)
    told = [(monitor.pk, e["time"], e["kind"]) for e in replayed.events]
    assert [e for e in told if e[2] in ("fired", "resolved")] == live


def test_a_settled_monitors_refresh_writes_its_value_narrow(client, owner, device, evaluators):
    """Passing readings of a settled monitor take the quiet path; the row's refresh (every
    REFRESH_S) writes its value and reason, not a new state or version, once nothing a
    transition tells apart changed since the last whole write (without flap detection: with
    it, the flap history fills over its first 21 readings, each a change)."""
    dev, key = device
    monitor = _monitor(owner, dev, flap_detection=False)
    evaluator = evaluators()
    evaluator.evaluate_once()
    base = _base_ns()

    def readings_due_a_refresh(values: list[tuple[int, float]]) -> None:
        evaluator.cache[monitor.pk].written_at = -1e9  # its 30 s are up
        evaluator._rows_at = -1e9  # and this read is the one a second that refreshes rows
        _send(client, key, values)
        _drain(evaluator)

    _send(client, key, [(base, 20.0)])
    _drain(evaluator)  # the row's state had no "since": the first refresh writes it whole
    readings_due_a_refresh([(base + SECOND_NS, 21.0), (base + 2 * SECOND_NS, 22.0)])
    whole = Monitor.objects.get(pk=monitor.pk)
    readings_due_a_refresh([(base + 3 * SECOND_NS, 23.0), (base + 4 * SECOND_NS, 24.0)])
    narrow = Monitor.objects.get(pk=monitor.pk)

    assert whole.last_value == 22.0
    assert whole.state["passes"] == 3
    assert narrow.last_value == 24.0
    assert narrow.state_version == whole.state_version
    assert narrow.state == whole.state
    assert whole.evaluated_due_at is not None
    assert narrow.evaluated_due_at is not None
    assert narrow.evaluated_due_at > whole.evaluated_due_at  # when they reached the stream
    assert evaluator.cache[monitor.pk].current().passes == 5
    assert not Notification.objects.filter(monitor=monitor).exists()


def test_a_killed_evaluators_readings_are_claimed_and_decided_once(
    client, owner, device, evaluators
):
    dev, key = device
    monitor = _monitor(owner, dev)
    first = evaluators(consumer="first")
    first.evaluate_once()
    base = _base_ns()
    _send(client, key, [(base, 35.0)])
    assert first._lead()
    assert len(first._read(None)) == 1
    conn = redis.Redis.from_url(settings.REDIS_URL)
    conn.delete(f"{LEASE_PREFIX}0")  # its lease runs out
    conn.close()

    second = evaluators(consumer="second")
    rounds = _drain(second)
    rounds += _drain(second)

    assert sum(r.entries for r in rounds) == 1
    assert Notification.objects.filter(monitor=monitor, event="fired").count() == 1
    assert first._lead() is False  # the first, back, is a standby now


def test_a_replayed_read_changes_nothing(client, owner, device, evaluators):
    dev, key = device
    monitor = _monitor(owner, dev)
    evaluator = evaluators()
    evaluator.evaluate_once()
    _send(client, key, [(_base_ns(), 35.0)])
    entries = evaluator._read(None)
    touched = evaluator._take(entries, Round())
    decided = evaluator._decide(touched, Round())
    evaluator._write(decided, Round())  # committed; killed before the acknowledgement
    version = Monitor.objects.get(pk=monitor.pk).state_version

    again = ArrivalEvaluator(consumer="again")  # same shard: a standby until the lease goes
    evaluator.close()
    _drain(again)
    _drain(again)
    again.close()

    assert Notification.objects.filter(monitor=monitor).count() == 1
    assert Monitor.objects.get(pk=monitor.pk).state_version == version


def test_fire_resolve_fire_in_one_read_tells_each_transition_and_opens_two_incidents(
    client, owner, device, evaluators
):
    dev, key = device
    monitor = _monitor(owner, dev, flap_detection=False)
    evaluator = evaluators()
    evaluator.evaluate_once()
    base = _base_ns()
    flips = [20.0, 35.0, 20.0, 36.0]  # fired, resolved, fired again: one request, one read
    _send(client, key, [(base + i * SECOND_NS, value) for i, value in enumerate(flips)])

    rounds = _drain(evaluator)

    assert [kind for _, _, kind in _events(rounds)] == ["fired", "resolved", "fired"]
    told = {(n.event, n.payload["value"]): n for n in Notification.objects.filter(monitor=monitor)}
    assert sorted(told) == [("fired", 35.0), ("fired", 36.0), ("resolved", 20.0)]
    assert len({n.idempotency_key for n in told.values()}) == 3
    first, second = monitor.incidents.order_by("opened_value")
    assert (first.opened_value, second.opened_value) == (35.0, 36.0)
    assert first.resolved_at is not None
    assert second.resolved_at is None
    assert told[("fired", 35.0)].incident_id == first.pk
    assert told[("resolved", 20.0)].incident_id == first.pk
    assert told[("fired", 36.0)].incident_id == second.pk


def test_a_replayed_read_of_several_transitions_changes_nothing(client, owner, device, evaluators):
    dev, key = device
    monitor = _monitor(owner, dev, flap_detection=False)
    evaluator = evaluators()
    evaluator.evaluate_once()
    base = _base_ns()
    _send(client, key, [(base + i * SECOND_NS, v) for i, v in enumerate([35.0, 20.0, 35.0])])
    entries = evaluator._read(None)
    decided = evaluator._decide(evaluator._take(entries, Round()), Round())
    evaluator._write(decided, Round())  # committed; killed before the acknowledgement
    keys = set(Notification.objects.filter(monitor=monitor).values_list("idempotency_key"))

    again = ArrivalEvaluator(consumer="again")
    evaluator.close()
    _drain(again)
    _drain(again)
    again.close()

    assert len(keys) == 3
    assert set(Notification.objects.filter(monitor=monitor).values_list("idempotency_key")) == keys


def test_an_entry_stays_until_the_flusher_and_the_evaluators_both_acknowledged_it(
    client, owner, device, evaluators
):
    dev, key = device
    _monitor(owner, dev)
    evaluator = evaluators()
    evaluator.evaluate_once()
    _send(client, key, [(_base_ns(), 21.0)])
    conn = redis.Redis.from_url(settings.REDIS_URL)

    assert flush() == 1
    assert conn.xlen(queue.STREAM) == 1  # the evaluators have not had it yet
    _drain(evaluator)
    queue.trim(conn)
    assert conn.xlen(queue.STREAM) == 0

    _send(client, key, [(_base_ns(), 22.0)])
    _drain(evaluator)
    queue.trim(conn)
    assert conn.xlen(queue.STREAM) == 1  # the flusher has not written it yet
    conn.close()


def test_a_killed_flusher_loses_no_write(client, owner, device, evaluators, monkeypatch):
    _dev, key = device
    evaluators().evaluate_once()
    at = _base_ns(-5)
    _send(client, key, [(at, 23.5)])
    killed = queue.Flusher(consumer="killed")
    assert len(killed._read(None)) == 1  # read, then killed before writing
    monkeypatch.setattr(queue, "CLAIM_IDLE_MS", 0)

    assert flush() == 1  # another flusher claims it

    assert [r["temperature"] for r in rows(owner.pk)] == [23.5]
    killed.redis.close()


def test_an_abandoned_evaluator_group_stops_holding_the_stream(
    client, owner, device, evaluators, monkeypatch
):
    _dev, key = device
    evaluators().evaluate_once()
    _send(client, key, [(_base_ns(), 21.0)])
    assert flush() == 1
    conn = redis.Redis.from_url(settings.REDIS_URL)
    queue.trim(conn)
    assert conn.xlen(queue.STREAM) == 1
    monkeypatch.setattr(queue, "ABANDONED_GROUP_MS", 0)
    queue.trim(conn)
    assert conn.xlen(queue.STREAM) == 0
    conn.close()


def test_the_poller_leaves_an_arrival_monitors_readings_to_the_live_evaluator(
    client, owner, device, evaluators
):
    dev, key = device
    monitor = _monitor(owner, dev, window=timedelta(seconds=30))
    _send(client, key, [(time.time_ns() - SECOND_NS, 35.0)])
    flush()
    now = datetime.now(tz=UTC)
    conn = redis.Redis.from_url(settings.REDIS_URL)
    conn.set(arrival.ready_key(0), int(time.time() * 1000) - 120_000, px=5000)

    left = pipeline.evaluate_batch([(monitor.pk, now)])

    assert left.skipped == 1
    assert left.applied == 0
    conn.delete(arrival.ready_key(0))  # the evaluator is gone: the poller decides again
    decided = pipeline.evaluate_batch([(monitor.pk, now + timedelta(seconds=1))])
    assert decided.applied == 1
    assert Notification.objects.filter(monitor=monitor, event="fired").count() == 1
    conn.close()


def test_a_monitor_the_evaluator_cannot_decide_stays_with_the_poller(client, owner, device):
    dev, _ = device
    monitor = _monitor(owner, dev)
    monitor.critical = float("nan")  # as a row planted past validation would read
    conn = redis.Redis.from_url(settings.REDIS_URL)
    conn.set(arrival.ready_key(0), int(time.time() * 1000) - 120_000, px=5000)

    assert arrival.eligible(monitor)
    assert arrival.handed_over([monitor], datetime.now(tz=UTC)) == set()
    conn.close()
