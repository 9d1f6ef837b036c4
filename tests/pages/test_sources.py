"""The sources page (test client, real InfluxDB) and, in the browser, the sources, channels and
monitor pages' actions: add and check a source, send a test notification to a real receiver,
pause / resume / test now."""

from __future__ import annotations

import html

import pytest
from playwright.sync_api import expect

from monitors.influxdb import connect
from monitors.models import Monitor, Source
from tests import customer_influx
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory
from tests.notify.conftest import Receiver
from tests.pages.conftest import sign_in


@pytest.mark.django_db
def test_adding_a_source_checks_it_and_never_shows_its_secret(alice, client_for, influx_db):
    client = client_for(alice)
    response = client.post(
        "/app/sources",
        {
            "name": "farm influx",
            "url": customer_influx.url(),
            "database": influx_db.database,
            "flavor": "influxql",
            "auth_scheme": "basic",
            "username": "grower",
            "secret": "hunter2-secret",
        },
        follow=True,
    )

    source = Source.objects.get(owner=alice)
    assert source.secret == "hunter2-secret"
    assert source.last_check_ok is True  # the customer influxd has auth off: any credentials work
    page = response.content.decode()
    assert "farm influx" in page
    assert f"InfluxDB {source.server_version}" in page
    assert "hunter2-secret" not in page


@pytest.mark.django_db
def test_form_errors_sit_next_to_the_fields(alice, client_for):
    response = client_for(alice).post(
        "/app/sources",
        {"name": "farm", "url": "ftp://x", "database": "d", "flavor": "influxql",
         "auth_scheme": "token"},
    )  # fmt: skip

    assert response.status_code == 400
    assert "url" in response.context["form"].errors  # from the API's own serializer

    response = client_for(alice).post(
        "/app/sources",
        {"name": "farm", "url": "http://93.184.216.34:8086", "database": "d",
         "flavor": "influxql", "auth_scheme": "token"},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.context["form"].errors["secret"] == ["Token auth needs a secret."]
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_an_unreachable_source_is_reported_and_in_use_cannot_be_removed(alice, client_for):
    source = SourceFactory(owner=alice, url="http://127.0.0.1:9", timeout_seconds=0.5)
    MonitorFactory(owner=alice, source=source)
    client = client_for(alice)

    checked = client.post(f"/app/sources/{source.pk}/check", follow=True).content.decode()
    removed = client.post(f"/app/sources/{source.pk}/delete", follow=True).content.decode()

    assert "does not answer" in checked
    assert "used by monitors" in removed
    assert Source.objects.filter(pk=source.pk).exists()


@pytest.mark.django_db
def test_another_customers_source_is_a_404(alice, bob, client_for):
    theirs = SourceFactory(owner=bob)
    client = client_for(alice)
    assert client.post(f"/app/sources/{theirs.pk}/check").status_code == 404
    assert client.post(f"/app/sources/{theirs.pk}/delete").status_code == 404
    assert theirs.name not in client.get("/app/sources").content.decode()


@pytest.mark.django_db
def test_a_source_is_made_to_push_its_subscription_shown_once_then_stopped(
    alice, bob, client_for, settings
):
    settings.SITE_URL = "https://growalert.example.com"
    source = SourceFactory(owner=alice, database="greenhouse")
    theirs = SourceFactory(owner=bob)
    client = client_for(alice)

    made = html.unescape(
        client.post(f"/app/sources/{source.pk}/push", follow=True).content.decode()
    )

    source.refresh_from_db()
    assert source.pushes
    assert 'CREATE SUBSCRIPTION "growalert" ON "greenhouse"."autogen"' in made
    assert "@growalert.example.com/influx" in made
    again = client.get("/app/sources").content.decode()
    assert "CREATE SUBSCRIPTION" not in again  # shown once
    assert f"pushes its writes (key {source.push_key_prefix}" in again
    assert client.post(f"/app/sources/{theirs.pk}/push").status_code == 404

    stopped = client.post(
        f"/app/sources/{source.pk}/push", {"action": "stop"}, follow=True
    ).content.decode()
    assert "no longer pushes" in stopped
    source.refresh_from_db()
    assert not source.pushes


@pytest.mark.django_db
def test_the_page_refuses_an_internal_address_next_to_the_url(alice, client_for, settings):
    settings.SOURCES_ALLOW_PRIVATE_ADDRESSES = False
    response = client_for(alice).post(
        "/app/sources",
        {"name": "farm", "url": "http://localhost:8086", "database": "d", "flavor": "influxql",
         "auth_scheme": "none"},
    )  # fmt: skip

    assert response.status_code == 400
    [error] = response.context["form"].errors["url"]
    assert error.startswith(connect.URL_REFUSED + ".")
    assert "SOURCES_ALLOW_PRIVATE_ADDRESSES=true" in error
    assert not Source.objects.filter(owner=alice).exists()


@pytest.mark.django_db(transaction=True)
def test_in_the_browser_add_a_source_then_send_a_test_to_a_channel(
    page, alice, screenshot, settings, influx_db
):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    receiver = Receiver()
    try:
        sign_in(page, "alice")
        page.get_by_role("link", name="Sources").click()
        page.locator("#id_name").fill("greenhouse influx")
        page.get_by_label("URL").fill(customer_influx.url())
        page.get_by_label("Database").fill(influx_db.database)
        page.get_by_role("button", name="Add source").click()
        expect(page.get_by_text("added; it answers")).to_be_visible()
        expect(page.locator("tr[data-source] .status-ok")).to_have_text("OK")
        screenshot(page, "source-added")

        page.get_by_role("link", name="Channels").click()
        page.locator("#id_name").fill("farm hook")
        page.get_by_label("Kind").select_option("webhook")
        page.get_by_label("Send to").fill(receiver.url)
        page.get_by_role("button", name="Add channel").click()
        page.get_by_role("button", name="Send test to farm hook").click()
        expect(page.get_by_text("Test notification sent to “farm hook”.")).to_be_visible()
        screenshot(page, "test-sent")
    finally:
        receiver.close()
    assert receiver.accepted[0].json()["event"] == "test"


@pytest.mark.django_db(transaction=True)
def test_in_the_browser_pause_resume_and_test_now(page, alice, screenshot):
    monitor = MonitorFactory(owner=alice, name="soil too dry", critical=99)
    ChannelFactory(owner=alice)
    sign_in(page, "alice")
    page.goto(f"/app/monitors/{monitor.pk}")

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_test_id("status")).to_have_text("Paused")
    assert Monitor.objects.get(pk=monitor.pk).enabled is False
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    assert Monitor.objects.get(pk=monitor.pk).enabled is True

    page.get_by_role("button", name="Test now").click()
    expect(page.locator("#test-result")).to_contain_text("SELECT")
    screenshot(page, "tested")
