"""VPD and dew point (devices/derived.py) against values worked out by hand, and ``derive``
adding them to readings.

Hand computation, Tetens/FAO-56 constants a = 17.27, b = 237.3 °C, SVP0 = 0.6108 kPa:

25 °C, 60 %RH
    a·T/(T+b) = 431.75 / 262.3            = 1.646016
    SVP       = 0.6108 · e^1.646016       = 0.6108 · 5.18628 = 3.16778 kPa
    VPD       = 3.16778 · (1 - 0.60)      = 1.26711 kPa
    g         = ln 0.60 + 1.646016        = -0.510826 + 1.646016 = 1.135190
    Td        = 237.3 · 1.135190 / (17.27 - 1.135190) = 269.3806 / 16.134810 = 16.696 °C

20 °C, 50 %RH
    a·T/(T+b) = 345.4 / 257.3             = 1.342402
    SVP       = 0.6108 · e^1.342402       = 0.6108 · 3.82823 = 2.33828 kPa
    VPD       = 2.33828 · 0.50            = 1.16914 kPa
    g         = ln 0.50 + 1.342402        = -0.693147 + 1.342402 = 0.649255
    Td        = 237.3 · 0.649255 / 16.620745 = 154.0682 / 16.620745 = 9.270 °C

30 °C, 80 %RH
    a·T/(T+b) = 518.1 / 267.3             = 1.938272
    SVP       = 0.6108 · e^1.938272       = 0.6108 · 6.94673 = 4.24306 kPa
    VPD       = 4.24306 · 0.20            = 0.84861 kPa
    g         = ln 0.80 + 1.938272        = -0.223144 + 1.938272 = 1.715128
    Td        = 237.3 · 1.715128 / 15.554872 = 406.9999 / 15.554872 = 26.165 °C

0 °C, 50 %RH
    a·T/(T+b) = 0: SVP = 0.6108 kPa, VPD = 0.3054 kPa
    g = ln 0.5 = -0.693147;  Td = 237.3 · -0.693147 / 17.963147 = -164.4838 / 17.963147 = -9.157 °C

Saturated air (100 %RH) has no deficit and its dew point is its temperature.
"""

from __future__ import annotations

import math

import pytest

from devices import derived
from devices.ingest.parse import parse_lines
from devices.ingest.points import Point, derive


@pytest.mark.parametrize(
    ("temperature", "humidity", "vpd", "dew_point"),
    [
        (25.0, 60.0, 1.26711, 16.696),
        (20.0, 50.0, 1.16914, 9.270),
        (30.0, 80.0, 0.84861, 26.165),
        (0.0, 50.0, 0.3054, -9.157),
        (10.0, 100.0, 0.0, 10.0),
    ],
)
def test_vpd_and_dew_point_match_the_hand_computed_values(temperature, humidity, vpd, dew_point):
    assert derived.vpd(temperature, humidity) == pytest.approx(vpd, abs=5e-5)
    assert derived.dew_point(temperature, humidity) == pytest.approx(dew_point, abs=5e-3)


def test_vpd_is_the_gap_between_the_two_saturation_pressures():
    # one set of constants for both: VPD = SVP(T) - SVP(Td) exactly
    for t, rh in ((25.0, 60.0), (5.0, 90.0), (35.0, 20.0)):
        gap = derived.saturation_vapour_pressure(t) - derived.saturation_vapour_pressure(
            derived.dew_point(t, rh)
        )
        assert derived.vpd(t, rh) == pytest.approx(gap, rel=1e-9)


def _point(**fields):
    return Point("gro01", {"device": "bench-1"}, dict(fields), 1)


def test_derive_adds_both_fields_to_readings_with_temperature_and_humidity():
    reading, soil_only = _point(temperature=25.0, humidity=60.0), _point(soil_moisture=31.0)
    derive([reading, soil_only])
    assert reading.fields["vpd"] == pytest.approx(1.2671, abs=1e-4)
    assert reading.fields["dew_point"] == pytest.approx(16.696, abs=1e-3)
    assert soil_only.fields == {"soil_moisture": 31.0}


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 25.0},  # no humidity
        {"temperature": 25.0, "humidity": 0.0},  # dew point of bone-dry air is -infinity
        {"temperature": 25.0, "humidity": 140.0},  # a broken sensor
        {"temperature": 95.0, "humidity": 50.0},  # beyond the formula's range
        {"temperature": 25.0, "humidity": True},  # not a number
        {"temperature": "warm", "humidity": 50.0},
    ],
)
def test_derive_leaves_readings_it_cannot_compute_from_as_they_are(fields):
    point = _point(**fields)
    derive([point])
    assert point.fields == fields


def test_a_reading_just_above_100_percent_is_read_as_saturated():
    point = _point(temperature=18.0, humidity=101.5)
    derive([point])
    assert point.fields["vpd"] == 0.0
    assert point.fields["dew_point"] == pytest.approx(18.0, abs=1e-3)
    assert all(math.isfinite(v) for v in point.fields.values())


def test_a_device_that_sends_its_own_vpd_keeps_it():
    point = _point(temperature=25.0, humidity=60.0, vpd=1.3)
    derive([point])
    assert point.fields["vpd"] == 1.3
    assert "dew_point" in point.fields


def _fast_point(field_text: str) -> Point:
    """A reading as the line protocol parser's fast path makes it (fields kept as text)."""
    [point] = parse_lines(f"gro01,device=bench-1 {field_text}".encode(), now_ns=10**18).points
    assert point.body == field_text  # the fast path took it
    return point


def test_readings_in_canonical_line_protocol_get_the_same_values_written_as_text():
    """The fast path appends the fields as text; stored, they are the floats derived_fields
    gives, over the whole usable range and its edges."""
    temperatures = [-40.0, -12.3, 0.0, 0.1, 18.0, 25.0, 31.7, 69.9, 70.0]
    humidities = [0.1, 1.0, 37.5, 60.0, 99.9, 100.0, 101.5, 105.0]
    for t in temperatures:
        for rh in humidities:
            point = _fast_point(f"temperature={t},humidity={rh}")
            derive([point])
            stored = dict(pair.split("=") for pair in point.body.split(","))
            expected = derived.derived_fields({"temperature": t, "humidity": rh})
            assert {k: float(stored[k]) for k in expected} == expected, (t, rh)


@pytest.mark.parametrize(
    "field_text",
    [
        "temperature=25,humidity=0",
        "temperature=25,humidity=140",
        "temperature=95,humidity=50",
        "temperature=25",
        "xtemperature=25,humidity=50",
    ],
)
def test_canonical_readings_it_cannot_compute_from_are_left_as_they_are(field_text):
    point = _fast_point(field_text)
    derive([point])
    assert point.body == field_text


def test_a_canonical_reading_with_its_own_dew_point_keeps_it_and_gets_vpd():
    point = _fast_point("temperature=25,humidity=60,dew_point=3.5")
    derive([point])
    assert point.fields["dew_point"] == 3.5
    assert point.fields["vpd"] == pytest.approx(1.2671, abs=1e-4)
