"""A small PNG chart of a notification's recent points and its threshold, for alert emails and
Slack (through a signed link, monitors/notify/chart_links.py).

Pure Python and zlib (no imaging library): a white canvas, the series in blue (a gap in the
data — points further apart than 3x their median spacing — is left open), the threshold as a
dashed red line across, and labelled axes drawn with a 5x7 pixel font (pixel_font.py): the
value of each grid line with the monitor's unit and precision on the left, the times along the
bottom in the owner's time zone (the payload's ``time_zone``; UTC without one), the last one
naming it. 480x160 pixels and a few kilobytes; the email's text carries the numbers,
the picture carries the shape.
"""

from __future__ import annotations

import itertools
import statistics
import struct
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

from monitors import display
from monitors.notify import local_time, pixel_font

WIDTH, HEIGHT = 480, 160
# the plot's box: room on the left for the value labels, below for the times
LEFT, RIGHT, TOP, BOTTOM = 64, WIDTH - 12, 8, HEIGHT - 20
GRID_LINES = 4  # value labels at the plot's bottom, top and the lines between
TIME_LABELS = 4
Colour = tuple[int, int, int]
WHITE: Colour = (255, 255, 255)
GRID: Colour = (226, 231, 236)
AXIS: Colour = (87, 96, 106)
TEXT: Colour = (36, 41, 47)
BLUE: Colour = (5, 80, 174)
RED: Colour = (180, 35, 24)
GAP_FACTOR = 3


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rows = [bytearray(WHITE * width) for _ in range(height)]

    def dot(self, x: int, y: int, colour: Colour, size: int = 1) -> None:
        for dy in range(size):
            for dx in range(size):
                px, py = x + dx, y + dy
                if 0 <= px < self.width and 0 <= py < self.height:
                    self.rows[py][3 * px : 3 * px + 3] = bytes(colour)

    def line(self, a: tuple[int, int], b: tuple[int, int], colour: Colour, size: int = 2) -> None:
        """Bresenham's line from ``a`` to ``b``."""
        (x0, y0), (x1, y1) = a, b
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        error = dx + dy
        while True:
            self.dot(x0, y0, colour, size)
            if (x0, y0) == (x1, y1):
                return
            doubled = 2 * error
            if doubled >= dy:
                error, x0 = error + dy, x0 + sx
            if doubled <= dx:
                error, y0 = error + dx, y0 + sy

    def dashed(self, y: int, colour: Colour, dash: int = 6) -> None:
        for x in range(LEFT, RIGHT + 1):
            if (x // dash) % 2 == 0:
                self.dot(x, y, colour, 2)

    def text(self, x: int, y: int, words: str, colour: Colour, align: str = "left") -> None:
        """``words`` in the pixel font, its top at ``y``; ``x`` is its left edge, its right
        edge (align="right") or its middle (align="center")."""
        shift = {
            "left": 0,
            "right": pixel_font.width(words),
            "center": pixel_font.width(words) // 2,
        }
        left = x - shift[align]
        for dx, dy in pixel_font.pixels(words):
            self.dot(left + dx, y + dy, colour)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def _runs(points: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    if len(points) < 3:
        return [points]
    spacing = statistics.median(b[0] - a[0] for a, b in itertools.pairwise(points))
    runs: list[list[tuple[float, float]]] = [[points[0]]]
    for previous, point in itertools.pairwise(points):
        if point[0] - previous[0] > spacing * GAP_FACTOR:
            runs.append([])
        runs[-1].append(point)
    return runs


def render(
    points: Sequence[tuple[float, float]],
    thresholds: Sequence[float],
    *,
    unit: str = "",
    precision: int | None = None,
    zone: tzinfo = UTC,
) -> bytes | None:
    """The chart as PNG bytes, or None with fewer than two points to draw. ``points`` are
    (unix seconds, value); the value labels carry ``unit`` with ``precision`` decimals, the
    time labels are in ``zone``."""
    ordered = sorted(points)
    if len(ordered) < 2:
        return None
    canvas = Canvas(WIDTH, HEIGHT)
    t0, t1 = ordered[0][0], ordered[-1][0]
    values = [v for _, v in ordered] + list(thresholds)
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad

    def x(t: float) -> int:
        return round(LEFT + (t - t0) / ((t1 - t0) or 1) * (RIGHT - LEFT))

    def y(v: float) -> int:
        return round(BOTTOM - (v - low) / (high - low) * (BOTTOM - TOP))

    _value_axis(canvas, low, high, unit, precision)
    _time_axis(canvas, t0, t1, zone)
    for run in _runs(ordered):
        for a, b in itertools.pairwise(run):
            canvas.line((x(a[0]), y(a[1])), (x(b[0]), y(b[1])), BLUE)
        if len(run) == 1:
            canvas.dot(x(run[0][0]) - 1, y(run[0][1]) - 1, BLUE, 3)
    for value in thresholds:
        canvas.dashed(y(value), RED)
    return canvas.png()


def _value_axis(canvas: Canvas, low: float, high: float, unit: str, precision: int | None) -> None:
    """Grid lines across the plot, each labelled with its value and the unit."""
    span = high - low
    decimals = precision if precision is not None else (0 if span >= 20 else 1 if span >= 2 else 2)
    for k in range(GRID_LINES + 1):
        row = round(BOTTOM - k * (BOTTOM - TOP) / GRID_LINES)
        canvas.line((LEFT, row), (RIGHT, row), GRID if k > 0 else AXIS, 1)
        label = display.quantity(low + k * span / GRID_LINES, unit[:8], decimals)
        canvas.text(LEFT - 4, max(row - 3, 0), label, TEXT, align="right")
    canvas.line((LEFT, TOP), (LEFT, BOTTOM), AXIS, 1)


def _time_axis(canvas: Canvas, t0: float, t1: float, zone: tzinfo) -> None:
    """Times in ``zone`` under the plot, with the date when the chart spans more than a day;
    the last names the zone ("CET")."""
    long = t1 - t0 > 86400
    for k in range(TIME_LABELS):
        t = t0 + k * (t1 - t0) / (TIME_LABELS - 1)
        column = round(LEFT + k * (RIGHT - LEFT) / (TIME_LABELS - 1))
        canvas.line((column, BOTTOM), (column, BOTTOM + 3), AXIS, 1)
        moment = datetime.fromtimestamp(t, zone)
        label = moment.strftime("%d.%m %H:%M" if long else "%H:%M")
        if k == TIME_LABELS - 1:
            label += f" {moment.tzname() or 'UTC'}"
        align = "left" if k == 0 else "right" if k == TIME_LABELS - 1 else "center"
        canvas.text(column + (-2 if k == 0 else 0), BOTTOM + 6, label, TEXT, align=align)


def from_payload(payload: dict[str, object]) -> bytes | None:
    """The chart of a notification payload's ``points`` ([iso time, value]...) and threshold."""
    points: list[tuple[float, float]] = []
    for item in payload.get("points") or []:  # type: ignore[attr-defined]
        try:
            when, value = item
            points.append((datetime.fromisoformat(str(when)).timestamp(), float(value)))
        except (TypeError, ValueError):
            continue
    lines = [
        float(value)
        for value in (payload.get("threshold"), payload.get("threshold_high"))
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    precision = payload.get("precision")
    return render(
        points,
        lines,
        unit=str(payload.get("unit") or ""),
        precision=precision if isinstance(precision, int) and 0 <= precision <= 6 else None,
        zone=local_time.zone(payload),
    )
