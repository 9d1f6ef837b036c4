"""Times in messages, templates and the chart follow the owner's time zone, which the payload
carries (``time_zone``); a payload without it, or with a zone no one knows, is shown in UTC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Profile
from monitors.models import Channel, Notification
from monitors.notify import chart_png, delivery, messages, services, templating
from tests.factories import ChannelFactory, MonitorFactory
from tests.notify.test_delivery import PAYLOAD

# PAYLOAD: failing since 08:58 UTC, opened 09:00 UTC, points at 08:59 and 09:00 UTC (November:
# Amsterdam is UTC+1, "CET")
AMSTERDAM = {**PAYLOAD, "time_zone": "Europe/Amsterdam"}
OLDER = {k: v for k, v in PAYLOAD.items() if k != "time_zone"}  # written before it was added


@pytest.mark.django_db
def test_the_email_on_the_smtp_sink_shows_the_owners_local_times(smtp_inbox):
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, config={"addresses": ["a@example.com"]})
    notification = Notification.objects.create(
        channel=channel,
        monitor=MonitorFactory(owner=channel.owner),
        event="fired",
        idempotency_key=f"m7:v{uuid.uuid4().hex[:6]}:fired:c{channel.pk}",
        payload=AMSTERDAM,
    )

    assert delivery.deliver(notification.pk) == "sent"

    [message] = smtp_inbox.messages
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_maintype() == "text"
    }
    for text in parts.values():
        assert "2026-11-24 10:00:00 CET" in text  # when it started
        assert "2026-11-24 09:59:00 CET" in text  # a point
        assert "UTC" not in text


def test_a_template_since_and_time_render_in_the_owners_zone():
    values = templating.variables(AMSTERDAM)

    assert values["since"] == "2026-11-24 09:58 CET"
    assert values["time"] == "2026-11-24 10:00 CET"
    assert templating.fill("since {since}", values) == "since 2026-11-24 09:58 CET"
    summer = {**AMSTERDAM, "failing_since": "2026-07-01T23:15:00+00:00"}
    assert templating.variables(summer)["since"] == "2026-07-02 01:15 CEST"


@pytest.mark.parametrize("zone", [None, "", "Mars/Olympus", "../etc/passwd", "x" * 500])
def test_a_payload_without_a_known_zone_is_shown_in_utc(zone):
    payload = dict(OLDER)
    if zone is not None:
        payload["time_zone"] = zone

    assert templating.variables(payload)["since"] == "2026-11-24 08:58 UTC"
    assert ("Started", "2026-11-24 09:00:00 UTC") in messages.facts(payload)
    assert messages.points_text(payload)[0].startswith("2026-11-24 08:59:00 UTC")


def test_the_charts_time_labels_are_local_and_name_the_zone(monkeypatch):
    written: list[tuple[int, int, str]] = []
    real_text = chart_png.Canvas.text

    def spy(self, x, y, words, colour, align="left"):
        written.append((x, y, words))
        real_text(self, x, y, words, colour, align)

    monkeypatch.setattr(chart_png.Canvas, "text", spy)
    start = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 01:00 → 02:00 UTC, 02:00 → 03:00 CET
    points = [[(start + timedelta(minutes=m)).isoformat(), 20.0 + m] for m in range(61)]

    assert chart_png.from_payload({"points": points, "time_zone": "Europe/Amsterdam"})

    labels = [words for _, _, words in written]
    assert labels[-chart_png.TIME_LABELS :] == ["02:00", "02:20", "02:40", "03:00 CET"]

    written.clear()
    assert chart_png.from_payload({"points": points})  # an older payload, no zone: UTC
    assert [w for _, _, w in written][-chart_png.TIME_LABELS :] == [
        "01:00",
        "01:20",
        "01:40",
        "02:00 UTC",
    ]


@pytest.mark.django_db
def test_a_channels_test_message_carries_its_owners_zone():
    channel = ChannelFactory()
    assert services.test_payload(channel)["time_zone"] == "UTC"

    Profile.objects.update_or_create(user=channel.owner, defaults={"time_zone": "Asia/Tokyo"})
    assert services.test_payload(channel)["time_zone"] == "Asia/Tokyo"
