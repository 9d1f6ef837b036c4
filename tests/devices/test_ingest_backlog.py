"""How late device readings are in the ingest stream, per reader, at /metrics: the gauges the
GrowalertIngestBehind rule watches (real Redis, real flusher, real InfluxDB)."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest
from django.test import Client

from devices.ingest import backlog, queue
from tests.devices.ingest_helpers import flush, post


def scrape(client: Client) -> str:
    return client.get("/metrics").content.decode()


def gauge(text: str, name: str, labels: str = "") -> float | None:
    found = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def send(client: Client, key: str, value: float) -> None:
    answer = post(client, f"gro01 temperature={value}", key=key, content_type="text/plain")
    assert answer.status_code == 202, answer.content


def flushers(state: backlog.Backlog) -> backlog.GroupLag:
    return next(g for g in state.groups if g.group == queue.GROUP)


@pytest.mark.django_db
def test_an_empty_stream_is_caught_up(client: Client) -> None:
    state = backlog.read(queue.client())
    assert state.entries == 0
    assert flushers(state) == backlog.GroupLag(group="flushers", oldest_age_seconds=0.0, pending=0)
    text = scrape(client)
    assert gauge(text, "growalert_ingest_stream_entries") == 0
    assert gauge(text, "growalert_ingest_backlog_known") == 1
    assert gauge(text, "growalert_ingest_oldest_unacknowledged_seconds", '{group="flushers"}') == 0


@pytest.mark.django_db
def test_batches_no_flusher_has_read_age_from_the_first_one(client: Client, device: Any) -> None:
    """The flusher never started (no consumer group): the readings wait all the same."""
    _, key = device
    send(client, key, 20)
    time.sleep(1.2)
    send(client, key, 21)

    state = backlog.read(queue.client())
    assert state.entries == 2
    lag = flushers(state)
    assert 1.0 <= lag.oldest_age_seconds < 10
    assert lag.pending == 0
    age = gauge(
        scrape(client), "growalert_ingest_oldest_unacknowledged_seconds", '{group="flushers"}'
    )
    assert age is not None
    assert age >= 1.0


@pytest.mark.django_db
def test_read_but_unacknowledged_batches_count_until_the_write(
    client: Client, device: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flusher that read a batch and died before writing it: the batch is pending, and late."""
    _, key = device
    send(client, key, 20)
    reader = queue.Flusher(consumer="dies-before-writing")
    try:
        reader.redis.xreadgroup(queue.GROUP, reader.consumer, {queue.STREAM: ">"}, count=10)
    finally:
        reader.close()
    time.sleep(1.1)
    send(client, key, 21)  # not read by anyone yet

    lag = flushers(backlog.read(queue.client()))
    assert lag.pending == 1
    assert lag.oldest_age_seconds >= 1.0  # the pending one, older than the unread one

    monkeypatch.setattr(queue, "CLAIM_IDLE_MS", 0)  # another flusher takes it over now
    assert flush() == 2
    queue.trim(queue.client())  # what the flusher does every TRIM_EVERY_S
    caught_up = backlog.read(queue.client())
    assert caught_up.entries == 0
    assert flushers(caught_up) == backlog.GroupLag("flushers", 0.0, 0)


@pytest.mark.django_db
def test_redis_unreachable_makes_the_backlog_unknown_not_zero(
    client: Client, settings: Any
) -> None:
    from tests.observability.receivers import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    queue.reset_local_state()
    try:
        text = scrape(client)
    finally:
        queue.reset_local_state()
    assert gauge(text, "growalert_ingest_backlog_known") == 0
    entries = gauge(text, "growalert_ingest_stream_entries")
    assert entries is not None
    assert math.isnan(entries)
    oldest = gauge(text, "growalert_ingest_oldest_unacknowledged_seconds", '{group="flushers"}')
    assert oldest is not None
    assert math.isnan(oldest)  # in every scrape, as every gauge: NaN when unknown


@pytest.mark.django_db
def test_each_reader_has_its_figure_and_an_abandoned_one_is_left_out(
    client: Client, device: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """An arrival evaluator's group is a reader like the flushers; once the stream stops waiting
    for it (idle past ABANDONED_GROUP_MS, the poller decides its monitors again) it is not
    reported as behind for ever."""
    _, key = device
    redis_client = queue.client()
    redis_client.xgroup_create(queue.STREAM, "evaluators:0", id="0", mkstream=True)
    request.addfinalizer(lambda: redis_client.xgroup_destroy(queue.STREAM, "evaluators:0"))
    send(client, key, 20)
    redis_client.xreadgroup("evaluators:0", "shard-0", {queue.STREAM: ">"}, count=10)
    time.sleep(1.1)

    groups = {g.group: g for g in backlog.read(redis_client).groups}
    assert groups["evaluators:0"].pending == 1
    assert groups["evaluators:0"].oldest_age_seconds >= 1.0

    monkeypatch.setattr(queue, "ABANDONED_GROUP_MS", 500)
    assert {g.group for g in backlog.read(redis_client).groups} == {"flushers"}


def test_the_flusher_waits_to_gather_only_after_a_round_that_was_not_full() -> None:
    assert queue.gather_pause(3, 500, elapsed=0.01, gather=0.05) == pytest.approx(0.04)
    assert queue.gather_pause(3, 500, elapsed=0.2, gather=0.05) == 0.0  # the round took longer
    assert queue.gather_pause(500, 500, elapsed=0.01, gather=0.05) == 0.0  # a backlog: at once
    assert queue.gather_pause(0, 500, elapsed=0.01, gather=0.05) == 0.0  # its read already waited
    assert queue.gather_pause(3, 500, elapsed=0.01, gather=0.0) == 0.0  # switched off
