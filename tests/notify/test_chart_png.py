"""The alert email carries a PNG chart of its recent points and threshold, drawn with zlib
alone; a gap in the data stays open. Checked by decoding the PNG, and on the real SMTP sink."""

from __future__ import annotations

import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from monitors.models import Channel, Notification
from monitors.notify import chart_png, delivery
from tests.factories import ChannelFactory, MonitorFactory
from tests.notify.test_delivery import PAYLOAD

BLUE = bytes(chart_png.BLUE)
RED = bytes(chart_png.RED)


def decode(png: bytes) -> list[bytes]:
    """The rows of an 8-bit RGB PNG with filter 0 (what chart_png writes)."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    idat = png.index(b"IDAT")
    (length,) = struct.unpack(">I", png[idat - 4 : idat])
    raw = zlib.decompress(png[idat + 4 : idat + 4 + length])
    stride = 1 + 3 * width
    rows = [raw[i * stride + 1 : (i + 1) * stride] for i in range(height)]
    assert all(raw[i * stride] == 0 for i in range(height))
    return rows


def column_has(rows: list[bytes], x: int, colour: bytes) -> bool:
    return any(row[3 * x : 3 * x + 3] == colour for row in rows)


def minutes(values: dict[int, float]) -> list[tuple[float, float]]:
    start = datetime(2026, 12, 2, 1, 0, tzinfo=UTC).timestamp()
    return [(start + 60 * m, v) for m, v in values.items()]


def test_the_chart_shows_the_series_the_threshold_and_leaves_a_gap_open():
    # a reading a minute for 60 minutes, none from minute 20 to 40
    points = minutes({m: 20 + (m % 5) for m in range(60) if not 20 <= m < 40})

    png = chart_png.render(points, [30.0])

    assert png is not None
    assert len(png) < 20_000
    assert png is not None
    rows = decode(png)
    assert len(rows) == chart_png.HEIGHT
    mid_gap = round(chart_png.LEFT + 30 / 59 * (chart_png.RIGHT - chart_png.LEFT))
    assert not column_has(rows, mid_gap, BLUE)  # the gap is not bridged
    assert column_has(rows, chart_png.LEFT + 20, BLUE)
    assert any(RED in row for row in rows)  # the threshold line


def test_fewer_than_two_points_draw_nothing():
    assert chart_png.render([(0.0, 1.0)], [2.0]) is None
    assert chart_png.from_payload({"points": [], "threshold": 35}) is None


@pytest.mark.django_db
def test_the_alert_email_received_by_the_smtp_sink_has_the_chart_attached(smtp_inbox):
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    points = [[(now - timedelta(minutes=m)).isoformat(), 30 + m % 7] for m in range(30, 0, -1)]
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, config={"addresses": ["a@example.com"]})
    notification = Notification.objects.create(
        channel=channel,
        monitor=MonitorFactory(owner=channel.owner),
        event="fired",
        idempotency_key=f"m7:v{uuid.uuid4().hex[:6]}:fired:c{channel.pk}",
        payload={**PAYLOAD, "points": points},
    )

    assert delivery.deliver(notification.pk) == "sent"

    [message] = smtp_inbox.messages
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    assert images[0].get_filename() == "chart.png"
    rows = decode(images[0].get_payload(decode=True))
    assert any(BLUE in row for row in rows)


def test_the_axes_are_labelled_with_the_unit_and_the_times(monkeypatch):
    written: list[tuple[int, int, str]] = []
    real_text = chart_png.Canvas.text

    def spy(self, x, y, words, colour, align="left"):
        written.append((x, y, words))
        real_text(self, x, y, words, colour, align)

    monkeypatch.setattr(chart_png.Canvas, "text", spy)
    points = minutes({m: 20 + m / 10 for m in range(61)})  # 20.0 → 26.0 °C, 01:00 → 02:00

    png = chart_png.render(points, [25.0], unit="°C", precision=1)

    labels = [words for _, _, words in written]
    values = [w for w in labels if w.endswith(" °C")]
    assert len(values) == chart_png.GRID_LINES + 1
    assert values[0] == "19.4 °C"
    assert values[-1] == "26.6 °C"
    assert labels[-chart_png.TIME_LABELS :] == ["01:00", "01:20", "01:40", "02:00 UTC"]
    assert all(x < chart_png.LEFT for x, _, w in written if w in values)  # left of the plot
    assert all(y > chart_png.BOTTOM for _, y, w in written if "UTC" in w or ":" in w)  # below
    assert png is not None
    rows = decode(png)
    text = bytes(chart_png.TEXT)
    assert any(text in row[: 3 * chart_png.LEFT] for row in rows)  # the labels are drawn
    assert any(text in row for row in rows[chart_png.BOTTOM + 4 :])


def test_a_payloads_unit_and_precision_reach_the_labels(monkeypatch):
    written: list[str] = []
    monkeypatch.setattr(
        chart_png.Canvas, "text", lambda self, x, y, words, *a, **k: written.append(words)
    )
    payload = {
        "points": [["2026-12-02T01:00:00+00:00", 14.0], ["2026-12-02T01:30:00+00:00", 18.0]],
        "threshold": 20,
        "unit": "%",
        "precision": 0,
    }
    assert chart_png.from_payload(payload) is not None
    assert "20 %" in written or any(w.endswith(" %") for w in written)
    assert all(w.endswith(" %") for w in written if ":" not in w)


def test_every_character_of_the_suggested_units_has_a_glyph():
    from monitors import display
    from monitors.notify import pixel_font

    for unit, _ in display.UNIT_SUGGESTIONS:
        for char in unit:
            assert pixel_font.glyph(char) != pixel_font.UNKNOWN, (unit, char)
