"""Server-rendered SVG line charts: a series, its thresholds, where the monitor was in trouble.

What a grower reads at 3 am on a phone (issue 20, point 4):

- a time axis (local times) and a value axis with the monitor's unit;
- a gap in the data drawn as a gap: the series is cut into separate ``path.series`` segments
  wherever two points are further apart than a few times their usual spacing;
- a long, spiky series is not drawn as a solid band: past about one point per pixel column it
  is reduced to each column's min/max envelope (a light area) and mean (the line), and the
  threshold lines are drawn above both, so they stay visible;
- incidents and silences shaded (``rect.band-critical``, ``rect.band-silence``), with a legend;
- the points themselves in ``data-points``, for the hover/tap readout (static/js/chart.js).

No build step: the SVG is part of the HTML and scales with its container (``viewBox``; text is
sized for the drawn width).
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

Point = tuple[int, float]  # (epoch milliseconds, value)

GAP_FACTOR = 3  # a spacing over 3x the median spacing is a gap
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 58, 8, 8, 22
_TIME_STEPS = [m * 60_000 for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880)]


@dataclass(frozen=True)
class Line:
    value: float
    label: str
    kind: str = "critical"  # critical | warning | recovery: the CSS class that colours it


@dataclass(frozen=True)
class Band:
    """A stretch of time to shade (an incident), in epoch milliseconds; end None = still open."""

    start: int
    end: int | None
    kind: str = "critical"  # critical | warning | silence


@dataclass(frozen=True)
class Chart:
    points: Sequence[Point]
    lines: Sequence[Line] = ()
    bands: Sequence[Band] = ()
    marks: Sequence[tuple[int, str]] = field(default_factory=tuple)  # (time, "fired"...)
    title: str = "Chart"
    width: int = 600
    height: int = 180
    unit: str = ""
    decimals: int | None = None  # None: as many as the value axis' step needs
    start: int | None = None  # the time range shown (ms); None: the points' own
    end: int | None = None


@dataclass(frozen=True)
class Segment:
    """A run of points without a gap; ``low``/``high`` set when reduced to an envelope."""

    points: list[Point]
    low: list[float] | None = None
    high: list[float] | None = None


@dataclass(frozen=True)
class Frame:
    t0: int
    t1: int
    low: float
    high: float
    left: float
    top: float
    right: float
    bottom: float

    def x(self, t: float) -> float:
        return round(self.left + (t - self.t0) / (self.t1 - self.t0) * (self.right - self.left), 1)

    def y(self, v: float) -> float:
        return round(
            self.bottom - (v - self.low) / (self.high - self.low) * (self.bottom - self.top), 1
        )


# ---------------------------------------------------------------- series


def segments(points: Sequence[Point]) -> list[list[Point]]:
    """The points cut wherever the spacing exceeds ``GAP_FACTOR`` times the median spacing."""
    ordered = sorted(points)
    if len(ordered) < 3:
        return [ordered] if ordered else []
    spacing = statistics.median(b[0] - a[0] for a, b in itertools.pairwise(ordered))
    limit = max(spacing * GAP_FACTOR, 1)
    runs: list[list[Point]] = [[ordered[0]]]
    for previous, point in itertools.pairwise(ordered):
        if point[0] - previous[0] > limit:
            runs.append([])
        runs[-1].append(point)
    return runs


def reduce(run: list[Point], frame: Frame, columns: int) -> Segment:
    """One point per pixel column at most: the column's mean, within its min/max envelope."""
    if len(run) <= columns:
        return Segment(run)
    width = (frame.t1 - frame.t0) / columns
    buckets: dict[int, list[Point]] = {}
    for t, v in run:
        buckets.setdefault(int((t - frame.t0) / width), []).append((t, v))
    points, low, high = [], [], []
    for _, members in sorted(buckets.items()):
        values = [v for _, v in members]
        points.append((sum(t for t, _ in members) // len(members), statistics.fmean(values)))
        low.append(min(values))
        high.append(max(values))
    return Segment(points, low, high)


# ---------------------------------------------------------------- axes


def nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def value_ticks(low: float, high: float, count: int) -> tuple[list[float], int]:
    """Round values inside [low, high] and the decimals their step needs."""
    step = nice_step(high - low, count)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return ticks, decimals


def time_ticks(t0: int, t1: int, count: int) -> list[int]:
    """Round local times (every 5 min, 1 h, 6 h...) inside [t0, t1]."""
    step = next((s for s in _TIME_STEPS if (t1 - t0) / s <= count), _TIME_STEPS[-1])
    local = timezone.localtime(datetime.fromtimestamp(t0 / 1000, tz=UTC))
    utc_offset = local.utcoffset()
    offset = int(utc_offset.total_seconds() * 1000) if utc_offset else 0
    first = ((t0 + offset) // step + 1) * step - offset
    return list(range(first, t1 + 1, step))


def time_label(t: int, with_day: bool) -> str:
    local = timezone.localtime(datetime.fromtimestamp(t / 1000, tz=UTC))
    return local.strftime("%a %H:%M" if with_day else "%H:%M")


def format_value(value: float, decimals: int, unit: str = "") -> str:
    text = f"{value:,.{decimals}f}".replace(",", "\u202f")
    return f"{text}\u202f{unit}" if unit else text


# ---------------------------------------------------------------- drawing


def _frame(chart: Chart) -> Frame:
    times = [t for t, _ in chart.points]
    t0 = chart.start if chart.start is not None else min(times)
    t1 = chart.end if chart.end is not None else max(times)
    if t1 <= t0:
        t0, t1 = t0 - 60_000, t1 + 60_000
    values = [v for _, v in chart.points] + [line.value for line in chart.lines]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    return Frame(
        t0,
        t1,
        low - pad,
        high + pad,
        MARGIN_LEFT,
        MARGIN_TOP,
        chart.width - MARGIN_RIGHT,
        chart.height - MARGIN_BOTTOM,
    )


def _path(points: list[Point], frame: Frame) -> str:
    return " ".join(
        f"{'M' if i == 0 else 'L'}{frame.x(t)},{frame.y(v)}" for i, (t, v) in enumerate(points)
    )


def _envelope(segment: Segment, frame: Frame) -> str:
    assert segment.low is not None
    assert segment.high is not None
    top = [(t, h) for (t, _), h in zip(segment.points, segment.high, strict=True)]
    bottom = [(t, lo) for (t, _), lo in zip(segment.points, segment.low, strict=True)]
    return _path(top + bottom[::-1], frame) + " Z"


def _axes(chart: Chart, frame: Frame, decimals: int) -> SafeString:
    small = chart.height < 120
    ticks, tick_decimals = value_ticks(frame.low, frame.high, 2 if small else 4)
    shown = decimals if chart.decimals is not None else tick_decimals
    y_axis = format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
        '<text class="tick tick-y" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">'
        "{}</text>",
        (
            (
                frame.left,
                frame.right,
                frame.y(v),
                frame.y(v),
                frame.left - 4,
                frame.y(v),
                format_value(v, shown, chart.unit),
            )
            for v in ticks
        ),
    )
    with_day = frame.t1 - frame.t0 > 20 * 3600_000
    times = time_ticks(frame.t0, frame.t1, 3 if chart.width < 400 else 6)
    x_axis = format_html_join(
        "",
        '<line class="tick-mark" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
        '<text class="tick tick-x" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (
                frame.x(t),
                frame.x(t),
                frame.bottom,
                frame.bottom + 3,
                frame.x(t),
                chart.height - 4,
                time_label(t, with_day),
            )
            for t in times
        ),
    )
    return format_html(
        '<g class="axis axis-y" aria-hidden="true">{}</g>'
        '<g class="axis axis-x" aria-hidden="true">{}'
        '<line class="baseline" x1="{}" x2="{}" y1="{}" y2="{}"></line></g>',
        y_axis,
        x_axis,
        frame.left,
        frame.right,
        frame.bottom,
        frame.bottom,
    )


