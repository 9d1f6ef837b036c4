"""Numbers, durations and status sentences as people write them (monitors/display.py,
monitors/status_words.py, monitors/notify/messages.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

import alerts_core as ac
from monitors import display
from monitors.models import Monitor
from monitors.notify import messages
from monitors.status_words import status_words

T0 = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "precision", "shown"),
    [
        (22.6691, None, "22.67"),
        (38.78188235294117, None, "38.78"),
        (38.39000000000001, None, "38.39"),
        (30.0, None, "30"),
        (-0.001, 1, "0.0"),
        (0.004, None, "0.004"),
        (14.0, 0, "14"),
        (22.6691, 1, "22.7"),
        (None, None, "—"),
    ],
)
def test_a_number_shows_its_precision_or_at_most_two_decimals(value, precision, shown):
    assert display.number(value, precision) == shown


def test_a_quantity_carries_its_unit_after_a_space():
    assert display.quantity(14, "%") == "14 %"
    assert display.quantity(22.66, "°C", 1) == "22.7 °C"
    assert display.quantity(None, "°C") == "—"
    assert display.quantity(3.5) == "3.5"


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (20, "20 s"),
        (60, "1 min"),
        (300, "5 min"),
        (90, "1 min 30 s"),
        (4800, "1 h 20 min"),
        (3605, "1 h"),
        (86400 + 3 * 3600, "1 d 3 h"),
        (7 * 86400, "7 d"),
        (0, "0 s"),
    ],
)
def test_durations_read_as_people_write_them(seconds, words):
    assert display.duration(timedelta(seconds=seconds)) == words
    assert display.duration(float(seconds)) == words


def test_a_clock_time_is_short_today_and_dated_another_day():
    assert display.clock(T0, now=T0 + timedelta(hours=1)) == "14:00"
    assert display.clock(T0, now=T0 + timedelta(days=1)) == "2 Dec 14:00"


def monitor(**fields) -> Monitor:
    values = {
        "name": "Bench 3 soil",
        "comparator": "below",
        "critical": 20.0,
        "unit": "%",
        "interval": timedelta(minutes=1),
        "pending_for": 3,
        "recover_after": 3,
        "enabled": True,
        "last_evaluated_at": T0,
        "status_changed_at": T0,
    }
    return Monitor(**(values | fields))


def test_a_monitor_never_evaluated_is_not_ok():
    words = status_words(monitor(last_evaluated_at=None, status="ok"), now=T0)
    assert words.label == "Not evaluated yet"
    assert words.css == "unknown"


def test_pending_says_when_it_fires_and_on_what_condition():
    state = ac.MonitorState(status=ac.Status.PENDING, failures=1).to_dict()
    m = monitor(status="pending", state=state, last_value=14.0)
    words = status_words(m, now=T0)
    assert words.sentence == (
        "Pending: fires at 14:02 if still below 20 % (now 14 %) — 2 more failing checks."
    )


def test_a_firing_monitor_coming_back_says_how_many_good_checks_are_left():
    state = ac.MonitorState(status=ac.Status.FIRING, alerting=True, passes=1).to_dict()
    m = monitor(status="firing", state=state, last_value=28.98, status_reason="28.98 % ok")
    words = status_words(m, now=T0)
    assert words.label == "Recovering"
    assert words.sentence.startswith("Recovering: 2 more good checks to resolve (now 28.98 %")


def test_firing_says_for_how_long():
    state = ac.MonitorState(status=ac.Status.FIRING, alerting=True, fired_at=T0).to_dict()
    m = monitor(status="firing", state=state, status_reason="14 % is below 20 % (critical)")
    words = status_words(m, now=T0 + timedelta(minutes=12))
    assert words.sentence == "Firing for 12 min: 14 % is below 20 % (critical)."


def test_the_alert_leads_with_plain_words_and_the_threshold_it_crossed():
    payload = {
        "event": "fired",
        "occurred_at": "2026-12-02T14:12:00+00:00",
        "failing_since": "2026-12-02T14:00:00+00:00",
        "monitor": {"id": 1, "name": "Bench 3 soil", "url": "http://x/app/monitors/1"},
        "value": 14.0,
        "threshold": 20.0,
        "threshold_kind": "critical",
        "comparator": "below",
        "unit": "%",
        "window_seconds": 300,
        "aggregation": "mean",
        "query": "SELECT ...",
        "tags": {"device": "bench-3"},
    }
    assert messages.headline(payload) == "Bench 3 soil is 14 %, below 20 % for 12 min"
    facts = dict(messages.facts(payload))
    assert facts["Threshold"] == "below 20 % (critical)"
    assert facts["Window"] == "mean over 5 min"
    assert facts["device"] == "bench-3"
    assert "Query" not in facts
    assert messages.details(payload) == [("Query", "SELECT ...")]


def test_a_range_threshold_shows_both_bounds():
    payload = {"threshold": 18.0, "threshold_high": 24.0, "comparator": "outside", "unit": "°C"}
    payload |= {"value": 26.0, "event": "fired", "monitor": {"id": 2, "name": "Tent"}}
    assert messages.headline(payload) == "Tent is 26 °C, outside 18 °C..24 °C"


def test_a_warning_email_shows_the_warning_threshold():
    payload = {
        "event": "warning_raised",
        "monitor": {"id": 1, "name": "Bench 3 air", "url": ""},
        "value": 27.0,
        "threshold": 26.0,
        "threshold_kind": "warning",
        "comparator": "above",
        "unit": "°C",
    }
    assert dict(messages.facts(payload))["Threshold"] == "above 26 °C (warning)"
    assert messages.headline(payload) == "Bench 3 air is 27 °C, above 26 °C (the warning threshold)"


def test_timezone_is_used_for_clock_times(settings):
    settings.TIME_ZONE = "Europe/Paris"
    timezone.activate("Europe/Paris")
    try:
        assert display.clock(T0, now=T0) == "15:00"
    finally:
        timezone.deactivate()


@pytest.mark.django_db
def test_the_admin_lists_values_with_their_unit_and_no_float_noise(admin_client):
    from tests.factories import MonitorFactory

    MonitorFactory(name="bench air", unit="°C", last_value=38.39000000000001)
    html = admin_client.get("/admin/monitors/monitor/").content.decode()
    assert "38.39 °C" in html
    assert "38.39000000000001" not in html
