"""Three customers on one deployment: whatever one stores never changes what the others'
monitors, notifications or pages do.

alice stores every odd value the API accepts (unicode, quotes and InfluxQL-looking names, the
others' names, huge-but-valid numbers, a global silence, channels, sources on the same InfluxDB
database and measurement); bob and carol keep ordinary monitors. Their API answers are the
same before and after alice's writes, and one dispatcher pass plus the pipeline over all three
evaluates bob's and carol's monitors exactly as if alice did not exist: bob's fires and notifies
his channel, carol's stays OK, alice's silence silences only alice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_token_create
from billing.gating import comp
from monitors.evaluate import dispatch, pipeline
from monitors.models import Monitor, Notification, Status
from tests.factories import UserFactory

HOT, COOL = 41.0, 20.0
# Fields that change with time or evaluation, not with what another customer stores.
VOLATILE = {"last_evaluated_at", "next_due_at", "updated_at", "status_changed_at"}
EVALUATED = frozenset({"last_value", "status_reason", "status"})
READS = ["/monitors", "/sources", "/channels", "/silences", "/incidents"]

ODD_NAMES = [
    "greenhouse",  # the same names bob and carol use
    "Serre n°1 — 温室 🌱",
    'x"; DROP MEASUREMENT gro01; --',
    "\\' OR 1=1 --",
    "ﷺ" * 100,
]
HUGE_NUMBERS = [1e308, -1e308, 1.7976931348623157e308, 5e-324, 2**53 + 1]


def customer(name: str) -> tuple[Any, APIClient]:
    user = UserFactory(username=name)
    comp(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(owner=user, name='t')[1]}")
    return user, client


def ok(response: Any) -> Any:
    assert response.status_code in (200, 201), response.content[:500]
    return response.json()


def setup_ordinary(client: APIClient, influx_db: Any, device: str) -> dict[str, Any]:
    source = ok(
        client.post(
            "/sources",
            {"name": "greenhouse", "url": influx_db.client.url, "database": influx_db.database},
            format="json",
        )
    )
    channel = ok(
        client.post(
            "/channels",
            {"name": "ops", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}},
            format="json",
        )
    )
    monitor = ok(
        client.post(
            "/monitors",
            {
                "name": "greenhouse",
                "source": source["id"],
                "measurement": "gro01",
                "field": "temperature",
                "tags": {"device": device},
                "aggregation": "max",
                "window": "60",
                "interval": "10",
                "comparator": "above",
                "critical": 35,
                "flap_detection": False,
                "channels": [channel["id"]],
            },
            format="json",
        )
    )
    return {"source": source, "channel": channel, "monitor": monitor}


def answers(client: APIClient, *, ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
    def stable(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: stable(v) for k, v in value.items() if k not in VOLATILE | ignore}
        if isinstance(value, list):
            return [stable(v) for v in value]
        return value

    return {path: stable(ok(client.get(path))) for path in READS}


def store_everything_odd(client: APIClient, influx_db: Any, bob_monitor: dict[str, Any]) -> int:
    """alice's writes; returns how many the API accepted."""
    accepted = 0

    def post(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal accepted
        response = client.post(path, body, format="json")
        assert response.status_code in (201, 400), (path, response.status_code, response.content)
        accepted += response.status_code == 201
        return response.json() if response.status_code == 201 else None

    sources = [
        post(
            "/sources",
            {
                "name": name,
                "url": influx_db.client.url,
                "database": influx_db.database if i % 2 else name,
                "timeout_seconds": 60,
            },
        )
        for i, name in enumerate(ODD_NAMES)
    ]
    channels = [
        post("/channels", {"name": name[:100], "kind": "webhook", "config": {"url": url}})
        for name, url in zip(
            ODD_NAMES, ["http://127.0.0.1:9/" + "ü" * 50, "http://127.0.0.1:9/?q=%00"], strict=False
        )
    ]
    usable = [s for s in sources if s is not None]
    assert usable, "the API accepted none of alice's sources"
    for i, number in enumerate(HUGE_NUMBERS):
        for name in ODD_NAMES:
            post(
                "/monitors",
                {
                    "name": name,
                    "source": usable[i % len(usable)]["id"],
                    "measurement": "gro01" if i % 2 else name,
                    "field": "temperature",
                    "tags": {"device": "bob-1"} if i == 0 else {name[:50]: name[:50]},
                    "critical": number,
                    "interval": "10",
                    "window": "604800",
                    "pending_for": 100,
                    "recover_after": 100,
                    "channels": [c["id"] for c in channels if c is not None],
                },
            )
    far = "9999-12-31T00:00:00Z"
    post("/silences", {"ends_at": far, "reason": "🌱" * 300})  # alice's monitors, all of them
    # bob's monitor id is not alice's to silence: refused as "does not exist".
    response = client.post(
        "/silences", {"ends_at": far, "monitor": bob_monitor["id"]}, format="json"
    )
    assert response.status_code == 400
    assert "monitor" in response.json()
    return accepted


@pytest.mark.django_db
def test_what_one_customer_stores_never_changes_the_others(influx_db, settings) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    alice, alice_api = customer("alice")
    bob, bob_api = customer("bob")
    carol, carol_api = customer("carol")
    bobs = setup_ordinary(bob_api, influx_db, "bob-1")
    carols = setup_ordinary(carol_api, influx_db, "carol-1")
    before = {"bob": answers(bob_api), "carol": answers(carol_api)}
    carol_unevaluated = answers(carol_api, ignore=EVALUATED)

    accepted = store_everything_odd(alice_api, influx_db, bobs["monitor"])

    assert accepted >= 10
    assert {"bob": answers(bob_api), "carol": answers(carol_api)} == before

    influx_db.write("gro01", "temperature", [(5, HOT)], {"device": "bob-1"})
    influx_db.write("gro01", "temperature", [(5, COOL)], {"device": "carol-1"})
    # past every new monitor's first due time (spread over its first minute)
    now = timezone.now() + dispatch.FIRST_DUE_SPREAD + timedelta(seconds=1)
    results = [
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])
        for batch in dispatch.claim_batches(now=now, size=500)
    ]

    every_monitor = Monitor.objects.filter(owner__in=[alice, bob, carol], enabled=True).count()
    assert sum(r.applied for r in results) == every_monitor
    bob_monitor = Monitor.objects.get(pk=bobs["monitor"]["id"])
    carol_monitor = Monitor.objects.get(pk=carols["monitor"]["id"])
    assert bob_monitor.status == Status.FIRING, bob_monitor.status_reason
    assert bob_monitor.last_value == HOT
    assert carol_monitor.status == Status.OK, carol_monitor.status_reason
    assert carol_monitor.last_value == COOL
    # bob is notified on his channel only; nothing of alice's reaches bob or carol.
    bob_notes = Notification.objects.filter(monitor=bob_monitor)
    assert {n.channel_id for n in bob_notes} == {bobs["channel"]["id"]}
    assert bob_notes.filter(event="fired").count() == 1
    assert not Notification.objects.filter(monitor=carol_monitor).exists()
    foreign = Notification.objects.filter(channel__owner__in=[bob, carol]).exclude(
        monitor__owner=bob
    )
    assert not foreign.exists()
    # alice's monitors were evaluated too, and her silence kept every one of hers quiet.
    assert not Monitor.objects.filter(owner=alice, last_evaluated_at=None).exists()
    assert not Notification.objects.filter(monitor__owner=alice).exists()

    # bob's and carol's answers: only their own monitors' evaluation changed.
    after = {"bob": answers(bob_api), "carol": answers(carol_api)}
    assert answers(carol_api, ignore=EVALUATED) == carol_unevaluated
    carol_now = after["carol"]["/monitors"]["results"]
    assert [(m["status"], m["last_value"]) for m in carol_now] == [("ok", COOL)]
    assert [m["status"] for m in after["bob"]["/monitors"]["results"]] == ["firing"]
    assert len(after["bob"]["/incidents"]["results"]) == 1
    for who in ("bob", "carol"):
        for path in ("/sources", "/channels", "/silences"):
            assert after[who][path] == before[who][path]
    for user, name in ((bob, "bob"), (carol, "carol")):
        page = Client()
        page.force_login(user)
        response = page.get("/app/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "greenhouse" in html
        assert "温室" not in html, name
        assert "DROP MEASUREMENT" not in html, name
