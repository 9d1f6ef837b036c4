"""A customer's InfluxDB pushing its writes to growalert (devices/ingest/pushed.py): a real
influxd subscription to the WSGI fast path, the endpoint's refusals and bounds, the flusher
leaving the pushed batches alone, the poller handing a source's monitors over only while it is
heard from, and the API that sets the push up."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from billing.gating import comp
from devices import hosted
from devices.arrival.evaluator import ArrivalEvaluator
from devices.ingest import pushed, queue
from monitors import services
from monitors.evaluate import arrival
from monitors.models import Monitor, Notification, Source
from tests.customer_influx import url as customer_influx_url
from tests.devices.ingest_helpers import arrival_monitor, flush, pending_batches
from tests.factories import SourceFactory

pytestmark = pytest.mark.services

SECOND_NS = 1_000_000_000


@pytest.fixture(autouse=True)
def _no_leftover_keys() -> Iterator[None]:
    conn = redis.Redis.from_url(django_settings.REDIS_URL)

    def clear() -> None:
        for pattern in ("growalert:arrival:*", f"{arrival.PUSHING_PREFIX}*"):
            for key in conn.scan_iter(pattern):
                conn.delete(key)
        arrival._marked.clear()

    clear()
    yield
    clear()
    conn.close()


@pytest.fixture
def customer_database() -> Iterator[str]:
    """A database of its own on the customer influxd, dropped with its subscriptions."""
    name = f"push_{uuid.uuid4().hex[:8]}"
    base = customer_influx_url()
    httpx.post(f"{base}/query", data={"q": f'CREATE DATABASE "{name}"'}).raise_for_status()
    yield name
    httpx.post(f"{base}/query", data={"q": f'DROP DATABASE "{name}"'}).raise_for_status()


def _monitor(source: Source, device: str = "d1", **overrides: Any) -> Monitor:
    fields = {"measurement": "sensor_value", "field": "value", "tags": {"device": device}}
    return arrival_monitor(source, device, **{**fields, **overrides})


@pytest.fixture
def pushing(db: None) -> tuple[Source, str]:
    """A source of database "greenhouse" with a monitor of ``sensor_value,device=d1``, pushing:
    (the source, its push key)."""
    source = SourceFactory(database="greenhouse")
    _monitor(source)
    return source, services.source_push_enable(source=source).key


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"growalert:{key}".encode()).decode()


def _push(client: Any, body: str, key: str, *, db: str, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in {"db": db, **params}.items())
    return client.post(
        f"/influx/write?{query}", data=body, content_type="", headers={"Authorization": _basic(key)}
    )


def _stream_lines() -> list[tuple[str, str]]:
    conn = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        entries: Any = conn.xrange(queue.STREAM)
    finally:
        conn.close()
    return [(data[b"db"].decode(), data[b"lines"].decode()) for _, data in entries]


@pytest.mark.django_db(transaction=True)
def test_a_subscribed_influxdb_pushes_its_writes_and_its_monitor_fires_on_arrival(
    server: str, settings: Any, customer_database: str
) -> None:
    settings.SITE_URL = server
    source = SourceFactory(database=customer_database)
    monitor = _monitor(source)
    setup = services.source_push_enable(source=source)
    influx = customer_influx_url()
    made = httpx.post(f"{influx}/query", data={"q": setup.subscription, "db": customer_database})
    assert made.status_code == 200, made.text
    assert "error" not in made.text, made.text
    evaluator = ArrivalEvaluator()
    try:
        evaluator.evaluate_once()  # takes the shard's lease: its windows start now
        base = (time.time_ns() // SECOND_NS + 60) * SECOND_NS  # a window wholly after that
        lines = [
            f"sensor_value,device=d1 value=20 {base}",
            f"sensor_value,device=d1 value=35 {base + SECOND_NS}",
            f"sensor_value,device=d2 value=99 {base}",  # watched by nobody
            f"soil,device=d1 moisture=99 {base}",  # a measurement nobody watches
        ]
        written = httpx.post(
            f"{influx}/write", params={"db": customer_database}, content="\n".join(lines)
        )
        assert written.status_code == 204, written.text
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            evaluator.evaluate_once(block_ms=200)
            if Notification.objects.filter(monitor=monitor, event="fired").exists():
                break
    finally:
        evaluator.close()
    fired = Notification.objects.get(monitor=monitor, event="fired")
    assert fired.payload["value"] == 35.0
    monitor.refresh_from_db()
    assert monitor.status == "firing"
    assert arrival.pushing([source.pk]) == {source.pk}
    pushed = _stream_lines()
    assert {db for db, _ in pushed} == {queue.pushed_stream_key(source.pk)}
    assert not any("soil" in text for _, text in pushed)  # only what the monitors watch
    # The points are in the customer's InfluxDB: the flusher acknowledges them unwritten.
    assert flush() == len(pushed)
    with hosted.client() as conn:
        (result,) = conn.query("SHOW DATABASES", database="_internal")
    assert not any("push" in str(name) for series in result.series for (name,) in series.values)


@pytest.mark.django_db
def test_bad_keys_other_databases_and_bad_precisions_are_refused(
    client: Any, pushing: tuple[Source, str]
) -> None:
    source, key = pushing
    line = f"sensor_value,device=d1 value=20 {time.time_ns()}"

    unknown = _push(client, line, key + "x", db="greenhouse")
    assert unknown.status_code == 401
    assert unknown.json()["code"] == "bad_key"
    assert unknown["WWW-Authenticate"].startswith("Basic")
    assert client.post("/influx/write?db=greenhouse", data=line, content_type="").status_code == 401
    assert _push(client, line, key, db="other").json()["code"] == "wrong_database"
    assert (
        _push(client, line, key, db="greenhouse", precision="h").json()["code"] == "bad_precision"
    )
    assert pending_batches() == 0
    # The 1.x API's other ways to give the key: ?p= and a Token header.
    assert (
        client.post(
            f"/influx/write?db=greenhouse&u=x&p={key}", data=line, content_type=""
        ).status_code
        == 204
    )
    by_token = client.post(
        "/influx/write?db=greenhouse",
        data=line,
        content_type="",
        headers={"Authorization": f"Token {key}"},
    )
    assert by_token.status_code == 204
    assert pending_batches() == 2

    services.source_push_disable(source=source)
    pushed.reset()  # what INGEST_KEY_CACHE_SECONDS does in every web process
    assert _push(client, line, key, db="greenhouse").status_code == 401


@pytest.mark.django_db
def test_only_watched_lines_within_bounds_reach_the_stream_stamped_in_nanoseconds(
    client: Any, pushing: tuple[Source, str]
) -> None:
    source, key = pushing
    now_s = time.time_ns() // SECOND_NS
    body = "\n".join(
        [
            "# a comment",
            f"sensor_value,device=d1 value=21 {now_s}",
            "sensor_value,device=d1 value=22",  # no time: now, as InfluxDB does
            f"sensor_value,device=d1 value=NaN {now_s}",
            f"sensor_value,device=d1 ok=true,value=-Inf {now_s}",
            f"sensor_value,device=d1 value=23 {now_s + 2 * 3600}",  # past INGEST_MAX_FUTURE
            f"sensor_value,device=d1 value=24 {now_s - 30 * 86400}",  # before INGEST_MAX_PAST
            f'sensor_value,device=d1 note="inf and nan",value=25 {now_s}',  # a string: kept
            f"sensor\\ value,device=d1 value=26 {now_s}",  # another (escaped) measurement
            f"humidity,device=d1 value=60 {now_s}",
        ]
    )

    answer = _push(client, body, key, db="greenhouse", precision="s")

    assert answer.status_code == 400
    assert answer.json()["code"] == "partial_write"
    assert answer.json()["dropped"] == 4
    ((db, text),) = _stream_lines()
    assert db == queue.pushed_stream_key(source.pk)
    kept = text.split("\n")
    assert kept[0] == f"sensor_value,device=d1 value=21 {now_s * SECOND_NS}"
    head, stamp = kept[1].rsplit(" ", 1)
    assert head == "sensor_value,device=d1 value=22"
    assert abs(int(stamp) - time.time_ns()) < 5 * SECOND_NS
    assert kept[2] == f'sensor_value,device=d1 note="inf and nan",value=25 {now_s * SECOND_NS}'
    assert len(kept) == 3
    # nothing watched at all: taken, nothing queued
    assert (
        _push(client, f"humidity value=1 {now_s}", key, db="greenhouse", precision="s").status_code
        == 204
    )
    assert pending_batches() == 1


@pytest.mark.django_db
def test_a_source_pushing_more_than_its_share_is_answered_429(
    client: Any, settings: Any, pushing: tuple[Source, str]
) -> None:
    settings.PUSH_SOURCE_POINTS_PER_SECOND = 3
    _, key = pushing
    line = "sensor_value,device=d1 value=20"
    assert _push(client, "\n".join([line] * 3), key, db="greenhouse").status_code == 204
    refused = _push(client, line, key, db="greenhouse")
    if refused.status_code == 204:  # the second turned between the two requests
        refused = _push(client, "\n".join([line] * 4), key, db="greenhouse")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1


@pytest.mark.django_db
def test_a_pushing_sources_monitors_are_handed_over_only_while_it_is_heard_from(
    settings: Any,
) -> None:
    source = SourceFactory(database="greenhouse")
    monitor = _monitor(source)
    polled = SourceFactory(database="greenhouse", owner=source.owner)
    not_pushing = _monitor(polled, device="d2")
    services.source_push_enable(source=source)
    conn = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        started = int(time.time() * 1000) - 120_000
        conn.set(arrival.ready_key(0), started, px=5000)  # shard 0's evaluator is alive
        monitors = list(Monitor.objects.select_related("source"))
        now = timezone.now()
        assert arrival.handed_over(monitors, now) == set()  # nothing pushed yet: still polled
        arrival.mark_pushing(source.pk)
        assert arrival.handed_over(monitors, now) == {monitor.pk}
        assert not_pushing.pk not in arrival.handed_over(monitors, now)
        # Heard from 20 s ago: past PUSHING_TTL_MS, but within a 60 s window.
        conn.set(f"{arrival.PUSHING_PREFIX}{source.pk}", int(time.time() * 1000) - 20_000)
        assert arrival.handed_over(monitors, now) == set()
        assert arrival.pushing([source.pk]) == set()
        Monitor.objects.filter(pk=monitor.pk).update(window=timedelta(seconds=60))
        monitors = list(Monitor.objects.select_related("source"))
        assert arrival.handed_over(monitors, now) == {monitor.pk}
        conn.delete(f"{arrival.PUSHING_PREFIX}{source.pk}")  # never heard from
        assert arrival.handed_over(monitors, now) == set()
    finally:
        conn.close()


@pytest.mark.django_db(transaction=True)
def test_the_web_servers_fast_path_takes_pushed_writes(
    server: str, pushing: tuple[Source, str]
) -> None:
    _, key = pushing
    url = f"{server}/influx/write"
    line = f"sensor_value,device=d1 value=20 {time.time_ns()}"

    taken = httpx.post(url, params={"db": "greenhouse"}, content=line, auth=("growalert", key))
    assert taken.status_code == 204
    assert taken.content == b""
    assert httpx.post(url, params={"db": "greenhouse"}, content=line).status_code == 401
    assert httpx.get(url).status_code == 405
    assert pending_batches() == 1


@pytest.mark.django_db
def test_the_api_shows_the_key_once_and_turns_the_push_off(settings: Any) -> None:
    settings.SITE_URL = "https://growalert.example.com"
    source = SourceFactory(database='green"house')
    other = SourceFactory()
    comp(source.owner)
    api = APIClient()
    api.force_authenticate(source.owner)

    made = api.post(f"/sources/{source.pk}/push")

    assert made.status_code == 201
    key = made.json()["key"]
    assert made.json()["url"] == "https://growalert.example.com/influx"
    assert made.json()["subscription"] == (
        'CREATE SUBSCRIPTION "growalert" ON "green\\"house"."autogen" '
        f"DESTINATIONS ALL 'https://growalert:{key}@growalert.example.com/influx'"
    )
    shown = api.get(f"/sources/{source.pk}").json()
    assert shown["pushes"] is True
    assert shown["push_key_prefix"] == key[:12]
    assert key not in str(shown)
    assert api.post(f"/sources/{other.pk}/push").status_code == 404  # another customer's
    assert api.delete(f"/sources/{source.pk}/push").status_code == 204
    assert api.get(f"/sources/{source.pk}").json()["pushes"] is False


@pytest.mark.django_db
def test_growalerts_own_source_needs_no_push(django_user_model: Any) -> None:
    owner = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    comp(owner)
    source = hosted.hosted_source(owner_id=owner.pk)
    api = APIClient()
    api.force_authenticate(owner)
    refused = api.post(f"/sources/{source.pk}/push")
    assert refused.status_code == 400
    assert "needs no push" in str(refused.json())
    assert not Source.objects.get(pk=source.pk).pushes
