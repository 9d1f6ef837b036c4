"""Fleet monitors against real InfluxDB and Postgres: one monitor, one state per series
(GROUP BY its tag keys), through the same dispatcher, pipeline, incidents and outbox."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from accounts.models import Profile
from monitors import live, services
from monitors.evaluate import dispatch, fleet_outbox, pipeline
from monitors.influxdb import client as influx
from monitors.models import Incident, Monitor, Notification, SeriesState, Silence, Status
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory
from tests.monitors.test_pipeline import due_again, tick

HOT, COOL = 41.0, 20.0


def write(influx_db, values: dict[str, float], *, ago: float = 1, tag: str = "device") -> None:
    """One point per series (``{device: value}``), ``ago`` seconds in the past, one request."""
    now_ms = int(time.time() * 1000) - int(ago * 1000)
    lines = [
        influx.line("gro01", {"temperature": float(v)}, tags={tag: name}, timestamp_ms=now_ms)
        for name, v in values.items()
    ]
    influx_db.client.write(lines, database=influx_db.database)


@pytest.fixture
def fleet_monitor(owner, influx_db):
    """max(temperature) over a minute per device, above 35 fires, two channels, due now."""
    source = SourceFactory(owner=owner, database=influx_db.database)
    monitor = MonitorFactory(
        owner=owner,
        source=source,
        tags={},
        group_by=["device"],
        aggregation="max",
        window=timedelta(minutes=1),
        interval=timedelta(seconds=10),
        critical=35,
        flap_detection=False,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )
    monitor.channels.set([ChannelFactory(owner=owner), ChannelFactory(owner=owner)])
    return monitor


def series(monitor) -> dict[str, SeriesState]:
    return {s.tags["device"]: s for s in SeriesState.objects.filter(monitor=monitor)}


def again(monitor):
    due_again(monitor)
    return tick()


@pytest.mark.django_db
def test_one_hot_series_fires_alone_with_its_own_incident_and_messages_naming_it(
    fleet_monitor, influx_db
):
    Profile.objects.update_or_create(
        user=fleet_monitor.owner, defaults={"time_zone": "Europe/Amsterdam"}
    )
    write(influx_db, {"greenhouse-1": COOL, "greenhouse-2": COOL, "greenhouse-3": 31.4 + 10})
    [result] = tick()

    assert result.applied == 1
    assert result.series == 3
    rows = series(fleet_monitor)
    assert {d: s.status for d, s in rows.items()} == {
        "greenhouse-1": "ok",
        "greenhouse-2": "ok",
        "greenhouse-3": "firing",
    }
    assert rows["greenhouse-3"].last_value == 41.4
    fleet_monitor.refresh_from_db()
    assert fleet_monitor.status == Status.FIRING
    assert fleet_monitor.status_reason == "1 of 3 series firing: greenhouse-3"
    incident = Incident.objects.get(monitor=fleet_monitor)
    assert incident.series_key == "device=greenhouse-3"
    assert incident.is_open
    fired = Notification.objects.filter(monitor=fleet_monitor, event="fired")
    assert fired.count() == 2
    payload = fired[0].payload
    assert fired[0].series_key == "device=greenhouse-3"
    assert payload["series"] == {
        "key": "device=greenhouse-3",
        "label": "greenhouse-3",
        "tags": {"device": "greenhouse-3"},
    }
    assert payload["reason"] == "greenhouse-3: 41.4 is above 35 (critical)"
    assert payload["value"] == 41.4
    assert payload["incident"]["id"] == incident.pk
    assert [p[1] for p in payload["points"]] == [41.4]
    assert payload["time_zone"] == "Europe/Amsterdam"  # the owner's, for the times shown


@pytest.mark.django_db
def test_steady_series_are_not_rewritten_and_a_replayed_tick_changes_nothing(
    fleet_monitor, influx_db
):
    write(influx_db, {"greenhouse-1": COOL, "greenhouse-2": HOT})
    tick()
    before = {d: (s.state_version, s.last_evaluated_at) for d, s in series(fleet_monitor).items()}

    due_again(fleet_monitor)
    due = timezone.now()
    [result] = tick(due)
    after = {d: (s.state_version, s.last_evaluated_at) for d, s in series(fleet_monitor).items()}

    assert result.applied == 1
    assert after == before  # same state and same value: nothing written
    assert Notification.objects.filter(monitor=fleet_monitor).count() == 2
    fleet_monitor.refresh_from_db()
    replay = pipeline.evaluate_batch([(fleet_monitor.pk, fleet_monitor.evaluated_due_at)])
    assert replay.applied == 0
    assert replay.skipped == 1
    assert Notification.objects.filter(monitor=fleet_monitor).count() == 2


@pytest.mark.django_db
def test_series_join_leave_with_the_no_data_policy_alone_and_return(fleet_monitor, influx_db):
    Monitor.objects.filter(pk=fleet_monitor.pk).update(window=timedelta(seconds=3))
    write(influx_db, {"greenhouse-1": COOL, "greenhouse-2": COOL}, ago=0.5)
    tick()
    assert set(series(fleet_monitor)) == {"greenhouse-1", "greenhouse-2"}

    # greenhouse-3 joins; greenhouse-2 stops reporting (its point leaves the 3 s window)
    time.sleep(3)
    write(influx_db, {"greenhouse-1": COOL, "greenhouse-3": COOL}, ago=0.5)
    again(fleet_monitor)
    rows = series(fleet_monitor)
    assert set(rows) == {"greenhouse-1", "greenhouse-2", "greenhouse-3"}
    # no data notifies by default (alerting policy): it fires for that series alone
    assert rows["greenhouse-2"].status == "firing"
    assert rows["greenhouse-2"].status_reason == "no data in the last 3 s"
    assert rows["greenhouse-1"].status == rows["greenhouse-3"].status == "ok"
    fired = Notification.objects.filter(monitor=fleet_monitor, event="fired")
    assert {n.series_key for n in fired} == {"device=greenhouse-2"}

    write(influx_db, {"greenhouse-1": COOL, "greenhouse-2": COOL, "greenhouse-3": COOL}, ago=0.5)
    again(fleet_monitor)
    rows = series(fleet_monitor)
    assert rows["greenhouse-2"].status == "ok"
    resolved = Notification.objects.filter(monitor=fleet_monitor, event="resolved")
    assert {n.series_key for n in resolved} == {"device=greenhouse-2"}
    assert not Incident.objects.filter(monitor=fleet_monitor, resolved_at=None).exists()


@pytest.mark.django_db
def test_pending_and_recovery_count_per_series(fleet_monitor, influx_db):
    Monitor.objects.filter(pk=fleet_monitor.pk).update(pending_for=2, recover_after=2)
    Monitor.objects.filter(pk=fleet_monitor.pk).update(window=timedelta(seconds=2))
    write(influx_db, {"a": HOT, "b": COOL}, ago=0.2)
    tick()
    assert {d: s.status for d, s in series(fleet_monitor).items()} == {"a": "pending", "b": "ok"}

    write(influx_db, {"a": HOT, "b": HOT}, ago=0.2)
    again(fleet_monitor)
    assert {d: s.status for d, s in series(fleet_monitor).items()} == {
        "a": "firing",
        "b": "pending",
    }

    time.sleep(2)
    write(influx_db, {"a": COOL, "b": COOL}, ago=0.2)
    again(fleet_monitor)
    rows = series(fleet_monitor)
    assert rows["a"].status == "firing"
    assert rows["b"].status == "ok"
    again(fleet_monitor)
    assert series(fleet_monitor)["a"].status == "ok"
    events = list(
        Notification.objects.filter(monitor=fleet_monitor)
        .order_by("created_at")
        .values_list("event", "series_key")
        .distinct()
    )
    assert sorted(set(events)) == [("fired", "device=a"), ("resolved", "device=a")]


@pytest.mark.django_db
def test_series_with_the_same_value_are_judged_by_their_own_state(fleet_monitor, influx_db):
    """One tick judges each distinct value once, per firing or not: with a recovery threshold
    (fire above 35, resolve below 30) the same 33 keeps a firing series firing and leaves a
    quiet one OK."""
    Monitor.objects.filter(pk=fleet_monitor.pk).update(recovery=30, window=timedelta(seconds=2))
    write(influx_db, {"a": HOT, "b": COOL}, ago=0.2)
    tick()
    time.sleep(2)
    write(influx_db, {"a": 33.0, "b": 33.0, "c": 33.0}, ago=0.2)
    again(fleet_monitor)

    rows = series(fleet_monitor)
    assert {d: s.status for d, s in rows.items()} == {"a": "firing", "b": "ok", "c": "ok"}
    assert rows["a"].status_reason == "33 has not recovered past 30 (critical 35)"
    assert rows["c"].status_reason == "33 is within limits (critical above 35)"  # a new one


@pytest.mark.django_db
def test_one_flapping_series_is_quieted_while_the_others_still_notify(fleet_monitor, influx_db):
    Monitor.objects.filter(pk=fleet_monitor.pk).update(
        flap_detection=True, aggregation="last", window=timedelta(minutes=5)
    )
    for n in range(24):
        write(influx_db, {"flappy": HOT if n % 2 else COOL, "steady": COOL}, ago=0)
        again(fleet_monitor)
    rows = series(fleet_monitor)
    assert rows["flappy"].state["flapping"] is True
    assert rows["steady"].state["flapping"] is False
    flapping = Notification.objects.filter(monitor=fleet_monitor, event="flapping_started")
    assert {n.series_key for n in flapping} == {"device=flappy"}
    write(influx_db, {"flappy": COOL, "steady": HOT}, ago=0)
    again(fleet_monitor)
    fired = Notification.objects.filter(
        monitor=fleet_monitor, event="fired", series_key="device=steady"
    )
    assert fired.count() == 2


@pytest.mark.django_db
def test_a_storm_of_500_series_is_one_message_per_channel_listing_them(fleet_monitor, influx_db):
    write(influx_db, {f"d{n:03}": COOL for n in range(500)})
    tick()
    assert Notification.objects.filter(monitor=fleet_monitor).count() == 0

    write(influx_db, {f"d{n:03}": HOT for n in range(500)}, ago=0.5)
    [result] = again(fleet_monitor)

    assert result.storms == 1
    assert Incident.objects.filter(monitor=fleet_monitor, resolved_at=None).count() == 500
    storm = list(Notification.objects.filter(monitor=fleet_monitor))
    assert len(storm) == 2  # one per channel
    assert {n.event for n in storm} == {"series_changed"}
    payload = storm[0].payload
    assert payload["reason"] == "500 series changed state: 500 fired"
    assert payload["changes_total"] == 500
    assert payload["time_zone"] == "UTC"  # an owner without a profile
    assert sorted(c["series"]["label"] for c in payload["changes"]) == [
        f"d{n:03}" for n in range(500)
    ]
    assert {c["event"] for c in payload["changes"]} == {"fired"}
    assert all(c["incident_id"] for c in payload["changes"])
    assert storm[0].idempotency_key != storm[1].idempotency_key


@pytest.mark.django_db
def test_a_storm_threshold_above_the_count_sends_one_message_per_series(fleet_monitor, influx_db):
    Monitor.objects.filter(pk=fleet_monitor.pk).update(storm_threshold=500)
    fleet_monitor.channels.set([ChannelFactory(owner=fleet_monitor.owner)])
    write(influx_db, {f"d{n:03}": HOT for n in range(500)})
    [result] = tick()
    assert result.storms == 0
    fired = Notification.objects.filter(monitor=fleet_monitor, event="fired")
    assert fired.count() == 500
    assert len({n.series_key for n in fired}) == 500


def _storm_after_a_crash(fleet_monitor, influx_db, monkeypatch):
    """500 settled series jump; the tick's first delivery loses its connection after every
    outbox row is written, before the commit; then the task is delivered again, then once
    more. Returns the keys the lost attempt had written and the two redeliveries' results."""
    write(influx_db, {f"d{n:03}": COOL for n in range(500)})
    tick()
    write(influx_db, {f"d{n:03}": HOT for n in range(500)}, ago=0.5)
    due_again(fleet_monitor)
    [claimed] = dispatch.claim_batches(now=timezone.now(), size=500)
    items = [(c.monitor_id, c.due_at) for c in claimed]
    lost_keys: list[str] = []

    def connection_lost(*args, **kwargs):  # in the tick's transaction, after the outbox rows
        rows = Notification.objects.filter(monitor=fleet_monitor)
        lost_keys.extend(rows.values_list("idempotency_key", flat=True))
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(live, "changed_on_commit", connection_lost)
    with pytest.raises(OperationalError):
        pipeline.evaluate_batch(items)
    monkeypatch.undo()
    assert not Incident.objects.filter(monitor=fleet_monitor).exists()  # rolled back
    assert not Notification.objects.filter(monitor=fleet_monitor).exists()
    assert {s.status for s in series(fleet_monitor).values()} == {"ok"}
    return lost_keys, pipeline.evaluate_batch(items), pipeline.evaluate_batch(items)


