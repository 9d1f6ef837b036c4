"""One type per field, so InfluxDB never drops a point after the device was told 202: every
field is a float except the text fields (firmware, message); a string for a number or a number
for a text field is refused up front, naming the point and the field. Should InfluxDB still
refuse points (a type stored before these rules), the flusher logs it at ERROR, counts it at
/metrics, and writes everything else: the rest of the batch and every other account."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest

from devices import hosted, services
from devices.ingest import queue
from tests.devices.ingest_helpers import flush, pending_batches, post, rows


def refused_points(client, reason: str) -> float:
    """growalert_ingest_points_refused_total{reason=...} as /metrics shows it (0 if absent)."""
    scrape = client.get("/metrics").content.decode()
    found = re.search(
        rf'^growalert_ingest_points_refused_total\{{reason="{reason}"\}} (\S+)$', scrape, re.M
    )
    return float(found.group(1)) if found else 0.0


def lines(client, key: str, body: str, precision: str = "ns"):
    return post(
        client, body, key=key, content_type="text/plain", path=f"/ingest?precision={precision}"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"temperature": "NaN"}, "'temperature': 'NaN' is text, 'temperature' holds numbers"),
        ({"temperature": "22.5"}, "'temperature': '22.5' is text"),
        ({"firmware": 1.4}, "field 'firmware' holds text"),
        ({"message": True}, "field 'message' holds text"),
        ({"temperature": None}, "values are numbers or booleans"),
        ({"message": "two\nlines"}, "control characters"),
    ],
)
def test_a_json_value_of_the_wrong_type_is_refused_naming_point_and_field(
    client, owner, device, data, fragment
):
    _, key = device
    events = [
        {"event_type": "gro01", "data": {"temperature": 21.0}},
        {"event_type": "gro01", "data": data},
    ]
    answer = post(client, {"events": events}, key=key)
    assert answer.status_code == 400, answer.content
    payload = answer.json()
    assert (payload["code"], payload["accepted"], payload["rejected"]) == ("invalid_points", 0, 1)
    [error] = payload["errors"]
    assert error["index"] == 1
    assert fragment in error["error"]
    assert pending_batches() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('gro01 temperature="x"', "'temperature': 'x' is text"),
        ('gro01 temperature="22"', "'temperature': '22' is text"),
        ("gro01 firmware=1.4", "field 'firmware' holds text"),  # canonical: the fast path
        ("gro01 firmware=2i", "field 'firmware' holds text"),
        ("gro01 message=t", "field 'message' holds text"),
    ],
)
def test_a_line_protocol_value_of_the_wrong_type_is_refused(client, device, line, fragment):
    _, key = device
    answer = lines(client, key, f"gro01 temperature=21\n{line}")
    assert answer.status_code == 400, answer.content
    [error] = answer.json()["errors"]
    assert error["index"] == 1
    assert fragment in error["error"]
    assert pending_batches() == 0


@pytest.mark.django_db
def test_integers_unsigned_and_booleans_are_stored_as_floats_whatever_the_form(
    client, owner, device
):
    """The same field sent as a float, an integer (JSON, ``i``, ``u``) and a boolean, in any
    order across batches: every point is stored, as a float, and InfluxDB refuses nothing."""
    _, key = device
    before = refused_points(client, "field_type_conflict")
    now_s = int(time.time())
    sent: list[tuple[str, Any]] = [
        ("json", {"event_type": "gro01", "data": {"t": 22}, "timestamp": (now_s - 9) * 1000}),
        ("lp", f"gro01 t=23i {now_s - 8}"),
        ("lp", f"gro01 t=24u {now_s - 7}"),
        ("json", {"event_type": "gro01", "data": {"t": True}, "timestamp": (now_s - 6) * 1000}),
        ("lp", f"gro01 t=F {now_s - 5}"),
        ("lp", f"gro01 t=25.5 {now_s - 4}"),
        ("json", {"event_type": "gro01", "data": {"t": 26.5}, "timestamp": (now_s - 3) * 1000}),
        ("lp", f"gro01 t=true {now_s - 2}"),
    ]
    for form, body in sent:
        answer = post(client, body, key=key) if form == "json" else lines(client, key, body, "s")
        assert answer.status_code == 202, answer.content
        flush()  # one write per batch: InfluxDB checks each against the type already stored

    stored = [r["t"] for r in sorted(rows(owner.pk), key=lambda r: r["time"])]
    assert stored == [22.0, 23.0, 24.0, 1.0, 0.0, 25.5, 26.5, 1.0]
    with hosted.client() as conn:
        (keys,) = conn.query(
            'SHOW FIELD KEYS FROM "gro01"', database=hosted.database_name(owner.pk)
        )
    assert keys.series[0].values == [["t", "float"]]
    assert refused_points(client, "field_type_conflict") == before


@pytest.mark.django_db
def test_text_fields_take_strings_in_both_forms(client, owner, device):
    dev, key = device
    now_s = int(time.time())
    assert (
        post(
            client,
            {"event_type": "gro01", "data": {"temperature": 20, "message": "E3: probe"}},
            key=key,
        ).status_code
        == 202
    )
    assert (
        lines(client, key, f'gro01 temperature=21,firmware="1.4.2" {now_s}', "s").status_code == 202
    )
    flush()
    found = {(r["temperature"], r["message"], r["firmware"]) for r in rows(owner.pk)}
    assert found == {(20.0, "E3: probe", None), (21.0, None, "1.4.2")}
    dev.refresh_from_db()
    assert dev.firmware == "1.4.2"


@pytest.mark.django_db
def test_a_point_older_than_the_retention_is_refused_not_dropped_by_influxdb(
    client, device, settings
):
    settings.HOSTED_RETENTION = "2d"
    _, key = device
    three_days_ago = int(time.time()) - 3 * 86400
    answer = lines(client, key, f"gro01 t=1 {three_days_ago}", "s")
    assert answer.status_code == 400
    assert "in the past" in answer.json()["errors"][0]["error"]
    one_day_ago = int(time.time()) - 86400
    assert lines(client, key, f"gro01 t=1 {one_day_ago}", "s").status_code == 202


@pytest.mark.django_db
def test_a_type_already_stored_is_logged_counted_and_the_rest_is_written(
    client, owner, other, device, caplog
):
    """A string stored in the account's database before these rules: InfluxDB refuses the new
    float for that field; the flusher says so at ERROR, counts it, and the other points of the
    batch, the heartbeat and the other account's batch are all written."""
    dev, key = device
    _, other_key = services.device_add(owner=other, name="Theirs")
    database = hosted.database_name(owner.pk)
    hosted.ensure_database(database)
    with hosted.client() as conn:
        conn.write(['gro01 temperature="broken"'], database=database, precision="ns")
    before = refused_points(client, "field_type_conflict")

    mine = "gro01,zone=a temperature=21.5\nclimate,zone=a soil_moisture=31"
    assert lines(client, key, mine).status_code == 202
    _, second_key = services.device_add(owner=owner, name="Bench 2")
    assert lines(client, second_key, "climate,zone=b soil_moisture=40").status_code == 202
    assert lines(client, other_key, "gro01 temperature=19").status_code == 202
    with caplog.at_level(logging.ERROR, logger="devices.ingest.queue"):
        assert flush() == 3

    assert pending_batches() == 0
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert '"temperature"' in record.getMessage()
    assert f"device(s) {dev.pk}:" in record.getMessage()  # not the device without the field
    assert refused_points(client, "field_type_conflict") == before + 1
    assert sorted(r["soil_moisture"] for r in rows(owner.pk, "climate")) == [31.0, 40.0]
    assert [r["seen"] for r in rows(owner.pk, "_device")] == [1.0, 1.0]
    assert [r["temperature"] for r in rows(owner.pk)] == ["broken"]
    assert [r["temperature"] for r in rows(other.pk)] == [19.0]


@pytest.mark.django_db
def test_an_entry_influxdb_cannot_read_at_all_loses_only_itself(client, owner, device, caplog):
    """Whole-request refusals (nothing written) are narrowed down to the entry at fault."""
    dev, key = device
    assert lines(client, key, "gro01 temperature=20").status_code == 202
    queue.enqueue(
        device_id=dev.pk,
        owner_id=owner.pk,
        lines="not line protocol at all",
        points=1,
        status={},
        replay_key=None,
    )  # what no validated batch can look like: planted straight into the stream
    assert lines(client, key, "gro01 temperature=22").status_code == 202
    before = refused_points(client, "unreadable")
    with caplog.at_level(logging.ERROR, logger="devices.ingest.queue"):
        assert flush() == 3

    assert sorted(r["temperature"] for r in rows(owner.pk)) == [20.0, 22.0]
    assert refused_points(client, "unreadable") == before + 1
    assert any("unable to parse" in r.getMessage() for r in caplog.records)
    assert pending_batches() == 0
