"""A small PNG chart of a notification's recent points and its threshold, for alert emails.

Pure Python and zlib (no imaging library): a white canvas, the series in blue (a gap in the
data — points further apart than 3x their median spacing — is left open), the threshold as a
dashed red line across. About 480x160 pixels and a few kilobytes; the email's text carries the
numbers, the picture carries the shape.
"""

from __future__ import annotations

import itertools
import statistics
import struct
import zlib
from collections.abc import Sequence
from datetime import datetime

WIDTH, HEIGHT, MARGIN = 480, 160, 8
Colour = tuple[int, int, int]
WHITE: Colour = (255, 255, 255)
GRID: Colour = (226, 231, 236)
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
        for x in range(MARGIN, self.width - MARGIN):
            if (x // dash) % 2 == 0:
                self.dot(x, y, colour, 2)

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


def render(points: Sequence[tuple[float, float]], thresholds: Sequence[float]) -> bytes | None:
    """The chart as PNG bytes, or None with fewer than two points to draw."""
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
        return round(MARGIN + (t - t0) / ((t1 - t0) or 1) * (WIDTH - 2 * MARGIN))

    def y(v: float) -> int:
        return round(HEIGHT - MARGIN - (v - low) / (high - low) * (HEIGHT - 2 * MARGIN))

    for k in range(1, 4):
        canvas.line(
            (MARGIN, MARGIN + k * (HEIGHT - 2 * MARGIN) // 4),
            (WIDTH - MARGIN, MARGIN + k * (HEIGHT - 2 * MARGIN) // 4),
            GRID,
            1,
        )
    for run in _runs(ordered):
        for a, b in itertools.pairwise(run):
            canvas.line((x(a[0]), y(a[1])), (x(b[0]), y(b[1])), BLUE)
        if len(run) == 1:
            canvas.dot(x(run[0][0]) - 1, y(run[0][1]) - 1, BLUE, 3)
    for value in thresholds:
        canvas.dashed(y(value), RED)
    return canvas.png()


def from_payload(payload: dict[str, object]) -> bytes | None:
    """The chart of a notification payload's ``points`` ([iso time, value]...) and threshold."""
    points: list[tuple[float, float]] = []
    for item in payload.get("points") or []:  # type: ignore[attr-defined]
        try:
            when, value = item
            points.append((datetime.fromisoformat(str(when)).timestamp(), float(value)))
        except (TypeError, ValueError):
            continue
    threshold = payload.get("threshold")
    lines = [float(threshold)] if isinstance(threshold, int | float) else []
    return render(points, lines)
