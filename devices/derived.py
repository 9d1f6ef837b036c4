"""Values growalert computes from a reading: vapour-pressure deficit and dew point.

Both use one formula for the saturation vapour pressure, the Tetens equation in the form of
FAO-56 (Allen et al., 1998, eq. 11), over water:

    SVP(T) = 0.6108 · exp(17.27 · T / (T + 237.3))      kPa, T in °C

    VPD = SVP(T) · (1 - RH / 100)                        kPa
    dew point Td solves SVP(Td) = SVP(T) · RH / 100, i.e. (Magnus form, same constants):
        g = ln(RH / 100) + 17.27 · T / (T + 237.3)
        Td = 237.3 · g / (17.27 - g)                     °C

Using the same constants for both keeps them consistent: VPD = SVP(T) - SVP(Td) exactly.
The formula is good to about 0.1 % between 0 and 50 °C, the range of a greenhouse; readings
outside ``TEMPERATURE_RANGE`` or with no humidity get neither value. A relative humidity a
little above 100 % (a cheap sensor in condensing air) is read as 100 %.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

A, B, SVP0 = 17.27, 237.3, 0.6108  # Tetens (FAO-56): SVP0 in kPa, B in °C
TEMPERATURE_RANGE = (-40.0, 70.0)  # °C (also written out in derived_line)
MAX_HUMIDITY = 105.0  # %RH read as 100 %; above it the sensor is broken


def saturation_vapour_pressure(temperature: float) -> float:
    """kPa over water at ``temperature`` °C."""
    return SVP0 * math.exp(A * temperature / (temperature + B))


def usable(temperature: float, humidity: float) -> bool:
    """Whether VPD and dew point mean something for this reading."""
    low, high = TEMPERATURE_RANGE
    return low <= temperature <= high and 0 < humidity <= MAX_HUMIDITY


def vpd(temperature: float, humidity: float) -> float:
    """Vapour-pressure deficit in kPa from °C and %RH (see ``usable``)."""
    return saturation_vapour_pressure(temperature) * (1 - min(humidity, 100.0) / 100)


def dew_point(temperature: float, humidity: float) -> float:
    """Dew point in °C from °C and %RH (see ``usable``; humidity must be above 0)."""
    gamma = math.log(min(humidity, 100.0) / 100) + A * temperature / (temperature + B)
    return B * gamma / (A - gamma)


# ---------------------------------------------------------------- on a reading's fields

TEMPERATURE, HUMIDITY = "temperature", "humidity"  # °C, %RH: what a GRO-01 sends
VPD, DEW_POINT = "vpd", "dew_point"  # kPa, °C: what growalert adds
DERIVED_FIELDS = (VPD, DEW_POINT)


def derived_fields(fields: Mapping[str, object]) -> dict[str, float]:
    """The fields to add to a reading: VPD and dew point when it has a usable temperature and
    humidity (numbers), except those the device sent itself (kept as sent).

    The same arithmetic as ``vpd`` and ``dew_point`` (identical results), with the exponent
    term computed once: this runs for every reading on the ingest path."""
    temperature, humidity = fields.get(TEMPERATURE), fields.get(HUMIDITY)
    if type(temperature) is not float or type(humidity) is not float:
        return {}
    if not usable(temperature, humidity):
        return {}
    fraction = min(humidity, 100.0) / 100
    exponent = A * temperature / (temperature + B)
    added = {}
    if VPD not in fields:
        added[VPD] = round(SVP0 * math.exp(exponent) * (1 - fraction), 4)
    if DEW_POINT not in fields:
        gamma = math.log(fraction) + exponent
        added[DEW_POINT] = round(B * gamma / (A - gamma), 3)
    return added


def derived_line(temperature: float, humidity: float) -> str:
    """``,vpd=<kPa>,dew_point=<°C>`` to append to a reading's line protocol fields, or '' when
    they mean nothing for it: the values of ``derived_fields``, written with as many decimals
    as it rounds to (so the stored floats are the same), without building a dict of fields."""
    if not (-40.0 <= temperature <= 70.0 and 0 < humidity <= MAX_HUMIDITY):  # usable()
        return ""
    # min() and math.log/exp looked up per call were a sixth of this function's time
    fraction = (humidity if humidity < 100.0 else 100.0) / 100
    exponent = A * temperature / (temperature + B)
    gamma = _log(fraction) + exponent
    vapour_deficit = SVP0 * _exp(exponent) * (1 - fraction)
    # %-formatting: the same text as f"{x:.4f}", at half the cost (this runs per reading)
    return _DERIVED_TEXT % (vapour_deficit, B * gamma / (A - gamma))


_exp, _log = math.exp, math.log


_DERIVED_TEXT = f",{VPD}=%.4f,{DEW_POINT}=%.3f"
