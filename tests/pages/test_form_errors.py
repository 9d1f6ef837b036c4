"""Every bad input on a page form answers a plain sentence next to its field: never a Python
dict, a repr or an ErrorDetail."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

RAW = re.compile(r"ErrorDetail|\{'|\[\'|code=")


def field_error(html: str, field: str) -> str:
    """The text of the error shown next to ``field`` (Django's as_field_group)."""
    match = re.search(rf'id="id_{field}_error"[^>]*>(.*?)</div>', html, re.S)
    assert match, f"no error next to {field}"
    return re.sub(r"<[^>]+>", " ", match.group(1)).strip()


def add_channel(client, kind: str, target: str):
    return client.post("/app/channels", {"name": "alerts", "kind": kind, "target": target})


@pytest.mark.parametrize(
    ("kind", "target", "says"),
    [
        ("webhook", "http://127.0.0.1:9/hook", "private address"),
        ("webhook", "ftp://example.com/hook", "http"),
        ("webhook", "not a url", "http"),
        ("email", "grower@", "is not a valid email address"),
        ("email", "a@example.com, b@", "b@"),
        ("slack", "https://example.com/hook", "hooks.slack.com"),
        ("sms", "12345", "international number"),
    ],
)
def test_a_bad_channel_target_is_a_sentence_next_to_the_field(
    client_for, alice, kind, target, says
):
    response = add_channel(client_for(alice), kind, target)
    html = response.content.decode()

    assert response.status_code == 400
    error = field_error(html, "target")
    assert says in error
    assert error[0].isupper() or error.startswith("The address")
    assert error.endswith(".")
    assert not RAW.search(error), error


def test_the_private_address_error_names_the_setting_that_allows_it(client_for, alice):
    html = add_channel(client_for(alice), "webhook", "http://127.0.0.1:9/hook").content.decode()
    assert "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES" in field_error(html, "target")


def test_the_help_text_follows_the_channel_kind(client_for, alice):
    html = client_for(alice).get("/app/channels").content.decode()
    for kind, words in (
        ("email", "comma"),
        ("webhook", "public"),
        ("slack", "hooks.slack.com"),
        ("sms", "+15551234567"),
    ):
        item = re.search(rf'data-help-kind="{kind}">(.*?)</li>', html, re.S)
        assert item, kind
        assert words in item.group(1), kind


def test_a_bad_silence_is_a_sentence_next_to_its_field(client_for, alice):
    from tests.factories import MonitorFactory

    monitor = MonitorFactory(owner=alice)
    client = client_for(alice)
    url = f"/app/monitors/{monitor.pk}/silence"

    both_missing = client.post(url, {"reason": "x"}).content.decode()
    assert "Give either how long" in both_missing
    bad_duration = client.post(url, {"duration": "soon"}).content.decode()
    assert field_error(bad_duration, "duration") == "Use a duration like 30s, 5m or 1h."
    too_long = client.post(url, {"duration": "400d"}).content.decode()
    assert "at most 366 days" in field_error(too_long, "duration")
    past = client.post(url, {"until": "2020-01-01T10:00"}).content.decode()
    assert field_error(past, "until") == "The silence must end in the future, after it starts."


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"unit": "°C\x07"}, "unit", "printable text"),
        ({"precision": "9"}, "precision", "Must be between 0 and 6 decimals"),
        ({"window": "forever"}, "window", "Use a duration"),
        ({"critical": "hot"}, "critical", "Enter a number"),
    ],
)
def test_a_bad_monitor_setting_is_a_sentence_next_to_its_field(
    client_for, alice, fields, field, says
):
    from tests.factories import SourceFactory

    source = SourceFactory(owner=alice)
    form = {
        "name": "bench",
        "source": source.pk,
        "measurement": "soil",
        "field": "moisture",
        "aggregation": "mean",
        "window": "5m",
        "comparator": "below",
        "critical": "20",
        "interval": "1m",
        "pending_for": "1",
        "recover_after": "1",
        "no_data_policy": "alerting",
        "error_policy": "status",
    } | fields
    html = client_for(alice).post("/app/monitors/new", form).content.decode()
    error = field_error(html, field)
    assert says in error
    assert not RAW.search(error), error


@pytest.mark.parametrize(
    ("pending", "interval", "checks"),
    [("10m", "1m", 11), ("0s", "1m", 1), ("3", "1m", 3), ("90s", "30s", 4)],
)
def test_the_editor_takes_the_pending_period_as_a_duration(
    client_for, alice, pending, interval, checks
):
    from monitors.models import Monitor
    from tests.factories import SourceFactory

    source = SourceFactory(owner=alice)
    form = {
        "name": "bench",
        "source": source.pk,
        "measurement": "soil",
        "field": "moisture",
        "aggregation": "mean",
        "window": "5m",
        "comparator": "below",
        "critical": "20",
        "interval": interval,
        "pending_for": pending,
        "recover_after": "1",
        "no_data_policy": "alerting",
        "error_policy": "status",
    }
    response = client_for(alice).post("/app/monitors/new", form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Monitor.objects.get(owner=alice).pending_for == checks


def test_a_pending_period_too_long_for_the_interval_says_the_longest(client_for, alice):
    from tests.factories import SourceFactory

    source = SourceFactory(owner=alice)
    form = {
        "name": "bench",
        "source": source.pk,
        "measurement": "soil",
        "field": "moisture",
        "aggregation": "mean",
        "window": "5m",
        "comparator": "below",
        "critical": "20",
        "interval": "1m",
        "pending_for": "1d",
        "recover_after": "1",
        "no_data_policy": "alerting",
        "error_policy": "status",
    }
    html = client_for(alice).post("/app/monitors/new", form).content.decode()
    assert field_error(html, "pending_for") == (
        "At most 1 h 39 min when checking every 1 min (100 checks)."
    )
