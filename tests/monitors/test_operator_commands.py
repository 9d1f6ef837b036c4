"""The operator commands (``manage.py …``) on real Postgres, Redis, a real loopback webhook
receiver and a real Celery worker."""

from __future__ import annotations

import io
import re
import subprocess
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.gating import comp
from devices.ingest import queue as ingest_queue
from growalert.health import heartbeat
from monitors import services
from monitors.evaluate import arrival
from monitors.models import Monitor, Notification, Schedule
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory
from tests.notify.conftest import Receiver, eager, receiver  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def dead_letter(channel, **fields) -> Notification:
    return Notification.objects.create(
        channel=channel,
        monitor=MonitorFactory(owner=channel.owner),
        event=Notification.Event.FIRED,
        idempotency_key=f"ops:{uuid.uuid4().hex}",
        payload={"version": 1, "event": "fired"},
        status=Notification.DeliveryStatus.FAILED,
        attempts=4,
        last_error="410 Gone",
        **fields,
    )


def test_overdue_lists_late_and_unscheduled_monitors_with_their_reason():
    served, unpaid = UserFactory(username="served"), UserFactory(username="unpaid")
    comp(served)
    late = MonitorFactory(owner=served)
    gated = MonitorFactory(owner=unpaid)
    broken = MonitorFactory(owner=served, status="error", status_reason="source unreachable")
    unscheduled = MonitorFactory(owner=served)
    on_time = MonitorFactory(owner=served)
    past = timezone.now() - timedelta(minutes=10)
    Schedule.objects.filter(monitor_id__in=[late.pk, gated.pk, broken.pk]).update(next_due_at=past)
    Schedule.objects.filter(monitor_id=on_time.pk).update(
        next_due_at=timezone.now() + timedelta(minutes=1)
    )
    Schedule.objects.filter(monitor_id=unscheduled.pk).delete()

    lines = {int(line.split()[0]): line for line in run("overdue").splitlines()[1:-1]}

    assert set(lines) == {late.pk, gated.pk, broken.pk, unscheduled.pk}
    assert "waiting for the dispatcher" in lines[late.pk]
    assert "600 s" in lines[late.pk] or "599 s" in lines[late.pk]
    assert "billing" in lines[gated.pk]
    assert "in error: source unreachable" in lines[broken.pk]
    assert "no schedule row" in lines[unscheduled.pk]
    assert " never " in lines[unscheduled.pk]
    # an hour late: none of the scheduled ones; the unscheduled one always shows
    assert [
        int(line.split()[0]) for line in run("overdue", "--late", "3600").splitlines()[1:-1]
    ] == [unscheduled.pk]
    Schedule.objects.filter(monitor_id__in=[late.pk, gated.pk, broken.pk]).delete()
    Monitor.objects.filter(pk=unscheduled.pk).update(enabled=False)
    Monitor.objects.filter(pk__in=[late.pk, gated.pk, broken.pk]).update(enabled=False)
    assert run("overdue").startswith("no monitor is overdue")


