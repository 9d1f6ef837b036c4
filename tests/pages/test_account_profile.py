"""The account page tells staff and comped accounts the truth, sets the time zone every time on
the pages is shown in, and links to a password change in the site's layout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts.models import Profile
from monitors.models import Incident
from tests.factories import MonitorFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def test_staff_are_told_they_need_no_subscription(client_for):
    staff = UserFactory(username="ops", is_staff=True)

    page = client_for(staff).get("/app/account").content.decode()

    assert "You are staff: your monitors run without a subscription" in page
    assert "No subscription yet" not in page


def test_a_comped_account_without_stripe_is_told_it_is_free(client_for, alice):
    page = client_for(alice).get("/app/account").content.decode()

    assert "Your account is free: this deployment takes no payments." in page


def test_times_on_the_pages_follow_the_chosen_time_zone(client_for, alice):
    client = client_for(alice)
    monitor = MonitorFactory(owner=alice)
    Incident.objects.create(
        monitor=monitor, opened_at=datetime(2026, 12, 2, 0, 30, tzinfo=UTC), summary="hot"
    )
    assert "2026-12-02 00:30" in client.get(f"/app/monitors/{monitor.pk}").content.decode()

    saved = client.post("/app/account/profile", {"time_zone": "Asia/Tokyo"}, follow=True)

    assert "Times are now shown in Asia/Tokyo." in saved.content.decode()
    assert Profile.objects.get(user=alice).time_zone == "Asia/Tokyo"
    assert "2026-12-02 09:30" in client.get(f"/app/monitors/{monitor.pk}").content.decode()
    assert 'value="Asia/Tokyo" selected' in client.get("/app/account").content.decode()


def test_a_time_zone_not_in_the_list_is_refused(client_for, alice):
    page = client_for(alice).post(
        "/app/account/profile", {"time_zone": "Mars/Olympus"}, follow=True
    )

    assert "Choose a time zone from the list" in page.content.decode()
    assert not Profile.objects.filter(user=alice, time_zone="Mars/Olympus").exists()


def test_the_password_changes_from_the_account_page(client_for, alice):
    client = client_for(alice)
    assert 'href="/accounts/password_change/"' in client.get("/app/account").content.decode()
    form = client.get("/accounts/password_change/")
    assert form.status_code == 200
    assert "Change your password" in form.content.decode()

    done = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer grower passphrase",
            "new_password2": "a much longer grower passphrase",
        },
        follow=True,
    )

    assert "Password changed" in done.content.decode()
    alice.refresh_from_db()
    assert alice.check_password("a much longer grower passphrase")
