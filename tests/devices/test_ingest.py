"""POST /ingest against real Postgres, Redis and InfluxDB: what is accepted reaches the
account's own database; whatever is refused is a clear 4xx and writes nothing."""

from __future__ import annotations

import json
import time

import pytest

from devices import services
from devices.ingest import queue
from devices.models import Device
from monitors.influxdb.client import InfluxUnreachable
from tests.devices.ingest_helpers import flush, pending_batches, post, rows, signed_headers

NOW_MS = lambda: int(time.time() * 1000)  # noqa: E731


def _event(temperature: float = 21.5, **extra):
    return {"event_type": "gro01", "data": {"temperature": temperature, **extra}}


@pytest.mark.django_db
def test_a_json_batch_is_written_to_the_accounts_own_database_only(client, owner, other, device):
    dev, key = device
    _, other_key = services.device_add(owner=other, name="Theirs")
    now = NOW_MS()
    batch = {
        "events": [
            {**_event(20.0 + i), "tags": {"bench": "b1"}, "timestamp": now - 1000 * i}
            for i in range(3)
        ]
    }

    answer = post(client, batch, key=key)
    assert answer.status_code == 202, answer.content
    assert answer.json() == {"accepted": 3, "rejected": 0}
    assert post(client, _event(5.0), key=other_key).status_code == 202
    assert flush() == 2

    mine = rows(owner.pk)
    assert sorted(r["temperature"] for r in mine) == [20.0, 21.0, 22.0]
    assert {(r["bench"], r["device_id"]) for r in mine} == {("b1", str(dev.pk))}
    theirs = rows(other.pk)
    assert [r["temperature"] for r in theirs] == [5.0]
    assert pending_batches() == 0


@pytest.mark.django_db
def test_alertstream_single_event_and_a_list_are_accepted(client, owner, device):
    _, key = device
    assert post(client, _event(1.0), key=key).json()["accepted"] == 1
    assert post(client, [_event(2.0), _event(3.0)], key=key).json()["accepted"] == 2
    flush()
    assert sorted(r["temperature"] for r in rows(owner.pk)) == [1.0, 2.0, 3.0]


@pytest.mark.django_db
def test_line_protocol_with_escapes_strings_and_precision(client, owner, device):
    _, key = device
    now_s = int(time.time())
    body = "\n".join(
        [
            "# a comment line",
            "gro01,room=north\\ bay,bench=a\\,b "
            f'temperature=21.5,count=3i,ok=true,message="say \\"hi\\", ok" {now_s}',
            f"gro01,room=north\\ bay humidity=55 {now_s - 10}",
        ]
    )
    answer = post(client, body, key=key, content_type="text/plain", path="/ingest?precision=s")
    assert answer.status_code == 202, answer.content
    assert answer.json()["accepted"] == 2
    flush()
    found = sorted(rows(owner.pk), key=lambda r: r["time"])
    assert found[0]["humidity"] == 55.0
    assert found[1]["room"] == "north bay"
    assert found[1]["bench"] == "a,b"
    assert found[1]["count"] == 3.0
    assert found[1]["ok"] == 1.0
    assert found[1]["message"] == 'say "hi", ok'
    assert found[1]["time"] == now_s * 1000


@pytest.mark.django_db
def test_readings_update_the_devices_status(client, owner, device):
    dev, key = device
    now = NOW_MS()
    post(client, {**_event(battery=81, rssi=-67, firmware="1.4.2"), "timestamp": now}, key=key)
    flush()
    dev.refresh_from_db()
    assert (dev.battery, dev.rssi, dev.firmware) == (81, -67, "1.4.2")
    assert dev.last_seen_at is not None
    assert abs(dev.last_seen_at.timestamp() * 1000 - now) < 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", [None, "", "gro_not-a-key", "x" * 500])
def test_a_missing_or_unknown_key_is_401_and_writes_nothing(client, owner, device, key):
    answer = post(client, _event(), key=key)
    assert answer.status_code == 401
    assert answer.json()["code"] == "bad_key"
    assert pending_batches() == 0


@pytest.mark.django_db
def test_an_unclaimed_device_cannot_send(client):
    _, key = services._create(name="stock")
    assert post(client, _event(), key=key).status_code == 401


@pytest.mark.django_db
def test_a_rotated_key_stops_working_after_the_cache_period(client, owner, device, settings):
    settings.INGEST_KEY_CACHE_SECONDS = 0
    dev, key = device
    assert post(client, _event(), key=key).status_code == 202
    new_key = services.device_rotate_ingest_key(device=dev)
    assert post(client, _event(), key=key).status_code == 401
    assert post(client, _event(), key=new_key).status_code == 202


