"""What keeps the arrival evaluator's latency tail short (docs/arrival.md, "Latency"): its long-
lived objects are left out of the garbage collector's full walks, and a read's notifying
decisions commit before the rows due a refresh. Real Redis and Postgres."""

from __future__ import annotations

import gc
import time
import weakref
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings

from devices import hosted
from devices.arrival import evaluator as evaluator_module
from devices.arrival.evaluator import ArrivalEvaluator
from monitors.evaluate import pipeline
from monitors.models import Channel, Monitor, Notification
from tests.devices.ingest_helpers import post

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
    gc.unfreeze()


@pytest.fixture
def evaluator() -> Any:
    made = ArrivalEvaluator()
    yield made
    made.close()


@pytest.fixture
def committed(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The monitors of each transaction the evaluator commits, in order."""
    made: list[list[int]] = []
    commit = pipeline.commit_decisions

    def recording(decisions: list[Any], *args: Any, **kwargs: Any) -> Any:
        made.append([d.monitor.pk for d in decisions])
        return commit(decisions, *args, **kwargs)

    monkeypatch.setattr(evaluator_module, "commit_decisions", recording)
    return made


def _monitor(owner: Any, device: Any, *, critical: float) -> Monitor:
    channel = Channel.objects.create(
        owner=owner, name=f"hook {critical}", kind="webhook", config={"url": "http://127.0.0.1:9/"}
    )
    monitor = Monitor.objects.create(
        owner=owner,
        source=hosted.hosted_source(owner_id=owner.pk),
        name=f"above {critical}",
        measurement="gro01",
        field="temperature",
        tags={"device_id": str(device.pk)},
        aggregation="last",
        window=timedelta(seconds=2),
        comparator="above",
        critical=critical,
        interval=timedelta(seconds=10),
    )
    monitor.channels.add(channel)
    return monitor


def _send(client: Any, key: str, readings: list[tuple[int, float]]) -> None:
    body = "\n".join(f"gro01 temperature={value} {at_ns}" for at_ns, value in readings)
    assert post(client, body, key=key, content_type="text/plain").status_code == 202


def _base_ns() -> int:
    """A minute ahead: the evaluator decides at once (its windows lie after its start)."""
    return (time.time_ns() // SECOND_NS + 60) * SECOND_NS


def _drain(evaluator: ArrivalEvaluator) -> None:
    while evaluator.evaluate_once().entries:
        evaluator.settle()


class _Cycle:
    """Garbage only the cyclic collector frees."""

    def __init__(self) -> None:
        self.me = self


def test_monitors_loaded_by_a_read_are_left_out_of_full_collections(
    client, owner, device, evaluator
):
    dev, key = device
    _monitor(owner, dev, critical=30.0)
    gc.unfreeze()
    evaluator.evaluate_once()
    evaluator.settle()  # nothing loaded yet: nothing frozen
    assert gc.get_freeze_count() == 0

    _send(client, key, [(_base_ns(), 20.0)])
    _drain(evaluator)

    assert evaluator.cache
    assert gc.get_freeze_count() > 0
    evaluator.close()
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_frozen_with_them_is_collected_at_the_next_thaw(evaluator, monkeypatch):
    monkeypatch.setattr(evaluator_module, "THAW_EVERY", 2)
    gc.unfreeze()
    cycle = _Cycle()
    gone = weakref.ref(cycle)
    evaluator._loaded = True
    evaluator.settle()
    del cycle
    gc.collect()
    assert gone() is not None  # frozen: not collected

    evaluator._loaded = True
    evaluator.settle()  # the second freeze: everything thawed and collected once

    assert gone() is None


def test_a_reads_notifying_decisions_commit_before_the_rows_due_a_refresh(
    client, owner, device, evaluator, committed
):
    dev, key = device
    hot = _monitor(owner, dev, critical=30.0)
    calm = _monitor(owner, dev, critical=50.0)
    evaluator.evaluate_once()
    base = _base_ns()
    _send(client, key, [(base, 20.0)])
    _drain(evaluator)
    evaluator.cache[calm.pk].written_at = -1e9  # its row is due a refresh
    evaluator._rows_at = -1e9  # and the next read is the one that writes such rows

    _send(client, key, [(base + SECOND_NS, 35.0)])
    _drain(evaluator)

    assert committed == [[hot.pk], [calm.pk]]
    assert Notification.objects.filter(monitor=hot, event="fired").count() == 1
    calm.refresh_from_db()
    assert calm.last_value == 35.0


def test_a_read_refreshes_at_most_its_share_of_due_rows_the_longest_unwritten_first(
    client, owner, device, evaluator, committed
):
    dev, key = device
    monitors = [_monitor(owner, dev, critical=50.0 + i) for i in range(3)]
    evaluator.evaluate_once()
    base = _base_ns()
    _send(client, key, [(base, 20.0)])
    _drain(evaluator)
    # all three due; the share of 3 monitors is one row per read (REFRESH_SHARE x 3 x 0.25/30)
    for age, monitor in zip((-3e9, -1e9, -2e9), monitors, strict=True):
        evaluator.cache[monitor.pk].written_at = age

    for second in (1, 2, 3):
        evaluator._rows_at = -1e9  # the next read is one that writes rows due a refresh
        _send(client, key, [(base + second * SECOND_NS, 21.0)])
        _drain(evaluator)

    oldest, newest, middle = monitors
    assert committed == [[oldest.pk], [middle.pk], [newest.pk]]
    for monitor in monitors:
        monitor.refresh_from_db()
    assert [m.last_value for m in monitors] == [21.0, 21.0, 21.0]


class _Stop:
    """A stop event for ``_loop`` that ends it after the given rounds and records its waits."""

    def __init__(self, rounds: int) -> None:
        self.left = rounds
        self.waits: list[float] = []

    def is_set(self) -> bool:
        return self.left <= 0

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False


@pytest.mark.parametrize(
    ("gather_ms", "entries", "waits"),
    [
        (20, 3, True),  # a read that was not full: the next one waits to carry more
        (20, 1000, False),  # a full read: the stream is behind, read again at once
        (20, 0, False),  # nothing came within the block: read again at once
        (0, 3, False),  # gathering switched off
    ],
)
def test_after_a_read_that_was_not_full_the_next_waits_up_to_the_gather_time(
    evaluator, monkeypatch, gather_ms, entries, waits
):
    monkeypatch.setattr(settings, "ARRIVAL_GATHER_MS", gather_ms)
    stop = _Stop(rounds=3)

    def read_once(**kwargs: Any) -> evaluator_module.Round:
        stop.left -= 1
        return evaluator_module.Round(entries=entries)

    monkeypatch.setattr(evaluator, "evaluate_once", read_once)
    monkeypatch.setattr(evaluator, "settle", lambda: None)
    evaluator.batch = 1000
    evaluator._loop(stop, evaluator_module.FullCollections())
    assert len(stop.waits) == (3 if waits else 0)
    assert all(0 < seconds <= gather_ms / 1000 for seconds in stop.waits)
