"""Pages rendered by Django's test client: sign-in, permissions, forms and their errors."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from growalert.pages.forms import parse_tags
from monitors.models import Channel, Incident, Monitor, Status
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory

pytestmark = pytest.mark.django_db

PAGES = ["/app/", "/app/monitors/new", "/app/channels", "/app/account"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_anonymous_visitors_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_the_site_root_explains_growalert_to_visitors_and_sends_members_to_the_dashboard(
    client, client_for, alice
):
    page = client.get("/").content.decode()
    assert "Know when your greenhouse needs you" in page
    assert 'href="/register"' in page
    assert 'href="/accounts/login/"' in page
    assert "accounts are free" in page  # no Stripe configured here
    assert client_for(alice).get("/")["Location"] == "/app/"


def test_sign_in_page_is_styled_and_signs_in(client, alice):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b'href="/static/css/app.css"' in page.content
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "correct horse battery staple"}
    )
    assert response["Location"] == "/app/"


def test_a_wrong_password_is_explained(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_sign_out_is_a_post_and_returns_to_sign_in(client_for, alice):
    client = client_for(alice)
    response = client.post("/accounts/logout/")
    assert response["Location"] == "/accounts/login/"
    assert client.get("/app/").status_code == 302


def test_password_reset_mails_a_link_that_sets_a_new_password(client, alice):
    response = client.post("/accounts/password_reset/", {"email": alice.email})
    assert response["Location"] == "/accounts/password_reset/done/"
    [message] = mail.outbox
    link = next(line for line in message.body.splitlines() if "/accounts/reset/" in line)
    assert link.startswith(settings.SITE_URL.rstrip("/") + "/accounts/reset/")  # not the Host
    path = urlsplit(link).path
    form = client.get(path, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )
    assert done["Location"] == "/accounts/reset/done/"
    alice.refresh_from_db()
    assert alice.check_password("a brand new passphrase")


def test_dashboard_lists_open_incidents_first_with_status_words_and_values(
    client_for, alice, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)  # "for 3 min", however slow the machine
    checked = timezone.now()
    calm = MonitorFactory(
        owner=alice, name="a calm one", status=Status.OK, last_value=21.5, last_evaluated_at=checked
    )
    never = MonitorFactory(owner=alice, name="b new one", status=Status.OK)
    hot = MonitorFactory(
        owner=alice,
        name="z hot one",
        status=Status.FIRING,
        last_value=41.0,
        last_evaluated_at=checked,
        status_reason="41 is above 30",
        status_changed_at=timezone.now() - timedelta(minutes=3),
    )
    Incident.objects.create(monitor=hot, opened_at=timezone.now(), opened_value=41.0)
    page = client_for(alice).get("/app/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.index("z hot one") < html.index("a calm one")
    assert 'class="status status-firing">Firing<' in html
    assert "Firing for 3 min: 41 is above 30." in html
    assert "3 min ago</time>" in html
    assert f'data-monitor="{calm.pk}"' in html
    never_card = html[html.index(f'data-monitor="{never.pk}"') :]
    assert ">Not evaluated yet<" in never_card[: never_card.index("</li>")]
    assert "Open incidents (1)" in html


def test_dashboard_shows_only_the_owners_monitors(client_for, alice, bob):
    MonitorFactory(owner=bob, name="bob's secret greenhouse")
    assert b"bob&#x27;s secret" not in client_for(alice).get("/app/").content


def test_another_customers_monitor_pages_are_404(client_for, alice, bob):
    monitor = MonitorFactory(owner=bob)
    client = client_for(alice)
    for path in ("", "/edit"):
        assert client.get(f"/app/monitors/{monitor.pk}{path}").status_code == 404
    for action in ("toggle", "test", "delete"):
        assert client.post(f"/app/monitors/{monitor.pk}/{action}").status_code == 404
    assert Monitor.objects.filter(pk=monitor.pk, enabled=True).exists()


def test_another_customers_channel_cannot_be_tested_or_removed(client_for, alice, bob):
    channel = ChannelFactory(owner=bob)
    client = client_for(alice)
    for action in ("test", "delete", "send-verification", "verify"):
        assert client.post(f"/app/channels/{channel.pk}/{action}").status_code == 404
    assert Channel.objects.filter(pk=channel.pk).exists()


def test_monitor_page_shows_state_why_incidents_and_notifications(client_for, alice):
    monitor = MonitorFactory(
        owner=alice,
        status=Status.FIRING,
        status_reason="41 is above 30",
        last_evaluated_at=timezone.now(),
    )
    Incident.objects.create(
        monitor=monitor, opened_at=timezone.now(), opened_value=41.0, summary="too hot"
    )
    page = client_for(alice).get(f"/app/monitors/{monitor.pk}")
    html = page.content.decode()
    assert page.status_code == 200
    assert "41 is above 30" in html
    assert "too hot" in html
    assert "still open" in html
    assert "Nothing sent yet." in html


def test_pause_and_resume(client_for, alice):
    monitor = MonitorFactory(owner=alice)
    client = client_for(alice)
    client.post(f"/app/monitors/{monitor.pk}/toggle")
    monitor.refresh_from_db()
    assert (monitor.enabled, monitor.status) == (False, Status.PAUSED)
    client.post(f"/app/monitors/{monitor.pk}/toggle")
    monitor.refresh_from_db()
    assert (monitor.enabled, monitor.status) == (True, Status.OK)


def test_the_monitor_form_shows_errors_next_to_their_fields(client_for, alice):
    source = SourceFactory(owner=alice)
    response = client_for(alice).post(
        "/app/monitors/new",
        {
            "name": "",
            "source": source.pk,
            "measurement": "gro01",
            "field": "temperature",
            "tags": "device greenhouse-1",
            "aggregation": "mean",
            "window": "five minutes",
            "comparator": "above",
            "critical": "30",
            "warning": "35",
            "interval": "1m",
            "pending_for": "1",
            "recover_after": "1",
            "no_data_policy": "status",
            "error_policy": "status",
        },
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert "name" in form.errors
    assert form.errors["tags"] == ["Write each tag as name=value, separated by commas."]
    assert form.errors["window"] == ["Use a duration like 30s, 5m or 1h."]
    html = response.content.decode()
    assert 'aria-invalid="true"' in html
    assert not Monitor.objects.exists()


def test_the_api_rules_apply_to_the_form(client_for, alice):
    source = SourceFactory(owner=alice)
    data = {
        "name": "too warm",
        "source": source.pk,
        "measurement": "gro01",
        "field": "temperature",
        "tags": "device=greenhouse-1",
        "aggregation": "mean",
        "window": "5m",
        "comparator": "above",
        "critical": "30",
        "warning": "35",
        "interval": "1m",
        "pending_for": "1",
        "recover_after": "1",
        "no_data_policy": "status",
        "error_policy": "status",
        "enabled": "on",
    }
    response = client_for(alice).post("/app/monitors/new", data)
    assert response.status_code == 400
    assert response.context["form"].errors["warning"] == ["Must be below critical (30.0)."]


def test_creating_and_editing_a_monitor(client_for, alice, bob):
    source = SourceFactory(owner=alice)
    mine = ChannelFactory(owner=alice)
    theirs = ChannelFactory(owner=bob)
    data = {
        "name": "too warm",
        "source": source.pk,
        "measurement": "gro01",
        "field": "temperature",
        "tags": "device=greenhouse-1, site=north",
        "aggregation": "mean",
        "window": "5m",
        "comparator": "above",
        "critical": "30",
        "interval": "1m",
        "pending_for": "2",
        "recover_after": "1",
        "no_data_policy": "status",
        "error_policy": "status",
        "enabled": "on",
        "channels": [mine.pk],
    }
    client = client_for(alice)
    response = client.post("/app/monitors/new", data)
    monitor = Monitor.objects.get()
    assert response["Location"] == f"/app/monitors/{monitor.pk}"
    assert monitor.tags == {"device": "greenhouse-1", "site": "north"}
    assert monitor.window == timedelta(minutes=5)
    assert list(monitor.channels.all()) == [mine]

    edit = client.get(f"/app/monitors/{monitor.pk}/edit")
    assert 'value="5m"' in edit.content.decode()
    tags = edit.context["form"]["tags"].value()
    assert parse_tags(edit.context["form"].fields["tags"].prepare_value(tags)) == monitor.tags

    response = client.post(
        f"/app/monitors/{monitor.pk}/edit", {**data, "critical": "32", "channels": [theirs.pk]}
    )
    assert response.status_code == 400  # bob's channel is not a choice
    client.post(f"/app/monitors/{monitor.pk}/edit", {**data, "critical": "32"})
    monitor.refresh_from_db()
    assert monitor.critical == 32


def test_without_a_subscription_the_editor_explains_and_creates_nothing(client_for, charlie):
    source = SourceFactory(owner=charlie)
    client = client_for(charlie)
    page = client.get("/app/monitors/new").content.decode()
    assert "An active subscription is required" in page
    client.post("/app/monitors/new", {"name": "x", "source": source.pk})
    assert not Monitor.objects.exists()
    assert "Your monitors are paused" in client.get("/app/").content.decode()


def test_channels_page_adds_and_removes_a_channel_and_shows_errors(client_for, alice):
    client = client_for(alice)
    bad = client.post("/app/channels", {"name": "ops", "kind": "email", "target": "not an address"})
    assert bad.status_code == 400
    assert "not a valid email address" in bad.content.decode()
    client.post("/app/channels", {"name": "ops", "kind": "email", "target": "ops@example.com"})
    channel = Channel.objects.get(owner=alice)
    assert channel.config == {"addresses": ["ops@example.com"]}
    assert "ops@example.com" in client.get("/app/channels").content.decode()
    client.post(f"/app/channels/{channel.pk}/delete")
    assert not Channel.objects.exists()


def test_an_sms_channel_starts_unverified_with_a_code_form(client_for, alice):
    client = client_for(alice)
    client.post("/app/channels", {"name": "phone", "kind": "sms", "target": "+15551234567"})
    channel = Channel.objects.get()
    assert not channel.verified
    html = client.get("/app/channels").content.decode()
    assert "Not verified" in html
    assert f"/app/channels/{channel.pk}/verify" in html


def test_api_tokens_are_named_shown_once_listed_by_prefix_and_revoked(client_for, alice):
    from accounts.models import ApiToken

    client = client_for(alice)
    client.post("/app/account/token", {"name": "home assistant"})
    client.post("/app/account/token", {"name": "grafana"})
    first = client.get("/app/account").content.decode()  # the page after the second creation
    again = client.get("/app/account").content.decode()
    grafana = ApiToken.objects.get(owner=alice, name="grafana")
    [shown] = re.findall(r"ga_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", first)

    assert shown.startswith(grafana.prefix)
    assert shown not in again
    assert "home assistant" in again
    assert f"{grafana.prefix}…" in again
    client.post(f"/app/account/token/{grafana.pk}/revoke")
    assert [t.name for t in ApiToken.objects.filter(owner=alice, revoked_at__isnull=True)] == [
        "home assistant"
    ]
    assert "grafana" not in client.get("/app/account").content.decode()


def test_a_token_needs_a_name_and_bob_cannot_revoke_alices(client_for, alice, bob):
    from accounts.models import ApiToken
    from accounts.services import api_token_create

    token, _ = api_token_create(owner=alice, name="ci")
    nameless = client_for(alice).post("/app/account/token", {"name": " "}, follow=True)
    client_for(bob).post(f"/app/account/token/{token.pk}/revoke")

    assert "Give the token a name." in nameless.content.decode()
    assert ApiToken.objects.filter(owner=alice).count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None