@pytest.mark.django_db
def test_a_signed_request_is_accepted_once(client, owner, device):
    _, key = device
    body = json.dumps(_event()).encode()
    headers = signed_headers(body, key)
    assert post(client, body, key=key, **headers).status_code == 202
    replayed = post(client, body, key=key, **headers)
    assert replayed.status_code == 403
    assert replayed.json()["code"] == "replayed"
    assert pending_batches() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("body", "bad_signature"),
        ("signature", "bad_signature"),
        ("skew_past", "stale_timestamp"),
        ("skew_future", "stale_timestamp"),
        ("no_timestamp", "no_timestamp"),
        ("bad_timestamp", "bad_timestamp"),
    ],
)
def test_bad_signatures_and_clock_skew_are_403_and_write_nothing(client, device, change, code):
    _, key = device
    body = json.dumps(_event()).encode()
    # Past the 300 s window by more than the second signed_headers truncates the time by.
    at = {"skew_past": time.time() - 302, "skew_future": time.time() + 302}.get(change)
    headers = signed_headers(body, key, at=at)
    if change == "body":
        body = json.dumps(_event(99.0)).encode()
    elif change == "signature":
        headers["X-Signature"] = "sha256=" + "0" * 64
    elif change == "no_timestamp":
        del headers["X-Timestamp"]
    elif change == "bad_timestamp":
        headers["X-Timestamp"] = "yesterday"
    answer = post(client, body, key=key, **headers)
    assert answer.status_code == 403
    assert answer.json()["code"] == code
    assert pending_batches() == 0


@pytest.mark.django_db
def test_an_oversized_body_is_413_and_writes_nothing(client, device, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    _, key = device
    body = json.dumps([_event(float(i)) for i in range(40)])
    assert len(body) > 1000
    answer = post(client, body, key=key)
    assert answer.status_code == 413
    assert answer.json()["code"] == "too_large"
    assert pending_batches() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        ("{not json", "application/json", "malformed"),
        ('{"events": [], "extra": 1}', "application/json", "malformed"),
        ("[]", "application/json", "empty"),
        ('{"event_type": "gro01", "data": {"t": NaN}}', "application/json", "not_finite"),
        ('{"event_type": "gro01", "data": {"t": Infinity}}', "application/json", "not_finite"),
        ("", "text/plain", "empty"),
        ("gro01 t=1", "application/xml", "unsupported_type"),
    ],
)
def test_unreadable_bodies_are_refused_whole(client, device, body, content_type, code):
    _, key = device
    answer = post(client, body, key=key, content_type=content_type)
    assert answer.status_code in (400, 415)
    assert answer.json()["code"] == code
    assert answer.json()["detail"]
    assert pending_batches() == 0


@pytest.mark.django_db
def test_too_many_points_is_refused(client, device, settings):
    settings.INGEST_MAX_POINTS = 5
    _, key = device
    answer = post(client, [_event()] * 6, key=key)
    assert answer.status_code == 400
    assert answer.json()["code"] == "too_many_points"


@pytest.mark.django_db
def test_one_bad_point_refuses_the_batch_and_names_every_bad_point(client, owner, device):
    _, key = device
    now = NOW_MS()
    events = [
        _event(1.0),  # 0 fine
        {**_event(), "colour": "red"},  # 1 unknown field
        {"event_type": "gro01", "data": {"t": "OVERFLOW"}},  # 2 overflows to infinity
        {"event_type": "bad name", "data": {"t": 1}},  # 3
        {**_event(), "timestamp": now + 2 * 3600 * 1000},  # 4 future
        {**_event(), "timestamp": now - 8 * 86400 * 1000},  # 5 past
        {"event_type": "gro01", "data": {}},  # 6 no field
        {"event_type": "gro01", "data": {"t": [1]}},  # 7 type
        {**_event(), "tags": {"device_id": "7"}},  # 8 server tag
        {**_event(), "tags": {"room": "x" * 201}},  # 9 tag size
        "not an object",  # 10
        _event(2.0),  # 11 fine
    ]
    body = json.dumps({"events": events}).replace('"OVERFLOW"', "1e999")
    answer = post(client, body, key=key)
    assert answer.status_code == 400
    payload = answer.json()
    assert payload["code"] == "invalid_points"
    assert payload["accepted"] == 0
    assert payload["rejected"] == 10
    assert [e["index"] for e in payload["errors"]] == list(range(1, 11))
    messages = {e["index"]: e["error"] for e in payload["errors"]}
    assert "colour" in messages[1]
    assert "NaN and infinity" in messages[2]
    assert "future" in messages[4]
    assert "past" in messages[5]
    assert pending_batches() == 0
    flush()
    assert rows(owner.pk) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("gro01 t=NaN", "not a number"),
        ("gro01 t=inf", "not a number"),
        ("gro01 t=1e999", "NaN and infinity"),
        ("gro01 t=1 notatime", "integer"),
        ("gro01", "expected"),
        ("gro01 t=", "key=value"),
        ('gro01 t="open', "unterminated"),
        ("gro01,device_id=3 t=1", "set by growalert"),
        ("gro01 t=1 99999999999999999999", "future"),
        ("gro01 time=1", "reserved"),
    ],
)
def test_bad_line_protocol_points_are_refused_with_their_index(client, device, line, fragment):
    _, key = device
    answer = post(client, f"gro01 ok=1\n{line}", key=key, content_type="text/plain")
    assert answer.status_code == 400, answer.content
    (error,) = answer.json()["errors"]
    assert error["index"] == 1
    assert fragment in error["error"]
    assert pending_batches() == 0