@pytest.mark.django_db
def test_a_storm_redelivered_after_a_crash_before_its_commit_is_written_once(
    fleet_monitor, influx_db, monkeypatch
):
    lost_keys, redelivered, again_redelivered = _storm_after_a_crash(
        fleet_monitor, influx_db, monkeypatch
    )

    assert len(lost_keys) == 2  # one message per channel
    assert redelivered.applied == 1
    assert redelivered.storms == 1
    assert again_redelivered.applied == 0
    assert again_redelivered.notifications == []
    storm = Notification.objects.filter(monitor=fleet_monitor)
    assert sorted(storm.values_list("idempotency_key", flat=True)) == sorted(lost_keys)
    assert sorted(str(pk) for pk in storm.values_list("pk", flat=True)) == sorted(
        redelivered.notifications
    )
    assert Incident.objects.filter(monitor=fleet_monitor, resolved_at=None).count() == 500
    assert {s.status for s in series(fleet_monitor).values()} == {"firing"}


@pytest.mark.django_db
def test_a_storm_of_per_series_messages_redelivered_after_a_crash_keeps_its_keys(
    fleet_monitor, influx_db, monkeypatch
):
    Monitor.objects.filter(pk=fleet_monitor.pk).update(storm_threshold=500)
    fleet_monitor.channels.set([ChannelFactory(owner=fleet_monitor.owner)])
    lost_keys, redelivered, again_redelivered = _storm_after_a_crash(
        fleet_monitor, influx_db, monkeypatch
    )

    assert len(lost_keys) == 500
    assert redelivered.storms == 0
    assert len(redelivered.notifications) == 500
    assert again_redelivered.applied == 0
    assert again_redelivered.notifications == []
    fired = Notification.objects.filter(monitor=fleet_monitor)
    assert sorted(fired.values_list("idempotency_key", flat=True)) == sorted(lost_keys)
    assert {n.event for n in fired} == {"fired"}
    incidents = {i.series_key: i.pk for i in Incident.objects.filter(monitor=fleet_monitor)}
    assert len(incidents) == 500
    for n in fired:  # each names its series and that series' incident
        assert n.incident_id == incidents[n.series_key] == n.payload["incident"]["id"]
        assert n.status == "pending"
        assert n.attempts == 0
        assert n.next_attempt_at is not None


