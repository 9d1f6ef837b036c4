"""Acknowledging an incident by every route: the API, the incident page, a signed link (a GET
only shows, a POST acknowledges; expired, forged and wrong-purpose links refused), an SMS
reply (ACK, ACK <code>, signed by Twilio), a voice call's digit 1; two people at once (one
wins, both see who), acknowledgement racing resolution (a clear 409), repeats hushed, the
timeline; another customer gets a 404 everywhere."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from monitors.models import Channel, Incident, Notification
from monitors.notify import acknowledge, delivery, voice
from monitors.notify import twilio as twilio_gateway
from monitors.vocabulary import AckRoute
from tests.factories import ChannelFactory, MonitorFactory, UserFactory
from tests.fakes.twilio import gather_action

pytestmark = pytest.mark.django_db

PHONE = "+15551234567"


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def charlie():
    return UserFactory(username="charlie")


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def incident(alice):
    monitor = MonitorFactory(owner=alice, name="greenhouse too hot", status="firing")
    return Incident.objects.create(monitor=monitor, opened_at=timezone.now(), summary="above 30")


def test_the_api_acknowledges_once_and_says_who(alice, incident):
    url = f"/incidents/{incident.pk}/acknowledge"
    first = api_for(alice).post(url)
    assert first.status_code == 200
    assert first.json()["acknowledged_now"] is True
    assert first.json()["acknowledged_by"] == "alice"
    assert first.json()["acknowledged_via"] == "api"
    again = api_for(alice).post(url)
    assert again.status_code == 200
    assert again.json()["acknowledged_now"] is False
    assert again.json()["acknowledged_by_text"] == "alice via the API"


def test_acknowledging_a_resolved_incident_is_a_clear_409(alice, incident):
    Incident.objects.filter(pk=incident.pk).update(resolved_at=timezone.now())
    response = api_for(alice).post(f"/incidents/{incident.pk}/acknowledge")
    assert response.status_code == 409
    assert "was resolved at" in response.json()["detail"]
    assert "nothing to acknowledge" in response.json()["detail"]


def test_another_customer_gets_a_404_on_every_incident_endpoint_and_page(
    alice, charlie, incident, client
):
    api = api_for(charlie)
    assert api.post(f"/incidents/{incident.pk}/acknowledge").status_code == 404
    assert api.get(f"/incidents/{incident.pk}/timeline").status_code == 404
    assert api.get(f"/incidents/{incident.pk}").status_code == 404
    client.force_login(charlie)
    assert client.get(reverse("pages:incident", args=[incident.pk])).status_code == 404
    page_ack = reverse("pages:incident-acknowledge", args=[incident.pk])
    assert client.post(page_ack).status_code == 404
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_the_incident_page_acknowledges_with_its_button(alice, incident, client):
    client.force_login(alice)
    page = client.get(reverse("pages:incident", args=[incident.pk]))
    assert b"Acknowledge</button>" in page.content
    response = client.post(reverse("pages:incident-acknowledge", args=[incident.pk]), follow=True)
    assert b"Acknowledged: escalation and repeats are stopped." in response.content
    assert b"Acknowledged by <strong>alice via the incident page</strong>" in response.content
    incident.refresh_from_db()
    assert (incident.acknowledged_by, incident.acknowledged_via) == (alice, "page")


def test_a_link_shows_on_get_and_acknowledges_on_post_without_signing_in(alice, incident, client):
    channel = ChannelFactory(owner=alice, name="Ops email", kind="email")
    url = acknowledge.link_url(incident.pk, channel.pk)
    path = url.split("testserver", 1)[-1] if "testserver" in url else "/" + url.split("/", 3)[3]
    shown = client.get(path)
    assert shown.status_code == 200
    assert b"greenhouse too hot" in shown.content
    incident.refresh_from_db()
    assert incident.acknowledged_at is None  # a mail scanner's GET acknowledges nothing
    done = client.post(path)
    assert b"Acknowledged. Escalation and repeats are stopped." in done.content
    incident.refresh_from_db()
    assert incident.acknowledged_via == "link"
    assert incident.acknowledged_by is None
    assert incident.acknowledged_note == "a link sent to Ops email"
    again = client.post(path)
    assert b"Already acknowledged by a link sent to Ops email via a link" in again.content


def _path(url):
    return "/" + url.split("/", 3)[3]


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # altered
        lambda token: signing.dumps({"i": 1, "c": 1}, salt="some.other.purpose"),
        lambda token: signing.dumps({"i": 1, "c": 1}, salt=acknowledge.GATHER_SALT),
        lambda token: "not-a-token",
    ],
    ids=["altered", "other-salt", "voice-token", "garbage"],
)
def test_forged_or_wrong_purpose_links_are_refused(alice, incident, client, forge):
    token = acknowledge.link_token(incident.pk, 1)
    response = client.post(reverse("pages:acknowledge", args=[forge(token)]))
    assert response.status_code == 400
    assert b"This link is not valid." in response.content
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_an_expired_link_is_refused(alice, incident, client, settings):
    settings.ACK_LINK_HOURS = 1
    token = acknowledge.link_token(incident.pk, 1)
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = client.post(reverse("pages:acknowledge", args=[token]))
    assert response.status_code == 400
    assert b"This link has expired." in response.content


def test_a_link_to_a_resolved_incident_says_so(alice, incident, client):
    Incident.objects.filter(pk=incident.pk).update(resolved_at=timezone.now())
    token = acknowledge.link_token(incident.pk, 1)
    response = client.post(reverse("pages:acknowledge", args=[token]))
    assert response.status_code == 409
    assert b"nothing to acknowledge" in response.content


def test_notifications_about_a_firing_incident_carry_the_link(alice, incident, twilio):
    channel = ChannelFactory(owner=alice, kind="sms", config={"phone": PHONE})
    row = Notification.objects.create(
        monitor=incident.monitor,
        incident=incident,
        channel=channel,
        event="fired",
        idempotency_key=f"k{incident.pk}",
        payload={
            "event": "fired",
            "monitor": {"id": incident.monitor_id, "name": "greenhouse too hot", "url": ""},
            "incident": {"id": incident.pk},
        },
    )
    assert delivery.deliver(row.pk) == "sent"
    [sent] = twilio.messages
    assert f"Reply ACK {incident.pk} to acknowledge." in sent.form["Body"]
    sent_with = acknowledge.with_link(
        row.payload, event="fired", incident_id=incident.pk, channel_id=channel.pk
    )
    assert acknowledge.read_link(sent_with["acknowledge_url"].rsplit("/", 1)[1]) == (
        incident.pk,
        channel.pk,
    )
    assert "acknowledge_url" not in acknowledge.with_link(
        row.payload, event="resolved", incident_id=incident.pk, channel_id=channel.pk
    )


def _texted(incident, channel):
    return Notification.objects.create(
        monitor=incident.monitor,
        incident=incident,
        channel=channel,
        event="fired",
        idempotency_key=f"texted-{incident.pk}-{channel.pk}",
        payload={},
    )


def _sms(client, body, sender=PHONE):
    url = "http://testserver/webhooks/twilio/sms"
    form = {"From": sender, "Body": body}
    signature = twilio_gateway.signature(url, form)
    return client.post(url, form, HTTP_X_TWILIO_SIGNATURE=signature)


def test_an_sms_reply_ack_acknowledges_the_latest_incident_texted_to_that_number(
    alice, incident, client, twilio
):
    channel = ChannelFactory(owner=alice, kind="sms", config={"phone": PHONE})
    _texted(incident, channel)
    response = _sms(client, "ack")
    assert response["Content-Type"] == "text/xml"
    assert b"<Message>Acknowledged: greenhouse too hot" in response.content
    incident.refresh_from_db()
    assert (incident.acknowledged_via, incident.acknowledged_note) == ("sms", PHONE)
    again = _sms(client, f"ACK {incident.pk}")
    assert b"was already acknowledged by +15551234567 via an SMS reply" in again.content


def test_an_sms_code_only_reaches_incidents_texted_to_that_number(
    alice, charlie, incident, client, twilio
):
    ChannelFactory(owner=alice, kind="sms", config={"phone": PHONE})  # never texted about it
    theirs = ChannelFactory(owner=charlie, kind="sms", config={"phone": "+15559999999"})
    other = Incident.objects.create(
        monitor=MonitorFactory(owner=charlie), opened_at=timezone.now(), summary="x"
    )
    _texted(other, theirs)
    response = _sms(client, str(other.pk))  # alice's phone names charlie's incident
    assert f"No incident {other.pk} was texted to this number.".encode() in response.content
    other.refresh_from_db()
    assert other.acknowledged_at is None
    assert b"No open incident to acknowledge." in _sms(client, "ACK").content


def test_sms_and_voice_webhooks_with_a_bad_signature_are_refused(alice, incident, client, twilio):
    channel = ChannelFactory(owner=alice, kind="sms", config={"phone": PHONE})
    _texted(incident, channel)
    sms = client.post(
        "/webhooks/twilio/sms", {"From": PHONE, "Body": "ACK"}, HTTP_X_TWILIO_SIGNATURE="forged"
    )
    assert sms.status_code == 403
    gather = acknowledge.gather_url(incident.pk, channel.pk)
    voice_call = client.post(_path(gather), {"Digits": "1"}, HTTP_X_TWILIO_SIGNATURE="forged")
    assert voice_call.status_code == 403
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_a_voice_call_reads_the_alert_and_pressing_1_acknowledges(
    alice, incident, client, twilio, settings
):
    settings.SITE_URL = "http://testserver"
    channel = ChannelFactory(owner=alice, kind="voice", config={"phone": PHONE})
    row = Notification.objects.create(
        monitor=incident.monitor,
        incident=incident,
        channel=channel,
        event="escalated",
        idempotency_key="call-1",
        payload={
            "event": "escalated",
            "monitor": {"id": incident.monitor_id, "name": "greenhouse too hot", "url": ""},
            "incident": {"id": incident.pk},
            "reason": "unacknowledged for 10 min",
        },
    )
    assert delivery.deliver(row.pk) == "sent"
    [call] = twilio.calls
    assert call.form["To"] == PHONE
    assert "Press 1 to acknowledge" in call.form["Twiml"]
    action = gather_action(call)
    assert action is not None
    form = {"Digits": "1", "CallSid": "CA" + "1" * 32, "From": "+15005550006"}
    answer = client.post(
        _path(action), form, HTTP_X_TWILIO_SIGNATURE=twilio_gateway.signature(action, form)
    )
    assert answer.status_code == 200
    assert b"<Say>Acknowledged. Escalation is stopped. Thank you.</Say>" in answer.content
    incident.refresh_from_db()
    assert (incident.acknowledged_via, incident.acknowledged_note) == ("voice", PHONE)


def test_a_voice_callback_cannot_be_made_from_an_acknowledgement_link(
    alice, incident, client, twilio, settings
):
    settings.SITE_URL = "http://testserver"
    token = acknowledge.link_token(incident.pk, 1)  # a link's token, not a call's
    action = f"http://testserver/webhooks/twilio/voice/{token}"
    form = {"Digits": "1"}
    answer = client.post(
        _path(action), form, HTTP_X_TWILIO_SIGNATURE=twilio_gateway.signature(action, form)
    )
    assert b"Sorry, this link is not valid." in answer.content
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def _press(client, action, digits):
    form = {"Digits": digits, "From": "+15005550006"}
    return client.post(
        _path(action), form, HTTP_X_TWILIO_SIGNATURE=twilio_gateway.signature(action, form)
    )


def test_a_voice_digit_after_the_call_expired_or_other_than_1_acknowledges_nothing(
    alice, incident, client, twilio, settings
):
    settings.SITE_URL = "http://testserver"
    channel = ChannelFactory(owner=alice, kind="voice", config={"phone": PHONE})
    action = acknowledge.gather_url(incident.pk, channel.pk)
    assert b"<Say>Not acknowledged. Goodbye.</Say>" in _press(client, action, "2").content
    later = timezone.now() + timedelta(minutes=acknowledge.VOICE_GATHER_MINUTES + 1)
    with time_machine.travel(later, tick=False):
        expired = _press(client, action, "1")
    assert b"<Say>Sorry, this link has expired.</Say>" in expired.content
    incident.refresh_from_db()
    assert incident.acknowledged_at is None
    assert b"Acknowledged. Escalation is stopped." in _press(client, action, "1").content


def test_a_voice_channel_is_verified_by_a_code_read_out_in_a_call(alice, twilio):
    api = api_for(alice)
    created = api.post(
        "/channels", {"name": "on-call phone", "kind": "voice", "config": {"phone": PHONE}},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    assert created.json()["verified"] is False
    assert api.post(f"/channels/{created.json()['id']}/send-verification").status_code == 202
    [call] = twilio.calls
    assert "Your growalert code is" in call.form["Twiml"]
    assert not twilio.messages


def test_alert_twiml_escapes_what_it_reads_out():
    payload = {
        "event": "fired",
        "monitor": {"id": 1, "name": "<b>hot</b> & humid", "url": ""},
        "incident": {"id": 7},
    }
    twiml = voice.alert_twiml(payload, channel_id=1)
    assert "&lt;b&gt;hot&lt;/b&gt; &amp; humid" in twiml
    assert "<b>" not in twiml


@pytest.mark.django_db(transaction=True)
def test_two_people_at_once_one_wins_and_both_see_who():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    monitor = MonitorFactory(owner=alice)
    incident = Incident.objects.create(monitor=monitor, opened_at=timezone.now(), summary="x")
    barrier = threading.Barrier(2)
    outcomes = {}

    def press(user):
        barrier.wait()
        try:
            outcomes[user.username] = acknowledge.acknowledge(
                incident.pk, via=AckRoute.API, by=user
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=(u,)) for u in (alice, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [name for name, o in outcomes.items() if o.won]
    assert len(winners) == 1
    seen = {getattr(o.incident.acknowledged_by, "username", None) for o in outcomes.values()}
    assert seen == set(winners)


@pytest.mark.django_db(transaction=True)
def test_an_acknowledgement_racing_resolution_waits_for_it_and_is_refused():
    monitor = MonitorFactory(owner=UserFactory(username="alice"))
    incident = Incident.objects.create(monitor=monitor, opened_at=timezone.now(), summary="x")
    resolving = threading.Event()
    outcome: dict[str, object] = {}

    def acknowledge_now():
        resolving.wait()
        try:
            acknowledge.acknowledge(incident.pk, via=AckRoute.API)
            outcome["result"] = "acknowledged"
        except acknowledge.AlreadyResolved as exc:
            outcome["result"] = str(exc)
        finally:
            connection.close()

    racer = threading.Thread(target=acknowledge_now)
    racer.start()
    with transaction.atomic():  # the pipeline resolving it, holding the row
        Incident.objects.filter(pk=incident.pk).update(resolved_at=timezone.now())
        resolving.set()
        racer.join(0.5)
        assert racer.is_alive()  # the conditional update waits for the row
    racer.join(10)
    assert "nothing to acknowledge" in str(outcome["result"])
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_an_acknowledged_incident_is_not_repeated(incident):
    assert incident.hushes("repeated") is False
    acknowledge.acknowledge(incident.pk, via=AckRoute.API)
    incident.refresh_from_db()
    assert incident.hushes("repeated") is True
    assert incident.hushes("resolved") is False


def test_the_timeline_lists_what_happened_in_order(alice, incident):
    channel = ChannelFactory(owner=alice, name="Ops hook")
    Notification.objects.create(
        monitor=incident.monitor,
        incident=incident,
        channel=channel,
        event="fired",
        idempotency_key="t-1",
        payload={},
        status="sent",
        created_at=incident.opened_at + timedelta(seconds=1),
    )
    acknowledge.acknowledge(
        incident.pk, via=AckRoute.API, by=alice, now=incident.opened_at + timedelta(minutes=2)
    )
    resolved = incident.opened_at + timedelta(minutes=5)
    Incident.objects.filter(pk=incident.pk).update(resolved_at=resolved)
    response = api_for(alice).get(f"/incidents/{incident.pk}/timeline")
    assert response.status_code == 200
    kinds = [(e["kind"], e["text"]) for e in response.json()]
    assert kinds == [
        ("fired", "Fired: above 30"),
        ("notification", "Fired → Ops hook (Webhook)"),
        ("acknowledged", "Acknowledged by alice via the API"),
        ("resolved", "Resolved"),
    ]
    assert response.json()[1]["delivery"] == "Sent"


def test_kinds_of_channels_include_voice():
    assert Channel.Kind.VOICE in Channel.Kind.values
