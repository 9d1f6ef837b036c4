"""Teams end to end: one-person accounts (the data migration, new sign-ups), invitations by
email (received by a real SMTP server), roles through the pages and API tokens, removal, the
account switcher."""

from __future__ import annotations

import re
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import team
from accounts.acting import SESSION_ACCOUNT_KEY
from accounts.models import Account, ApiToken, Invitation, Membership
from accounts.services import api_token_create
from billing.gating import comp
from monitors.models import Monitor
from tests.accounts.team_world import add_member
from tests.factories import MonitorFactory, SourceFactory, UserFactory
from tests.notify.conftest import smtp_inbox  # noqa: F401 (the real SMTP server)

pytestmark = pytest.mark.django_db


def signed_in(user, account: Account | None = None) -> Client:
    client = Client()
    client.force_login(user)
    if account is not None:
        session = client.session
        session[SESSION_ACCOUNT_KEY] = account.pk
        session.save()
    return client


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def north():
    owner = UserFactory(username="north-owner", email="owner@north.example")
    comp(owner)
    monitor = MonitorFactory(
        owner=owner,
        name="Tomato house",
        source=SourceFactory(owner=owner, url="http://127.0.0.1:9"),
    )
    return Account.objects.get(holder=owner), monitor


def test_every_new_user_owns_a_one_person_account() -> None:
    user = UserFactory(username="newcomer", email="newcomer@example.com")

    account = Account.objects.get(holder=user)
    assert account.name == "newcomer@example.com"
    assert list(account.memberships.values_list("user_id", "role")) == [(user.pk, "owner")]


def test_the_data_migration_gives_every_existing_user_an_account_and_links_tokens() -> None:
    create_accounts = import_module("accounts.migrations.0005_one_person_accounts").create_accounts
    users = [UserFactory(username=f"legacy{i}", email=f"legacy{i}@example.com") for i in range(3)]
    monitor = MonitorFactory(owner=users[0], source=SourceFactory(owner=users[0]))
    token, secret = api_token_create(owner=users[0], name="old script")
    # the state before the migration: users without accounts, a token without one
    ApiToken.objects.filter(pk=token.pk).update(account=None)
    Account.objects.filter(holder__in=users).delete()
    assert not Membership.objects.filter(user__in=users).exists()

    with connection.schema_editor() as editor:
        create_accounts(apps, editor)
        create_accounts(apps, editor)  # safe to run again: nothing doubles

    for user in users:
        account = Account.objects.get(holder=user)
        assert list(account.memberships.values_list("user_id", "role")) == [(user.pk, "owner")]
    token.refresh_from_db()
    assert token.account == Account.objects.get(holder=users[0])
    comp(users[0])
    listed = bearer(secret).get("/monitors").json()["results"]
    assert [m["id"] for m in listed] == [monitor.pk]  # the rows kept their owner: the holder


def test_an_invitation_is_emailed_accepted_and_the_viewer_sees_but_cannot_edit(
    north,
    smtp_inbox,  # noqa: F811
    django_capture_on_commit_callbacks,
) -> None:
    account, monitor = north
    admin = UserFactory(username="north-admin")
    add_member(account, admin, "admin")

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(admin, account).post(
            "/app/team/invite", {"email": "Grower@Example.com", "role": "viewer"}
        )
    assert response.status_code == 302

    (message,) = smtp_inbox.messages
    assert message["To"] == "grower@example.com"
    assert account.name in message["Subject"]
    found = re.search(r"https?://\S+(/invite/\S+)", message.get_content())
    assert found is not None
    path = found.group(1)
    assert Invitation.objects.get().token_hash not in message.get_content()  # only the hash kept

    visitor = Client()
    form = visitor.get(path)
    assert form.status_code == 200
    assert b"grower@example.com" in form.content
    joined = visitor.post(path, {"password": "a long and unusual passphrase"})
    assert joined.status_code == 302

    dashboard = visitor.get("/app/")
    assert b"Tomato house" in dashboard.content  # the account's monitors, as a viewer
    refused = visitor.post(f"/app/monitors/{monitor.pk}/delete")
    assert refused.status_code == 403
    assert b"viewer" in refused.content
    assert Monitor.objects.filter(pk=monitor.pk).exists()

    assert Client().get(path).status_code == 410  # single use
    assert Client().get("/invite/forged-secret-that-was-never-made").status_code == 410


def test_an_expired_or_revoked_invitation_is_refused(north) -> None:
    account, _ = north
    invitation, secret = team.invite(
        account=account, email="late@example.com", role="member", invited_by=account.holder
    )
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(1))
    assert Client().get(f"/invite/{secret}").status_code == 410

    other, other_secret = team.invite(
        account=account, email="later@example.com", role="member", invited_by=account.holder
    )
    assert team.revoke_invitation(account_id=account.pk, invitation_id=other.pk)
    assert Client().get(f"/invite/{other_secret}").status_code == 410