@pytest.mark.django_db
def test_a_storm_tick_that_fails_mid_write_is_an_error_and_the_next_tick_applies(
    fleet_monitor, influx_db, monkeypatch
):
    write(influx_db, {f"d{n:03}": COOL for n in range(500)})
    tick()
    write(influx_db, {f"d{n:03}": HOT for n in range(500)}, ago=0.5)

    def outbox_broken(*args, **kwargs):
        raise RuntimeError("the outbox could not be written")

    monkeypatch.setattr(fleet_outbox, "insert_outbox", outbox_broken)
    [failed] = again(fleet_monitor)
    monkeypatch.undo()

    assert failed.broken == 1  # written: the monitor says it could not be evaluated
    fleet_monitor.refresh_from_db()
    assert fleet_monitor.status == Status.ERROR
    assert not Incident.objects.filter(monitor=fleet_monitor).exists()
    [result] = again(fleet_monitor)
    assert result.applied == 1
    assert result.storms == 1
    assert Incident.objects.filter(monitor=fleet_monitor, resolved_at=None).count() == 500
    assert Notification.objects.filter(monitor=fleet_monitor).count() == 2


@pytest.mark.django_db
def test_a_silenced_series_changes_state_quietly_and_the_others_notify(
    fleet_monitor, influx_db, owner
):
    Silence.objects.create(
        owner=owner,
        monitor=fleet_monitor,
        series_key="device=a",
        ends_at=timezone.now() + timedelta(hours=1),
    )
    write(influx_db, {"a": HOT, "b": HOT})
    tick()
    rows = series(fleet_monitor)
    assert rows["a"].status == rows["b"].status == "firing"
    told = Notification.objects.filter(monitor=fleet_monitor)
    assert {n.series_key for n in told} == {"device=b"}