@pytest.mark.django_db
def test_device_rate_limit_is_429_with_retry_after(client, device, settings):
    settings.INGEST_DEVICE_REQUESTS_PER_SECOND = 3
    _, key = device
    statuses = [post(client, _event(), key=key) for _ in range(5)]
    limited = [a for a in statuses if a.status_code == 429]
    assert limited  # within one second, or two if the clock ticked over between requests
    assert limited[0]["Retry-After"] in {"1", "2"}
    assert limited[0].json()["code"] == "device_rate_limited"
    assert pending_batches() == sum(a.status_code == 202 for a in statuses)


@pytest.mark.django_db
def test_account_point_budget_is_shared_by_its_devices(client, owner, device, settings):
    settings.INGEST_ACCOUNT_POINTS_PER_SECOND = 10
    _, key = device
    _, second_key = services.device_add(owner=owner, name="Bench 2")
    for _ in range(3):  # the two requests may straddle a second: try again in the next one
        time.sleep(1 - time.time() % 1)
        first = post(client, [_event()] * 8, key=key)
        second = post(client, [_event()] * 8, key=second_key)
        if second.status_code != 202:
            break
    assert first.status_code == 202
    assert second.status_code == 429
    assert second.json()["code"] == "account_rate_limited"
    assert int(second["Retry-After"]) >= 1


@pytest.mark.django_db
def test_a_refused_request_can_be_retried_as_it_is(client, device, settings):
    """A 429 consumes neither the signature's replay slot nor the point budget."""
    settings.INGEST_DEVICE_POINTS_PER_SECOND = 1
    _, key = device
    body = json.dumps([_event(), _event()]).encode()
    headers = signed_headers(body, key)
    assert post(client, body, key=key, **headers).status_code == 429
    settings.INGEST_DEVICE_POINTS_PER_SECOND = 100
    assert post(client, body, key=key, **headers).status_code == 202


@pytest.mark.django_db
def test_a_batch_read_by_a_flusher_that_died_is_written_by_another(client, owner, device):
    _, key = device
    post(client, _event(7.0), key=key)
    dead = queue.Flusher(consumer="dead")
    assert len(dead._read(None)) == 1  # read, never written or acknowledged: a kill -9
    queue_idle, queue.CLAIM_IDLE_MS = queue.CLAIM_IDLE_MS, 0
    try:
        assert flush() == 1
    finally:
        queue.CLAIM_IDLE_MS = queue_idle
    assert [r["temperature"] for r in rows(owner.pk)] == [7.0]
    assert pending_batches() == 0


@pytest.mark.django_db
def test_a_batch_is_kept_while_influxdb_refuses_it(client, owner, device, settings):
    _, key = device
    post(client, _event(8.0), key=key)
    working = settings.INFLUXDB_URL
    settings.INFLUXDB_URL = "http://127.0.0.1:1"  # nothing listens there
    broken = queue.Flusher(consumer="test")
    with pytest.raises(InfluxUnreachable):
        broken.flush_once()
    broken.close()
    assert pending_batches() == 1
    settings.INFLUXDB_URL = working
    assert flush() == 1
    assert [r["temperature"] for r in rows(owner.pk)] == [8.0]


