"""Slack alerts carry the chart: an ``image`` block whose URL is growalert's own signed,
expiring link (Slack's incoming webhooks cannot upload files). Checked end to end: the message
reaches the loopback fake Slack receiver, and its image URL, fetched from the running server
without signing in, is the PNG; a forged, altered or expired link is refused."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core import signing

from monitors.models import Channel, Notification
from monitors.notify import chart_links, delivery
from tests.factories import ChannelFactory, MonitorFactory
from tests.notify.test_chart_png import BLUE, decode
from tests.notify.test_delivery import PAYLOAD

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
POINTS = [[(NOW - timedelta(minutes=m)).isoformat(), 30 + m % 7] for m in range(60, 0, -1)]


def slack_row(channel: Channel, points: list[list[object]]) -> Notification:
    return Notification.objects.create(
        channel=channel,
        monitor=MonitorFactory(owner=channel.owner),
        event="fired",
        idempotency_key=f"m7:v{uuid.uuid4().hex[:6]}:fired:c{channel.pk}",
        payload={**PAYLOAD, "points": points},
    )


@pytest.mark.django_db(transaction=True)
def test_the_slack_message_carries_a_chart_url_that_serves_the_png(receiver, live_server, settings):
    settings.SITE_URL = live_server.url
    channel = ChannelFactory(kind=Channel.Kind.SLACK, config={"url": receiver.url})
    notification = slack_row(channel, POINTS)

    assert delivery.deliver(notification.pk) == "sent"

    blocks = receiver.accepted[0].json()["blocks"]
    [image] = [b for b in blocks if b["type"] == "image"]
    assert image["alt_text"].startswith("Chart of greenhouse too hot")
    assert image["image_url"].startswith(f"{live_server.url}/charts/")
    fetched = httpx.get(image["image_url"], timeout=10)  # no cookie, no token: as Slack does
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert "public" in fetched.headers["cache-control"]
    rows = decode(fetched.content)
    assert len(rows) == 160
    assert len(rows[0]) == 3 * 480
    assert any(BLUE in row for row in rows)


@pytest.mark.django_db
def test_no_image_block_without_points_to_draw(receiver):
    channel = ChannelFactory(kind=Channel.Kind.SLACK, config={"url": receiver.url})
    assert delivery.deliver(slack_row(channel, POINTS[:1]).pk) == "sent"
    assert all(b["type"] != "image" for b in receiver.accepted[0].json()["blocks"])


@pytest.mark.django_db
def test_a_forged_or_altered_link_is_refused(client):
    channel = ChannelFactory(kind=Channel.Kind.SLACK)
    notification = slack_row(channel, POINTS)
    good = chart_links.token(notification.idempotency_key)
    assert client.get(f"/charts/{good}.png").status_code == 200

    payload, stamp, signature = good.split(":")
    other_key = chart_links.token("m1:v1:fired:c1").split(":")[0]
    forged = client.get(f"/charts/{other_key}:{stamp}:{signature}.png")  # another key
    assert forged.status_code == 403
    assert forged.content == b"This is not a chart link of this site."
    assert client.get(f"/charts/{payload}:{stamp}:{'A' * len(signature)}.png").status_code == 403
    assert client.get("/charts/m7.png").status_code == 403

    other_salt = signing.dumps(notification.idempotency_key, salt="growalert.pages.live")
    assert client.get(f"/charts/{other_salt}.png").status_code == 403  # signed for another use


@pytest.mark.django_db
def test_an_expired_link_answers_410(client, monkeypatch):
    channel = ChannelFactory(kind=Channel.Kind.SLACK)
    notification = slack_row(channel, POINTS)
    real_time = time.time
    eight_days_ago = real_time() - 8 * 86400
    monkeypatch.setattr(time, "time", lambda: eight_days_ago)
    old = chart_links.token(notification.idempotency_key)
    monkeypatch.setattr(time, "time", real_time)

    expired = client.get(f"/charts/{old}.png")

    assert expired.status_code == 410
    assert expired.content == b"This chart link has expired."


@pytest.mark.django_db
def test_a_link_to_a_notification_without_points_is_a_404(client):
    channel = ChannelFactory(kind=Channel.Kind.SLACK)
    notification = slack_row(channel, [])
    assert (
        client.get(f"/charts/{chart_links.token(notification.idempotency_key)}.png").status_code
        == 404
    )
