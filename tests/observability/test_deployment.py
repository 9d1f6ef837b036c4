"""Operations settings on, in a real deployment (tests/observability/conftest.py): one trace
from a web request through the Celery task it sends, JSON log lines carrying the request and
task ids, and error reports for a view and a task, without the secrets they were handed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from accounts.services import api_token_create
from monitors.models import Notification
from tests.factories import ChannelFactory, MonitorFactory, UserFactory
from tests.notify.conftest import Receiver
from tests.observability.conftest import Stack, json_lines, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

DELIVER = "monitors.notify.tasks.deliver_notification"
PLANTED_COOKIE = "sessionid=cookiePLANTED42; csrftoken=csrfPLANTED42"


def _dead_letter(receiver: Receiver) -> tuple[Any, Notification, str]:
    owner = UserFactory()
    _, token = api_token_create(owner=owner, name="ops")
    channel = ChannelFactory(owner=owner, config={"url": receiver.url})
    notification = Notification.objects.create(
        channel=channel,
        monitor=MonitorFactory(owner=owner),
        event=Notification.Event.FIRED,
        idempotency_key=f"ops:{uuid.uuid4().hex}",
        payload={"version": 1, "event": "fired"},
        status=Notification.DeliveryStatus.FAILED,
        attempts=3,
        last_error="410 Gone",
    )
    return channel, notification, token


def test_a_request_and_the_task_it_sends_are_one_trace_and_their_logs_say_so(stack: Stack):
    receiver = Receiver()
    try:
        channel, notification, token = _dead_letter(receiver)
        request_id = f"req-{uuid.uuid4().hex}"
        response = httpx.post(
            f"{stack.url}/channels/{channel.pk}/dead-letters/retry",
            json={},
            headers={"Authorization": f"Token {token}", "X-Request-ID": request_id},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        assert response.headers["X-Request-ID"] == request_id
        wait_for(lambda: receiver.accepted, 30, "the webhook")
    finally:
        receiver.close()
    notification.refresh_from_db()
    assert notification.status == "sent"

    # --- the trace: server span -> apply_async -> run -> the webhook's POST ---------------
    def spans_arrived() -> list[Any]:
        runs = [s for s in stack.otlp.spans if s.name == f"run/{DELIVER}"]
        posts = [s for s in stack.otlp.spans if s.service == "growalert-worker" and s.kind == 3]
        return runs if runs and posts else []

    run = wait_for(spans_arrived, 20, "the task's spans")[0]
    trace = [s for s in stack.otlp.spans if s.trace_id == run.trace_id]
    by_id = {s.span_id: s for s in trace}
    server = [s for s in trace if s.service == "growalert-web" and s.kind == 2]  # SERVER
    assert len(server) == 1, [(s.service, s.name) for s in trace]
    assert server[0].name.startswith("POST ")
    assert "channels/" in server[0].name
    assert "dead-letters/retry" in server[0].name
    assert server[0].parent_span_id == ""  # the request is the root
    publish = by_id[run.parent_span_id]  # the parent link across the queue
    assert publish.name == f"apply_async/{DELIVER}"
    assert publish.service == "growalert-web"
    ancestor = publish
    while ancestor.parent_span_id:
        ancestor = by_id[ancestor.parent_span_id]
    assert ancestor is server[0]
    assert run.service == "growalert-worker"
    sql = [s for s in trace if s.attributes.get("db.system") == "postgresql"]
    assert {s.service for s in sql} == {"growalert-web", "growalert-worker"}
    webhook = [s for s in trace if s.service == "growalert-worker" and s.kind == 3]  # CLIENT
    assert any(s.name == "POST" for s in webhook)
    for span in webhook:
        for key in ("url.full", "http.url"):
            if key in span.attributes:
                assert (
                    span.attributes[key] == f"http://127.0.0.1:{receiver.server.server_address[1]}"
                )
    everything = b"".join(stack.otlp.raw)
    assert token.encode() not in everything  # the Authorization header is not recorded
    assert receiver.url.encode() not in everything  # nor the webhook's path

    # --- the logs: JSON lines with the request id, in the web and in the worker -----------
    worker_lines = wait_for(
        lambda: [
            line
            for line in json_lines(stack.worker_log)
            if line.get("task_name") == DELIVER and line.get("request_id") == request_id
        ],
        10,
        "the task's log lines",
    )
    succeeded = [line for line in worker_lines if "succeeded" in line["message"]]
    assert succeeded
    assert succeeded[0]["logger"] == "celery.app.trace"
    assert len(succeeded[0]["task_id"]) == 36  # a Celery task id (uuid)
    ours = [line for line in worker_lines if line["logger"] == "monitors.notify.delivery"]
    assert ours[0]["level"] == "INFO"
    assert ours[0]["monitor_id"] == notification.monitor_id
    assert ours[0]["account_id"] == channel.owner_id
    assert ours[0]["task_id"] == succeeded[0]["task_id"]
    assert {"timestamp", "level", "logger", "message"} <= ours[0].keys()

    missing = httpx.get(f"{stack.url}/no-such-page", headers={"X-Request-ID": request_id})
    assert missing.status_code == 404
    web_lines = wait_for(
        lambda: [
            line
            for line in json_lines(stack.web_log)
            if line.get("request_id") == request_id and line["logger"] == "django.request"
        ],
        10,
        "the web's log line",
    )
    assert web_lines[0]["level"] == "WARNING"
    assert "/no-such-page" in web_lines[0]["message"]


def test_the_per_tick_tasks_log_nothing_at_info(stack: Stack):
    """Celery's "received"/"succeeded" lines of the dispatcher (every second) are DEBUG; a
    delivery's stay INFO."""
    from growalert.celery import app

    dispatch = "monitors.tasks.dispatch_due_monitors"
    ticks = [app.send_task(dispatch, queue=stack.queue, routing_key=stack.queue) for _ in range(3)]
    marker = app.send_task(DELIVER, args=[str(uuid.uuid4())], queue=stack.queue)

    def marker_done() -> list[dict[str, Any]]:
        return [
            line
            for line in json_lines(stack.worker_log)
            if line.get("task_id") == marker.id and "succeeded" in line["message"]
        ]

    wait_for(marker_done, 20, "the marker task")  # the solo worker ran the ticks before it
    lines = json_lines(stack.worker_log)
    tick_ids = {tick.id for tick in ticks}
    assert [line for line in lines if line.get("task_id") in tick_ids] == []
    assert [line for line in lines if any(t in line["message"] for t in tick_ids)] == []
    assert [line for line in lines if marker.id in line["message"]]  # received + succeeded