def posted_bodies(flusher: queue.Flusher, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The bodies of the flusher's /write requests, as they are posted (each still written)."""
    bodies: list[str] = []
    post_for_real = flusher._post

    def counted(database: str, body: str) -> None:
        bodies.append(body)
        post_for_real(database, body)

    monkeypatch.setattr(flusher, "_post", counted)
    return bodies


@pytest.mark.django_db
@pytest.mark.parametrize("writers", [1, 3])
def test_a_round_of_one_account_is_written_in_as_many_requests_as_writers(
    client, owner, device, writers, monkeypatch
):
    _, key = device
    for i in range(10):
        assert post(client, [_event(float(i)), _event(i + 0.5)], key=key).status_code == 202
    flusher = queue.Flusher(consumer="test", writers=writers, split_bytes=1)
    bodies = posted_bodies(flusher, monkeypatch)
    try:
        assert flusher.flush_once() == 10
    finally:
        flusher.close()
    assert len(bodies) == writers
    assert sum(body.count("\n") + 1 for body in bodies) == 10 * 3  # 2 readings + a heartbeat
    assert sorted(r["temperature"] for r in rows(owner.pk)) == [i / 2 for i in range(20)]
    assert pending_batches() == 0


@pytest.mark.django_db
def test_a_small_round_is_one_request_whatever_the_writers(client, owner, device, monkeypatch):
    _, key = device
    for i in range(10):
        assert post(client, _event(float(i)), key=key).status_code == 202
    flusher = queue.Flusher(consumer="test", writers=3)  # ~1 KB: far below SPLIT_BYTES
    bodies = posted_bodies(flusher, monkeypatch)
    try:
        assert flusher.flush_once() == 10
    finally:
        flusher.close()
    assert len(bodies) == 1
    assert sorted(r["temperature"] for r in rows(owner.pk)) == [float(i) for i in range(10)]


@pytest.mark.django_db
def test_concurrent_writes_keep_every_batch_when_one_request_fails(
    client, owner, device, monkeypatch
):
    _, key = device
    for i in range(4):
        assert post(client, _event(float(i)), key=key).status_code == 202
    flusher = queue.Flusher(consumer="test", writers=2, split_bytes=1)
    post_for_real, calls = flusher._post, []

    def second_fails(database: str, body: str) -> None:
        calls.append(body)
        if len(calls) == 2:
            raise InfluxUnreachable("InfluxDB is unreachable (test)")
        post_for_real(database, body)

    monkeypatch.setattr(flusher, "_post", second_fails)
    try:
        with pytest.raises(InfluxUnreachable):
            flusher.flush_once()
    finally:
        flusher.close()
    assert pending_batches() == 4  # nothing acknowledged: every batch is written again
    assert flush() == 4
    assert sorted(r["temperature"] for r in rows(owner.pk)) == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.django_db
def test_device_deleted_is_refused_after_the_cache_period(client, device, settings):
    settings.INGEST_KEY_CACHE_SECONDS = 0
    dev, key = device
    Device.objects.filter(pk=dev.pk).delete()
    assert post(client, _event(), key=key).status_code == 401


@pytest.mark.django_db
def test_canonical_line_protocol_reports_the_devices_status_too(client, owner, device):
    dev, key = device
    now_ms = NOW_MS()
    body = (
        f"gro01,bench=b1 temperature=20.5,battery=64,rssi=-80 {now_ms - 1000}\n"
        f"gro01,bench=b1,firmware=3.1.0 temperature=20.7 {now_ms}"
    )
    answer = post(client, body, key=key, content_type="text/plain", path="/ingest?precision=ms")
    assert answer.status_code == 202
    flush()
    dev.refresh_from_db()
    assert (dev.battery, dev.rssi, dev.firmware) == (64, -80, "3.1.0")
    found = sorted(rows(owner.pk), key=lambda r: r["time"])
    assert [(r["bench"], r["temperature"], r["firmware"]) for r in found] == [
        ("b1", 20.5, None),
        ("b1", 20.7, "3.1.0"),
    ]


@pytest.mark.django_db
def test_the_ingest_script_is_loaded_again_after_redis_forgets_it(client, device):
    import redis
    from django.conf import settings

    _, key = device
    redis.Redis.from_url(settings.REDIS_URL).script_flush()
    assert post(client, _event(), key=key).status_code == 202
    assert pending_batches() == 1


@pytest.mark.django_db
def test_a_connection_redis_closed_while_idle_is_opened_again_not_a_503(client, device):
    import redis
    from django.conf import settings

    _, key = device
    assert post(client, _event(1.0), key=key).status_code == 202
    admin = redis.Redis.from_url(settings.REDIS_URL)
    killed = admin.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1  # the ingest thread's own connection among them
    assert post(client, _event(2.0), key=key).status_code == 202
    assert pending_batches() == 2