def test_a_signed_in_person_accepts_and_switches_between_accounts(north) -> None:
    account, monitor = north
    bob = UserFactory(username="bob", email="bob@example.com")
    comp(bob)
    own = MonitorFactory(owner=bob, name="Bob's bench", source=SourceFactory(owner=bob))
    _, secret = team.invite(
        account=account, email="bob@example.com", role="member", invited_by=account.holder
    )
    client = signed_in(bob)

    assert client.post(f"/invite/{secret}").status_code == 302

    in_north = client.get("/app/")
    assert b"Tomato house" in in_north.content
    assert b"Bob&#x27;s bench" not in in_north.content
    assert b'data-testid="account-switch"' in in_north.content
    assert client.post("/app/account/switch", {"account": Account.objects.get(holder=bob).pk})
    in_own = client.get("/app/")
    assert b"Bob&#x27;s bench" in in_own.content
    assert b"Tomato house" not in in_own.content
    assert own.pk != monitor.pk

    stranger = Account.objects.get(holder=UserFactory(username="stranger"))
    client.post("/app/account/switch", {"account": stranger.pk})
    assert b"Bob&#x27;s bench" in client.get("/app/").content  # not a member: unchanged


def test_a_token_acts_with_its_members_current_role_and_dies_with_the_membership(north) -> None:
    account, monitor = north
    carol = UserFactory(username="carol")
    membership = add_member(account, carol, "member")
    _, secret = api_token_create(owner=carol, name="script", account_id=account.pk)
    api = bearer(secret)

    assert [m["id"] for m in api.get("/monitors").json()["results"]] == [monitor.pk]
    assert api.post(f"/monitors/{monitor.pk}/test").status_code != 403

    team.change_role(account_id=account.pk, membership_id=membership.pk, role="viewer")
    refused = api.delete(f"/monitors/{monitor.pk}")
    assert refused.status_code == 403
    assert "viewer" in refused.json()["detail"]

    team.remove_member(account_id=account.pk, membership_id=membership.pk)
    assert api.get("/monitors").status_code == 401
    assert Monitor.objects.filter(pk=monitor.pk).exists()


def test_the_owner_cannot_be_changed_removed_or_leave(north) -> None:
    account, _ = north
    owner_membership = Membership.objects.get(account=account, role="owner")
    with pytest.raises(team.TeamError):
        team.change_role(account_id=account.pk, membership_id=owner_membership.pk, role="viewer")
    with pytest.raises(team.TeamError):
        team.remove_member(account_id=account.pk, membership_id=owner_membership.pk)
    with pytest.raises(team.TeamError):
        team.leave(account_id=account.pk, user=account.holder)


def test_invitations_are_bounded_per_account(north, monkeypatch) -> None:
    account, _ = north
    monkeypatch.setattr(team, "MAX_PENDING_INVITATIONS", 2)
    for i in range(2):
        team.invite(
            account=account, email=f"p{i}@example.com", role="viewer", invited_by=account.holder
        )

    with pytest.raises(team.TeamError, match="2 pending invitations"):
        team.invite(
            account=account, email="p9@example.com", role="viewer", invited_by=account.holder
        )
    with pytest.raises(team.TeamError):
        team.invite(account=account, email="x@example.com", role="owner", invited_by=account.holder)


def test_the_team_api_lists_changes_and_removes_members(north) -> None:
    account, _ = north
    dave = UserFactory(username="dave", email="dave@example.com")
    membership = add_member(account, dave, "viewer")
    _, secret = api_token_create(owner=account.holder, name="admin script")
    api = bearer(secret)

    listed = api.get("/account/members").json()
    assert [(m["email"], m["role"]) for m in listed] == [
        (account.holder.email, "owner"),
        ("dave@example.com", "viewer"),
    ]
    changed = api.patch(f"/account/members/{membership.pk}", {"role": "admin"}, format="json")
    assert changed.json()["role"] == "admin"
    created = api.post(
        "/account/invitations", {"email": "erin@example.com", "role": "member"}, format="json"
    )
    assert created.status_code == 201
    assert [i["email"] for i in api.get("/account/invitations").json()] == ["erin@example.com"]
    assert api.delete(f"/account/invitations/{created.json()['id']}").status_code == 204
    assert api.delete(f"/account/members/{membership.pk}").status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_only_the_owner_sees_the_accounts_billing_on_the_account_page(north) -> None:
    account, _ = north
    erin = UserFactory(username="erin")
    add_member(account, erin, "admin")

    as_admin = signed_in(erin, account).get("/app/account")
    as_owner = signed_in(account.holder).get("/app/account")

    assert b'data-testid="billing-owner-only"' in as_admin.content
    assert b'data-testid="billing-owner-only"' not in as_owner.content
    assert b"Subscription" in as_owner.content