@pytest.mark.django_db
def test_pausing_ends_every_series_incident_and_tells_each_channel_once_per_series(
    fleet_monitor, influx_db
):
    write(influx_db, {"a": HOT, "b": HOT, "c": COOL})
    tick()
    services.monitor_set_enabled(monitor=fleet_monitor, enabled=False)

    assert not Incident.objects.filter(monitor=fleet_monitor, resolved_at=None).exists()
    paused = Notification.objects.filter(monitor=fleet_monitor, event="paused")
    assert sorted(n.series_key for n in paused) == ["device=a"] * 2 + ["device=b"] * 2
    assert not SeriesState.objects.filter(monitor=fleet_monitor).exists()
    fleet_monitor.refresh_from_db()
    assert fleet_monitor.status == Status.PAUSED


@pytest.mark.django_db
def test_a_filter_of_values_and_patterns_selects_series(fleet_monitor, influx_db):
    Monitor.objects.filter(pk=fleet_monitor.pk).update(
        series_filter={"device": ["greenhouse-*", "shed"]}
    )
    write(influx_db, {"greenhouse-1": COOL, "greenhouse-22": HOT, "shed": COOL, "barn": HOT})
    tick()
    assert set(series(fleet_monitor)) == {"greenhouse-1", "greenhouse-22", "shed"}

    Monitor.objects.filter(pk=fleet_monitor.pk).update(series_filter={"device": ["barn"]})
    SeriesState.objects.filter(monitor=fleet_monitor).delete()
    again(fleet_monitor)
    assert set(series(fleet_monitor)) == {"barn"}


