"""Server-rendered SVG line charts: a series, its thresholds and where the monitor fired.

No JavaScript and no build step: the SVG is part of the HTML and scales with its container
(``viewBox`` + ``preserveAspectRatio="none"`` on the plot, text kept outside the stretched part).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

Point = tuple[int, float]  # (epoch milliseconds, value)


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
    kind: str = "firing"


@dataclass(frozen=True)
class Chart:
    points: Sequence[Point]
    lines: Sequence[Line] = ()
    bands: Sequence[Band] = ()
    marks: Sequence[tuple[int, str]] = field(default_factory=tuple)  # (time, "fired"...)
    title: str = "Chart"
    width: int = 600
    height: int = 160


def _bounds(chart: Chart) -> tuple[int, int, float, float]:
    times = [t for t, _ in chart.points]
    values = [v for _, v in chart.points] + [line.value for line in chart.lines]
    t0, t1 = min(times), max(times)
    if t1 == t0:
        t0, t1 = t0 - 60_000, t1 + 60_000
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    return t0, t1, low - pad, high + pad


def render(chart: Chart) -> SafeString:
    """The chart as an accessible inline SVG (``role="img"`` with a title describing it)."""
    if not chart.points:
        return format_html(
            '<div class="chart chart-empty" role="img" aria-label="{}">No data to chart</div>',
            f"{chart.title}: no data",
        )
    t0, t1, low, high = _bounds(chart)
    w, h = chart.width, chart.height

    def x(t: int) -> float:
        return round((t - t0) / (t1 - t0) * w, 2)

    def y(v: float) -> float:
        return round(h - (v - low) / (high - low) * h, 2)

    polyline = " ".join(f"{x(t)},{y(v)}" for t, v in chart.points)
    bands = format_html_join(
        "",
        '<rect class="band band-{}" x="{}" y="0" width="{}" height="{}"></rect>',
        (
            (b.kind, x(max(b.start, t0)), max(x(min(b.end or t1, t1)) - x(max(b.start, t0)), 1), h)
            for b in chart.bands
            if (b.end or t1) >= t0 and b.start <= t1
        ),
    )
    lines = format_html_join(
        "",
        '<line class="threshold threshold-{}" x1="0" x2="{}" y1="{}" y2="{}">'
        "<title>{}</title></line>",
        ((line.kind, w, y(line.value), y(line.value), line.label) for line in chart.lines),
    )
    marks = format_html_join(
        "",
        '<line class="mark mark-{}" x1="{}" x2="{}" y1="0" y2="{}"><title>{}</title></line>',
        ((kind, x(t), x(t), h, kind) for t, kind in chart.marks if t0 <= t <= t1),
    )
    last = chart.points[-1][1]
    return format_html(
        '<figure class="chart"><svg viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img" '
        'aria-label="{label}" focusable="false"><title>{label}</title>{bands}{lines}{marks}'
        '<polyline class="series" points="{points}" vector-effect="non-scaling-stroke"></polyline>'
        "</svg>{legend}</figure>",
        w=w,
        h=h,
        label=f"{chart.title}: {len(chart.points)} points, latest {last:g}",
        bands=bands,
        lines=lines,
        marks=marks,
        points=polyline,
        legend=_legend(chart),
    )


def _legend(chart: Chart) -> SafeString:
    values = [v for _, v in chart.points]
    items = format_html_join(
        "",
        '<span class="legend-item legend-{}">{}</span>',
        ((line.kind, line.label) for line in chart.lines),
    )
    return format_html(
        '<figcaption class="chart-legend"><span>min {}, max {}</span>{}</figcaption>',
        f"{min(values):.4g}",
        f"{max(values):.4g}",
        items,
    )