def render(chart: Chart) -> SafeString:
    """The chart as an accessible inline SVG (``role="img"`` with a title describing it)."""
    if not chart.points:
        return format_html(
            '<div class="chart chart-empty" role="img" aria-label="{}">No data to chart</div>',
            f"{chart.title}: no data",
        )
    frame = _frame(chart)
    _, tick_decimals = value_ticks(frame.low, frame.high, 4)
    decimals = chart.decimals if chart.decimals is not None else min(tick_decimals + 1, 4)
    columns = max(int(frame.right - frame.left), 1)
    drawn = [reduce(run, frame, columns) for run in segments(chart.points)]
    h = chart.height
    bands = format_html_join(
        "",
        '<rect class="band band-{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        (
            (
                b.kind,
                frame.x(max(b.start, frame.t0)),
                frame.top,
                max(frame.x(min(b.end or frame.t1, frame.t1)) - frame.x(max(b.start, frame.t0)), 2),
                frame.bottom - frame.top,
                f"{BAND_LEGEND.get(b.kind, b.kind)} {time_label(b.start, False)} to "
                + (time_label(b.end, False) if b.end else "now"),
            )
            for b in chart.bands
            if (b.end or frame.t1) >= frame.t0 and b.start <= frame.t1
        ),
    )
    envelopes = format_html_join(
        "",
        '<path class="envelope" d="{}"></path>',
        ((_envelope(s, frame),) for s in drawn if s.low is not None),
    )
    series = format_html_join(
        "",
        '<path class="series" d="{}"></path>',
        (
            (_path(s.points, frame) if len(s.points) > 1 else _dot(s.points[0], frame),)
            for s in drawn
        ),
    )
    lines = format_html_join(
        "",
        '<line class="threshold threshold-{}" x1="{}" x2="{}" y1="{}" y2="{}">'
        "<title>{}</title></line>",
        (
            (
                line.kind,
                frame.left,
                frame.right,
                frame.y(line.value),
                frame.y(line.value),
                line.label,
            )
            for line in chart.lines
        ),
    )
    marks = format_html_join(
        "",
        '<line class="mark mark-{}" x1="{}" x2="{}" y1="{}" y2="{}"><title>{}</title></line>',
        (
            (kind, frame.x(t), frame.x(t), frame.top, frame.bottom, kind)
            for t, kind in chart.marks
            if frame.t0 <= t <= frame.t1
        ),
    )
    last = max(chart.points)[1]
    label = (
        f"{chart.title}: {len(chart.points)} points, latest "
        f"{format_value(last, decimals, chart.unit)}"
        + (f", {len(drawn) - 1} gap{'s' if len(drawn) > 2 else ''}" if len(drawn) > 1 else "")
    )
    readout = [[t, round(v, 6)] for s in drawn for t, v in s.points]
    return format_html(
        '<figure class="chart" data-chart data-points="{points}" data-t0="{t0}" data-t1="{t1}" '
        'data-left="{left}" data-right="{right}" data-top="{top}" data-bottom="{bottom}" '
        'data-low="{low}" data-high="{high}" data-width="{w}" data-unit="{unit}" '
        'data-decimals="{decimals}" data-tz="{tz}">'
        '<svg viewBox="0 0 {w} {h}" role="img" aria-label="{label}" focusable="false">'
        "<title>{label}</title>{bands}{axes}{envelopes}{series}{lines}{marks}</svg>"
        '<output class="chart-readout" aria-live="off"></output>{legend}</figure>',
        points=json.dumps(readout, separators=(",", ":")),
        t0=frame.t0,
        t1=frame.t1,
        left=frame.left,
        right=frame.right,
        top=frame.top,
        bottom=frame.bottom,
        low=frame.low,
        high=frame.high,
        w=chart.width,
        h=h,
        unit=chart.unit,
        decimals=decimals,
        tz=timezone.get_current_timezone_name(),
        label=label,
        bands=bands,
        axes=_axes(chart, frame, decimals),
        envelopes=envelopes,
        series=series,
        lines=lines,
        marks=marks,
        legend=_legend(chart, decimals),
    )