@pytest.mark.django_db
def test_series_past_the_limit_are_left_unwatched_and_the_status_says_so(
    fleet_monitor, influx_db, settings
):
    settings.FLEET_MAX_SERIES = 2
    write(influx_db, {"a": COOL, "b": COOL, "c": HOT})
    tick()
    assert set(series(fleet_monitor)) == {"a", "b"}
    fleet_monitor.refresh_from_db()
    assert fleet_monitor.status_reason == (
        "all 2 series OK; 1 more series match, past the limit of 2: they are not watched"
    )


@pytest.mark.django_db
def test_a_fleet_monitor_and_single_series_monitors_share_a_batch(fleet_monitor, influx_db):
    single = MonitorFactory(
        owner=fleet_monitor.owner,
        source=fleet_monitor.source,
        tags={"device": "a"},
        aggregation="max",
        window=timedelta(minutes=1),
        critical=35,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )
    write(influx_db, {"a": HOT, "b": COOL})
    [result] = tick()
    assert result.applied == 2
    assert result.series == 2
    single.refresh_from_db()
    assert single.status == Status.FIRING
    assert single.last_value == HOT
    assert single.incidents.get().series_key == ""
    assert series(fleet_monitor)["a"].status == "firing"


@pytest.mark.django_db
def test_a_failing_query_errors_every_series_under_the_error_policy(fleet_monitor, influx_db):
    write(influx_db, {"a": COOL, "b": COOL})
    tick()
    influx_db.client.query(
        f"DROP DATABASE {influx.quote_ident(influx_db.database)}",
        database=influx_db.database,
        method="POST",
    )
    fleet_monitor.source.url = "http://127.0.0.1:9"
    fleet_monitor.source.save()
    again(fleet_monitor)
    assert {s.status for s in series(fleet_monitor).values()} == {"error"}
    fleet_monitor.refresh_from_db()
    assert fleet_monitor.status == Status.ERROR


def a_quarter_hour(influx_db) -> None:
    """Every 30 s for 15 min: ``hot-once`` at 41 from 6 to 4 min ago, ``always-hot`` at 41,
    ``cool`` at 20 (one request)."""
    now_ms = int(time.time() * 1000)
    lines = []
    for ago in range(5, 900, 30):
        values = {"hot-once": HOT if 240 <= ago < 360 else COOL, "always-hot": HOT, "cool": COOL}
        lines += [
            influx.line(
                "gro01", {"temperature": v}, tags={"device": d}, timestamp_ms=now_ms - ago * 1000
            )
            for d, v in values.items()
        ]
    influx_db.client.write(lines, database=influx_db.database)