def test_retry_deliveries_requeues_the_dead_letters_that_match(
    receiver,  # noqa: F811
    eager,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    alices = ChannelFactory(owner=alice, config={"url": receiver.url})
    bobs = ChannelFactory(owner=bob, config={"url": receiver.url})
    mine, old, theirs = dead_letter(alices), dead_letter(alices), dead_letter(bobs)
    Notification.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    assert run("retry_deliveries", "--account", "alice", "--dry-run").startswith(
        "2 failed deliveries match"
    )
    with django_capture_on_commit_callbacks(execute=True):
        output = run("retry_deliveries", "--account", "alice", "--since-hours", "24")

    assert output.strip() == "queued 1 deliveries"
    assert Notification.objects.get(pk=mine.pk).status == "sent"
    assert Notification.objects.get(pk=old.pk).status == "failed"
    assert Notification.objects.get(pk=theirs.pk).status == "failed"
    assert [hit.headers["Growalert-Idempotency-Key"] for hit in receiver.accepted] == [
        mine.idempotency_key
    ]
    bobs.enabled = False
    bobs.save()
    refused = run("retry_deliveries", "--channel", str(bobs.pk))
    assert f"channel {bobs.pk} refused: the channel is disabled" in refused
    with pytest.raises(CommandError, match="no account"):
        run("retry_deliveries", "--account", "nobody")


def test_resend_notification_sends_a_sent_one_again(receiver):  # noqa: F811
    channel = ChannelFactory(config={"url": receiver.url})
    sent = dead_letter(channel)
    Notification.objects.filter(pk=sent.pk).update(status="sent", sent_at=timezone.now())

    output = run("resend_notification", str(sent.pk), "--now")

    assert f"notification {sent.pk}: sent (sent)" in output
    assert receiver.accepted[0].headers["Growalert-Idempotency-Key"] == sent.idempotency_key
    with pytest.raises(CommandError, match="no notification"):
        run("resend_notification", "not-a-uuid")
    with pytest.raises(CommandError, match="no notification"):
        run("resend_notification", str(uuid.uuid4()))


def test_pause_and_resume_account():
    owner = UserFactory(username="grower")
    monitors = [MonitorFactory(owner=owner) for _ in range(3)]
    other = MonitorFactory()

    assert "3 monitors would be paused" in run("pause_account", "grower", "--dry-run")
    assert Monitor.objects.filter(owner=owner, enabled=True).count() == 3
    output = run("pause_account", owner.email)

    assert "grower: 3 monitors paused" in output
    assert set(Monitor.objects.filter(owner=owner).values_list("status", flat=True)) == {"paused"}
    assert not Schedule.objects.filter(monitor_id__in=[m.pk for m in monitors]).exists()
    assert Monitor.objects.get(pk=other.pk).enabled
    assert "3 monitors resumed" in run("resume_account", str(owner.pk))
    assert Monitor.objects.filter(owner=owner, enabled=True).count() == 3
    assert Schedule.objects.filter(monitor_id__in=[m.pk for m in monitors]).count() == 3
    with pytest.raises(CommandError, match="no account"):
        run("pause_account", "nobody")


def test_monitor_evaluations_shows_state_and_recent_notifications():
    channel = ChannelFactory()
    notification = dead_letter(channel)
    monitor = notification.monitor
    assert monitor is not None
    Monitor.objects.filter(pk=monitor.pk).update(
        status="firing", status_reason="42.5 is above 30", last_value=42.5
    )

    output = run("monitor_evaluations", str(monitor.pk))

    assert f"monitor {monitor.pk}" in output
    assert "status: firing" in output
    assert "status reason: 42.5 is above 30" in output
    assert "last value: 42.5" in output
    assert f"{notification.pk}: fired via webhook channel {channel.pk}: failed" in output
    assert "(410 Gone)" in output
    with pytest.raises(CommandError, match="no monitor"):
        run("monitor_evaluations", "999999999")


def _worker_started(process: subprocess.Popen[str]) -> None:
    """The session's worker may still be starting: wait until it answers a ping."""
    from growalert.celery import app

    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=1):
        assert process.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the worker never answered"


def test_check_deployment_sees_services_beat_workers_and_queues(
    celery_worker_process: subprocess.Popen[str],
):
    _worker_started(celery_worker_process)
    heartbeat.record()
    ingest_queue.client().delete(ingest_queue.STREAM)  # what other tests left unflushed
    heard, silent = SourceFactory(), SourceFactory()
    for source in (heard, silent):
        services.source_push_enable(source=source)
    arrival._marked.clear()
    arrival.mark_pushing(heard.pk)
    out, err = io.StringIO(), io.StringIO()

    try:
        call_command("check_deployment", "--timeout", "5", stdout=out, stderr=err)
    except SystemExit:
        raise AssertionError(out.getvalue() + err.getvalue()) from None

    text = out.getvalue()
    for name in ("postgres", "redis", "influxdb"):
        assert f"{name:<9} ok" in text
    assert "beat      ok" in text
    assert "workers   1 answered" in text or "workers   2 answered" in text
    assert "queue     evaluation:" in text
    assert "queue     delivery:" in text
    assert "ingest    0 batches in the stream" in text
    assert "ingest    flushers: oldest unacknowledged 0.0 s ago, 0 read and pending" in text
    assert (
        f"pushing   1 of 2 pushing sources heard from in the last 15 s; silent: {silent.pk}" in text
    )
    assert text.strip().endswith("deployment ok")
    assert err.getvalue() == ""


def test_check_deployment_fails_without_a_heartbeat(celery_worker_process):
    _worker_started(celery_worker_process)
    heartbeat._client().delete(heartbeat.KEY)
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(SystemExit) as exited:
        call_command("check_deployment", "--timeout", "3", stdout=out, stderr=err)

    assert exited.value.code == 1
    assert "beat      stale" in out.getvalue()
    assert "PROBLEM: no recent heartbeat" in err.getvalue()


def test_check_deployment_fails_when_device_readings_wait_for_the_flusher(
    celery_worker_process, monkeypatch
):
    """A batch accepted 31 s ago and never written (no flusher running): a problem, named."""
    _worker_started(celery_worker_process)
    heartbeat.record()
    client = ingest_queue.client()
    client.delete(ingest_queue.STREAM)
    client.xadd(ingest_queue.STREAM, {"db": "x"}, id=f"{int(time.time() * 1000) - 31_000}-0")
    out, err = io.StringIO(), io.StringIO()
    try:
        with pytest.raises(SystemExit) as exited:
            call_command("check_deployment", "--timeout", "3", stdout=out, stderr=err)
    finally:
        client.delete(ingest_queue.STREAM)

    assert exited.value.code == 1
    assert "ingest    1 batches in the stream" in out.getvalue()
    behind = r"PROBLEM: ingest flushers (3\d|4\d) s behind \(is manage.py ingest_flusher"
    assert re.search(behind, err.getvalue())
