"""Line protocol read whole (devices/ingest/canonical.py) against the per-point parser.

The whole-body reader must write exactly what the per-point path writes for every body it takes,
and leave every other body to that path (it never refuses anything itself). Through /ingest:
the edge cases of line protocol reach InfluxDB as the documented values.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import derived
from devices.ingest import canonical, parse
from devices.ingest.points import derive, to_line
from devices.ingest.service import device_status, status_of
from tests.devices.ingest_helpers import flush, pending_batches, post, rows

DEVICE = 7
NOW_NS = time.time_ns()
MS = 1_000_000


def _per_point(body: bytes, scale: int = 1) -> tuple[list[str], dict[str, object]]:
    precision = {v: k for k, v in parse.PRECISIONS.items()}[scale]
    parsed = parse.parse_lines(body, now_ns=NOW_NS, precision=precision)
    assert not parsed.errors, parsed.errors
    derive(parsed.points)
    status = device_status(parsed.points, now_ns=NOW_NS)
    return [to_line(p, DEVICE) for p in parsed.points], status


def _whole(body: bytes, scale: int = 1) -> tuple[list[str], dict[str, object]] | None:
    batch = canonical.read(body, device_id=DEVICE, now_ns=NOW_NS, scale=scale)
    if batch is None:
        return None
    return batch.lines, status_of(batch.reporting, newest_ns=batch.newest_ns, now_ns=NOW_NS)


@pytest.mark.parametrize(
    "body",
    [
        "gro01 temperature=21.5",
        "gro01,sensor=s001 temperature=20.1,humidity=50.14\n",
        "gro01,sensor=s001 temperature=20.1,humidity=50.14\ngro01,sensor=s002 humidity=.5",
        "gro01,a=1,b=2,c=x-y.z temperature=-3.,humidity=100,co2=415 " + str(NOW_NS - 10**9),
        "gro01 temperature=25,humidity=60\ngro01 temperature=25,humidity=60 " + str(NOW_NS),
        "gro01,bench=b1 temperature=20.5,battery=64,rssi=-80\ngro01,firmware=3.1.0 rssi=-70",
        "soil.probe-2,zone=A/3#x moisture=0.000000000000001,air_temperature=12",
        "gro01 temperature=95,humidity=50",  # outside the formula's range: no derived fields
        "gro01 temperature=20,humidity=0",
        # fields in any order; a tag named like a field is not the field
        "gro01,zone=a co2=415,humidity=61.5,light=3000,temperature=19.9 " + str(NOW_NS - 10**9),
        "gro01,temperature=5 humidity=50\ngro01,temperature=5 humidity=50,temperature=20",
        "gro01,a=1,ab=2,b=a temperature=1",  # tag keys that only share a prefix
        "gro01 temperature=1\ngro01,a=1,b=2,c=3 humidity=2 " + str(NOW_NS),
        # no temperature and humidity in the body (read without their lookaheads)
        "sensor_value,device=d1 value=20.0 " + str(NOW_NS) + "\nsensor_value,device=d2 value=35",
        "gro01,humidity=5 temperature=20,co2=415",
    ],
)
def test_canonical_bodies_are_written_exactly_as_the_per_point_path_writes_them(body):
    whole = _whole(body.encode())
    assert whole is not None, "the whole-body reader should take this body"
    assert whole == _per_point(body.encode())


def test_timestamps_in_each_precision_are_scaled_alike():
    for precision, scale in parse.PRECISIONS.items():
        stamp = (NOW_NS - 5 * 10**9) // scale
        body = f"gro01 temperature=20.5 {stamp}".encode()
        whole = _whole(body, scale)
        assert whole is not None, precision
        assert whole == _per_point(body, scale)
        assert whole[0][0].endswith(f" {stamp * scale}")


@pytest.mark.parametrize(
    "body",
    [
        "gro01,room=north\\ bay temperature=21.5",  # escape in a tag value
        'gro01 message="say \\"hi\\", ok then"',  # quoted string with spaces and commas
        "gro01 count=12i",
        "gro01 count=12u",
        "gro01 ok=true",
        "gro01 ok=F",
        "gro01 t=1e3",
        "gro01 t=+1",  # InfluxDB refuses '+1': the parser writes it as 1.0
        "gro01 t=1234567890123456",  # beyond 1e15
        "gro01 firmware=1",  # a number for a text field
        "gro01 message=2",
        "gro01,device_id=3 t=1",  # growalert's own tag
        "gro01,time=3 t=1",
        "gro01 time=1",
        "time t=1",
        "gro01,a=1,a=2 t=1",  # InfluxDB refuses duplicate tags
        "gro01,a=1,b=2,a=3 t=1",
        "gro01,b=1 t=1\ngro01,a=1,b=2,c=3,b=4 t=1 " + str(NOW_NS),
        "gro01 temperature=20,humidity=50,vpd=1.2",  # the device's own derived field
        "gro01 t=1\n\ngro01 t=2",  # a blank line
        "# comment\ngro01 t=1",
        "gro01 t=1\r\ngro01 t=2",
        " gro01 t=1",
        "gro01,room=süd t=1",  # not ASCII
        "gro01,tag=" + "x" * 201 + " t=1",
        "g" * 65 + " t=1",
        "gro01," + ",".join(f"t{i}=x" for i in range(21)) + " v=1",
        "gro01 " + ",".join(f"f{i}=1" for i in range(51)),
        "gro01 t=1 " + str(NOW_NS + 2 * 3600 * 10**9),  # in the future
        "gro01 t=1 12",  # long in the past
        "gro01 t=1 1.5",
        "gro01 t=1 -5",
        "gro01 t=1 5 6",
        "gro01 t=",
        "gro01",
        "",
        "\n",
    ],
)
def test_anything_else_is_left_to_the_per_point_parser(body):
    assert _whole(body.encode()) is None


def test_more_lines_than_allowed_are_left_to_the_parser(settings):
    settings.INGEST_MAX_POINTS = 3
    assert _whole(b"g t=1\ng t=2\ng t=3") is not None
    assert _whole(b"g t=1\ng t=2\ng t=3\ng t=4") is None


_names = st.from_regex(r"[a-z][a-z0-9_.\-]{0,8}", fullmatch=True).filter(
    lambda n: n not in {"time", "device_id", "firmware", "message", "vpd", "dew_point"}
)
_numbers = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.decimals(-1000, 1000, places=3, allow_nan=False).map(str),
    st.sampled_from([".5", "-.25", "3.", "0", "-0", "100.0", "105", "70", "-40"]),
)
_field_names = st.one_of(
    st.sampled_from(["temperature", "humidity", "battery", "rssi", "co2"]), _names
)


@st.composite
def _lines(draw: st.DrawFn) -> str:
    measurement = draw(_names)
    tag_keys = draw(st.lists(_names, max_size=3, unique=True))
    tags = "".join(
        f",{k}={draw(st.from_regex(r'[A-Za-z0-9_./#:-]{1,6}', fullmatch=True))}" for k in tag_keys
    )
    names = draw(st.lists(_field_names, min_size=1, max_size=4, unique=True))
    fields = ",".join(f"{n}={draw(_numbers)}" for n in names)
    stamp = draw(st.one_of(st.none(), st.integers(0, 3600 * 1000)))
    tail = "" if stamp is None else f" {NOW_NS // MS - stamp}"
    return f"{measurement}{tags} {fields}{tail}"


@settings(max_examples=300, deadline=None)
@given(st.lists(_lines(), min_size=1, max_size=20))
def test_generated_canonical_bodies_match_the_per_point_path(lines):
    body = "\n".join(lines).encode()
    whole = _whole(body, MS)
    assert whole is not None, "every generated body is canonical"
    assert whole == _per_point(body, MS)


# ---------------------------------------------------------------- through /ingest


@pytest.mark.django_db
def test_a_batch_of_100_canonical_readings_reaches_influxdb_with_derived_fields(
    client, owner, device
):
    dev, key = device
    body = "\n".join(
        f"gro01,sensor=s{i:03d} temperature={20 + i / 10:.1f},humidity={50 + i / 7:.2f}"
        for i in range(100)
    )
    answer = post(client, body, key=key, content_type="text/plain")
    assert answer.status_code == 202, answer.content
    assert answer.json() == {"accepted": 100, "rejected": 0}
    flush()
    found = {r["sensor"]: r for r in rows(owner.pk)}
    assert len(found) == 100
    reading = found["s010"]
    assert (reading["temperature"], reading["humidity"]) == (21.0, 51.43)
    expected = derived.derived_fields({"temperature": 21.0, "humidity": 51.43})
    assert {name: reading[name] for name in expected} == expected
    assert {r["device_id"] for r in found.values()} == {str(dev.pk)}
    (heartbeat,) = rows(owner.pk, measurement="_device")
    assert heartbeat["seen"] == 1.0


@pytest.mark.django_db
def test_line_protocol_edge_cases_are_stored_as_documented(client, owner, device):
    _, key = device
    now_ms = int(time.time() * 1000)
    body = "\n".join(
        [
            f"gro01,room=a\\,b\\ c temperature=+1,count=12i,big=7u,ok=t,off=FALSE {now_ms - 4}",
            f'gro01,room=plain message="spaces, commas and \\"quotes\\"" {now_ms - 3}',
            f"gro01,room=dup,room=last temperature=-.5 {now_ms - 2}",
            f"gro01,room=exp temperature=2.5e1 {now_ms - 1}",
        ]
    )
    answer = post(client, body, key=key, content_type="text/plain", path="/ingest?precision=ms")
    assert answer.status_code == 202, answer.content
    assert answer.json()["accepted"] == 4
    flush()
    found = sorted(rows(owner.pk), key=lambda r: r["time"])
    assert [r["room"] for r in found] == ["a,b c", "plain", "last", "exp"]
    first = found[0]
    assert (first["temperature"], first["count"], first["big"]) == (1.0, 12.0, 7.0)
    assert (first["ok"], first["off"]) == (1.0, 0.0)
    assert first["time"] == now_ms - 4
    assert found[1]["message"] == 'spaces, commas and "quotes"'
    assert found[2]["temperature"] == -0.5
    assert found[3]["temperature"] == 25.0


@pytest.mark.django_db
def test_one_bad_line_in_a_canonical_batch_refuses_the_batch_naming_it(client, owner, device):
    _, key = device
    lines = [f"gro01,sensor=s{i} temperature=20.{i}" for i in range(10)]
    lines[6] = "gro01,sensor=s6 temperature=20.6 12"  # 12 ns after the epoch
    answer = post(client, "\n".join(lines), key=key, content_type="text/plain")
    assert answer.status_code == 400
    payload = answer.json()
    assert payload["code"] == "invalid_points"
    assert [e["index"] for e in payload["errors"]] == [6]
    assert "past" in payload["errors"][0]["error"]
    assert pending_batches() == 0
    flush()
    assert rows(owner.pk) == []