@pytest.mark.django_db
def test_the_backtest_replays_each_series_and_agrees_with_live_evaluation(fleet_monitor, influx_db):
    from monitors.evaluate import backtest

    a_quarter_hour(influx_db)
    end = timezone.now()
    result = backtest.backtest(fleet_monitor, hours=0.2, end=end).as_dict()

    assert result["error"] is None
    assert result["summary"]["text"] == "would have fired twice across 2 series (of 3 series)"
    by_key = {s["key"]: s for s in result["per_series"]}
    assert by_key["device=hot-once"]["fired"] == 1
    assert by_key["device=hot-once"]["resolved"] == 1
    assert by_key["device=always-hot"]["fired"] == 1
    assert by_key["device=cool"]["fired"] == 0
    assert result["per_series"][-1]["key"] == "device=cool"  # the quiet ones last

    one = backtest.backtest(fleet_monitor, hours=0.2, end=end, series_key="device=hot-once")
    assert [e["kind"] for e in one.as_dict()["events"]] == ["fired", "resolved"]

    tick(end)
    live = series(fleet_monitor)
    for device in ("hot-once", "always-hot", "cool"):
        replayed = backtest.backtest(
            fleet_monitor, hours=0.2, end=end, series_key=f"device={device}"
        ).as_dict()
        last = replayed["evaluations"][-1]
        assert live[device].last_value == last["value"]
        assert live[device].status == ("firing" if device == "always-hot" else "ok")
        assert last["status"] == live[device].status


@pytest.mark.django_db
def test_a_storm_reads_as_one_list_in_email_slack_and_sms_words(fleet_monitor, influx_db):
    from monitors.notify import messages

    Monitor.objects.filter(pk=fleet_monitor.pk).update(storm_threshold=2)
    write(influx_db, {"a": HOT, "b": HOT, "c": HOT, "d": COOL})
    tick()
    payload = Notification.objects.get(
        monitor=fleet_monitor, channel=fleet_monitor.channels.first()
    ).payload

    assert messages.subject(payload) == f"[MANY SERIES] {fleet_monitor.name}"
    facts = dict(messages.facts(payload))
    assert facts["What"] == "3 series changed state: 3 fired"
    assert facts["Series"].splitlines() == [
        "a: FIRING (41 is above 35 (critical))",
        "b: FIRING (41 is above 35 (critical))",
        "c: FIRING (41 is above 35 (critical))",
    ]


@pytest.mark.django_db
def test_a_series_message_names_it_in_the_subject(fleet_monitor, influx_db):
    from monitors.notify import messages

    write(influx_db, {"greenhouse-3": HOT})
    tick()
    payload = Notification.objects.get(
        monitor=fleet_monitor, channel=fleet_monitor.channels.first()
    ).payload
    assert messages.subject(payload) == f"[FIRING] {fleet_monitor.name} — greenhouse-3"
    assert ("Series", "device=greenhouse-3") in messages.facts(payload)


@pytest.mark.django_db
def test_testing_a_fleet_monitor_answers_per_series_and_writes_nothing(
    fleet_monitor, influx_db, api_client_for, owner
):
    write(influx_db, {"a": HOT, "b": COOL})
    response = api_client_for(owner).post(f"/monitors/{fleet_monitor.pk}/test")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "firing"
    assert body["reason"] == "1 of 2 series firing: a"
    assert [s["key"] for s in body["series"]] == ["device=a", "device=b"]
    assert body["would_notify"] == ["fired a"]
    assert "GROUP BY" in body["query"]
    assert not SeriesState.objects.filter(monitor=fleet_monitor).exists()


@pytest.mark.django_db
def test_a_series_changing_state_moves_the_owners_live_pages_and_a_steady_tick_does_not(
    fleet_monitor, influx_db, django_capture_on_commit_callbacks
):
    from monitors import live

    write(influx_db, {"greenhouse-1": COOL, "greenhouse-2": COOL})
    with django_capture_on_commit_callbacks(execute=True):
        tick()
    first = live.version(fleet_monitor.owner_id)

    write(influx_db, {"greenhouse-2": HOT}, ago=0.5)
    with django_capture_on_commit_callbacks(execute=True):
        again(fleet_monitor)
    fired = live.version(fleet_monitor.owner_id)

    with django_capture_on_commit_callbacks(execute=True):
        again(fleet_monitor)  # greenhouse-2 still firing, greenhouse-1 still ok: nothing new

    assert first is not None
    assert fired == first + 1  # the grid and the dashboard card show greenhouse-2 firing
    assert live.version(fleet_monitor.owner_id) == fired