def _dot(point: Point, frame: Frame) -> str:
    """A lone point between two gaps: a short stroke, so it is still seen."""
    x, y = frame.x(point[0]), frame.y(point[1])
    return f"M{x - 1.5},{y} L{x + 1.5},{y}"


BAND_LEGEND = {"critical": "incident", "warning": "warning", "silence": "silenced"}


def _legend(chart: Chart, decimals: int) -> SafeString:
    values = [v for _, v in chart.points]
    shaded = [kind for kind in BAND_LEGEND if any(b.kind == kind for b in chart.bands)]
    items = format_html_join(
        "",
        '<span class="legend-item legend-{}">{}</span>',
        [(line.kind, line.label) for line in chart.lines]
        + [(f"band-{kind}", BAND_LEGEND[kind]) for kind in shaded],
    )
    return format_html(
        '<figcaption class="chart-legend"><span>min {}, max {}</span>{}</figcaption>',
        format_value(min(values), decimals, chart.unit),
        format_value(max(values), decimals, chart.unit),
        items,
    )


def window(hours: float) -> tuple[int, int]:
    """The last ``hours`` up to now, in epoch ms (a chart's ``start`` and ``end``)."""
    end = timezone.now()
    return int((end - timedelta(hours=hours)).timestamp() * 1000), int(end.timestamp() * 1000)