def test_a_request_without_an_id_gets_one_and_a_hostile_one_is_replaced(stack: Stack):
    made = httpx.get(f"{stack.url}/healthz").headers["X-Request-ID"]
    assert len(made) == 32
    planted = 'x"{evil}<script>' * 3
    hostile = httpx.get(f"{stack.url}/healthz", headers={"X-Request-ID": planted})
    assert hostile.headers["X-Request-ID"] != planted
    assert len(hostile.headers["X-Request-ID"]) == 32


SECRETS = (
    "ga_0123456789abcdef0123456789abcdefPLANTED",
    "ingestkeyPLANTED",
    "signaturePLANTED",
    "cookiePLANTED42",
    "csrfPLANTED42",
    "querytokenPLANTED",
    "passwordPLANTED",
    "4242424242424242",
    "slacksecretPLANTED",
    "sk_live_stripePLANTED123",
    "whsec_webhookPLANTED",
)


def test_a_crash_in_a_view_is_reported_without_secrets(stack: Stack):
    before = len(stack.sentry.events)
    response = httpx.post(
        f"{stack.url}/test-crash?token=querytokenPLANTED&page=2",
        headers={
            "Authorization": f"Token {SECRETS[0]}",
            "X-API-Key": "ingestkeyPLANTED",
            "X-Signature": "signaturePLANTED",
            "Cookie": PLANTED_COOKIE,
        },
        data={"password": "passwordPLANTED", "card": "4242424242424242"},
        timeout=30,  # a machine busy with other suites took more than httpx's default 5 s
    )
    assert response.status_code == 500
    events = wait_for(
        lambda: [e for e in stack.sentry.events[before:] if e.get("transaction") == "/test-crash"],
        15,
        "the view's error event",
    )
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["request"]["method"] == "POST"
    assert event["request"]["url"].endswith("/test-crash")
    assert event["request"]["headers"]["Authorization"] == "[Filtered]"
    assert event["contexts"]["trace"]["trace_id"]
    everything = b"".join(stack.sentry.raw).decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in everything, secret


def test_a_crash_in_a_task_is_reported_with_its_name_without_secrets(stack: Stack):
    from growalert.celery import app

    before = len(stack.sentry.events)
    # A batch item whose due time is a leaked token: the task fails on it, unhandled.
    app.send_task(
        "monitors.tasks.evaluate_monitors",
        args=[[[1, SECRETS[0]]]],
        queue=stack.queue,
        routing_key=stack.queue,
    )
    events = wait_for(
        lambda: [
            e
            for e in stack.sentry.events[before:]
            if e.get("transaction") == "monitors.tasks.evaluate_monitors"
        ],
        20,
        "the task's error event",
    )
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "ValueError"
    assert event["extra"]["celery-job"]["task_name"] == "monitors.tasks.evaluate_monitors"
    everything = b"".join(stack.sentry.raw).decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in everything, secret
