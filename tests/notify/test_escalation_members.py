"""Escalation steps that name members of the account: the member is emailed at their login
address through their personal email channel (the outbox path every notification takes), a
member who left is no longer told (and nothing breaks), and only members of the policy's own
account, at most 20 per step, are accepted by the service, the API and the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import team
from accounts.models import Account, Membership, Role
from monitors import escalation_policies
from monitors.escalation_policies import PolicyInput, StepInput
from monitors.models import Channel, EscalationPolicy, Incident, Notification
from monitors.notify import delivery, escalation
from monitors.notify.channels import MEMBER_LEFT
from tests.factories import ChannelFactory, MonitorFactory, UserFactory

pytestmark = pytest.mark.django_db

OPENED = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def holder():
    return UserFactory(username="holder")


@pytest.fixture
def bob(holder):
    """A member of the holder's account, told at bob@example.com (his login address)."""
    user = UserFactory(username="bob", email="bob@example.com")
    account = Account.objects.get(holder=holder)
    return Membership.objects.create(account=account, user=user, role=Role.MEMBER)


@pytest.fixture
def outsider():
    """A member of another account."""
    other = UserFactory(username="other-holder")
    user = UserFactory(username="eve", email="eve@example.com")
    account = Account.objects.get(holder=other)
    return Membership.objects.create(account=account, user=user, role=Role.ADMIN)


def save_policy(owner, steps):
    with time_machine.travel(OPENED - timedelta(hours=1), tick=False):
        return escalation_policies.policy_save(
            owner=owner, data=PolicyInput(name="on call", steps=steps, is_default=True)
        )


def take(at):
    with time_machine.travel(at, tick=False):
        escalation.discover()
        return escalation.run_due()


def escalated(incident):
    return sorted(
        (n.channel.name, n.payload["escalation"]["step"])
        for n in Notification.objects.filter(incident=incident, event="escalated")
    )


def test_a_member_named_by_the_second_step_receives_the_escalation_email(holder, bob, smtp_inbox):
    first = ChannelFactory(owner=holder, name="first")
    save_policy(
        holder,
        [
            StepInput(after_minutes=5, channels=[first]),
            StepInput(after_minutes=15, members=[bob.pk]),
        ],
    )
    personal = Channel.objects.get(owner=holder, member=bob)
    assert (personal.kind, personal.config, personal.verified) == (
        "email",
        {"addresses": ["bob@example.com"]},
        True,
    )
    assert personal.device_health is False
    incident = Incident.objects.create(
        monitor=MonitorFactory(owner=holder, name="Greenhouse 2"),
        opened_at=OPENED,
        summary="31 °C, above 30 °C",
    )

    take(OPENED + 5 * MINUTE)
    assert escalated(incident) == [("first", 1)]
    assert smtp_inbox.messages == []
    take(OPENED + 15 * MINUTE)
    assert escalated(incident) == [("bob (member)", 2), ("first", 1)]

    row = Notification.objects.get(incident=incident, channel=personal)
    with time_machine.travel(OPENED + 15 * MINUTE, tick=False):
        assert delivery.deliver(row.pk) == "sent"
    [message] = smtp_inbox.messages
    assert message["To"] == "bob@example.com"
    assert smtp_inbox.envelopes[0][1] == ["bob@example.com"]
    assert "Greenhouse 2" in message["Subject"]


def test_saving_again_reuses_the_personal_channel_and_follows_a_new_login_address(holder, bob):
    save_policy(holder, [StepInput(after_minutes=5, members=[bob.pk, bob.pk])])
    bob.user.email = "bob@farm.example"
    bob.user.save()
    policy = EscalationPolicy.objects.get(owner=holder)
    escalation_policies.policy_save(
        owner=holder,
        data=PolicyInput(name="on call", steps=[StepInput(after_minutes=5, members=[bob.pk])]),
        policy=policy,
    )
    [personal] = Channel.objects.filter(owner=holder, member=bob)
    assert personal.config == {"addresses": ["bob@farm.example"]}
    assert [m.pk for m in policy.steps.get().members.all()] == [bob.pk]


def test_a_new_login_address_reaches_the_personal_channel_without_saving_the_policy(holder, bob):
    save_policy(holder, [StepInput(after_minutes=5, members=[bob.pk])])
    bob.user.email = "bob@greenhouse.example"
    bob.user.save(update_fields=["email"])
    [personal] = Channel.objects.filter(owner=holder, member=bob)
    assert personal.config == {"addresses": ["bob@greenhouse.example"]}

    bob.user.email = ""  # no address any more: the channel keeps the last one
    bob.user.save()
    bob.user.save(update_fields=["last_login"])  # a sign-in changes nothing
    personal.refresh_from_db()
    assert personal.config == {"addresses": ["bob@greenhouse.example"]}


def test_a_member_who_left_is_not_told_and_the_history_stays(holder, bob):
    other = ChannelFactory(owner=holder, name="office")
    save_policy(
        holder,
        [
            StepInput(after_minutes=5, members=[bob.pk]),
            StepInput(after_minutes=15, channels=[other], members=[bob.pk]),
            StepInput(after_minutes=25, members=[bob.pk]),
        ],
    )
    personal = Channel.objects.get(owner=holder, member=bob)
    incident = Incident.objects.create(
        monitor=MonitorFactory(owner=holder), opened_at=OPENED, summary="hot"
    )
    take(OPENED + 5 * MINUTE)
    assert escalated(incident) == [("bob (member)", 1)]

    team.remove_member(account_id=bob.account_id, membership_id=bob.pk)

    assert take(OPENED + 15 * MINUTE).taken == 1
    assert take(OPENED + 25 * MINUTE).taken == 1  # a step with nobody left: passed, no crash
    assert escalated(incident) == [("bob (member)", 1), ("office", 2)]
    personal.refresh_from_db()  # kept with its history, disabled, no longer anyone's
    assert (personal.member_id, personal.enabled, personal.disabled_reason) == (
        None,
        False,
        MEMBER_LEFT,
    )
    assert Notification.objects.filter(channel=personal).count() == 1
    policy = EscalationPolicy.objects.get(owner=holder)
    assert [list(s.members.all()) for s in policy.steps.all()] == [[], [], []]


def test_another_accounts_member_and_more_than_twenty_are_refused_by_the_service(
    holder, bob, outsider
):
    with pytest.raises(ValidationError) as refused:
        save_policy(holder, [StepInput(after_minutes=5, members=[bob.pk, outsider.pk])])
    assert refused.value.message_dict["steps"] == [
        f"step 1: member {outsider.pk} is not a member of this account."
    ]
    many = [bob.pk + n for n in range(21)]
    with pytest.raises(ValidationError) as too_many:
        save_policy(holder, [StepInput(after_minutes=5, members=many)])
    assert too_many.value.message_dict["steps"] == ["step 1: at most 20 members."]
    assert not Channel.objects.filter(member__isnull=False).exists()


def test_the_api_takes_member_ids_and_refuses_another_accounts_member(holder, bob, outsider):
    api = APIClient()
    api.force_authenticate(holder)
    body = {
        "name": "night",
        "steps": [{"after_minutes": 10, "members": [bob.pk]}],
    }
    created = api.post("/escalation-policies", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["steps"] == [
        {"after_minutes": 10, "hours": "always", "channels": [], "members": [bob.pk]}
    ]
    team_api = APIClient()
    team_api.force_login(holder)
    listed = team_api.get("/account/members")
    assert listed.status_code == 200, listed.json()
    assert bob.pk in [m["id"] for m in listed.json()]  # the ids the team API gives
    renamed = api.patch(
        f"/escalation-policies/{created.json()['id']}", {"name": "day"}, format="json"
    )
    assert renamed.status_code == 200, renamed.json()
    assert renamed.json()["steps"][0]["members"] == [bob.pk]  # a PATCH keeps them

    theirs = api.post(
        "/escalation-policies",
        {"name": "x", "steps": [{"after_minutes": 10, "members": [outsider.pk]}]},
        format="json",
    )
    assert theirs.status_code == 400
    assert theirs.json()["steps"] == [
        f"step 1: member {outsider.pk} is not a member of this account."
    ]
    many = api.post(
        "/escalation-policies",
        {"name": "x", "steps": [{"after_minutes": 10, "members": list(range(1, 22))}]},
        format="json",
    )
    assert many.status_code == 400
    assert "members" in many.json()["steps"]["0"]
    nobody = api.post(
        "/escalation-policies",
        {"name": "x", "steps": [{"after_minutes": 10}]},
        format="json",
    )
    assert nobody.status_code == 400
    assert nobody.json()["steps"] == ["step 1: choose at least one channel or member to notify."]


def test_the_page_offers_the_accounts_members_and_refuses_another_accounts(
    holder, bob, outsider, client
):
    client.force_login(holder)
    page = reverse("pages:escalation")
    shown = client.get(page)
    assert b"bob &lt;bob@example.com&gt;" in shown.content
    assert b"eve@example.com" not in shown.content
    form = {
        "name": "night",
        "working_start": "08:00",
        "working_end": "18:00",
        "step0_after": "10",
        "step0_hours": "always",
    }
    theirs = client.post(page, {**form, "step0_members": [str(outsider.pk)]})
    assert theirs.status_code == 400
    assert b"Choose members of this account only." in theirs.content
    saved = client.post(page, {**form, "step0_members": [str(bob.pk)]}, follow=True)
    assert "Escalation policy “night” saved.".encode() in saved.content
    assert b"bob (by email)" in saved.content
    policy = EscalationPolicy.objects.get(owner=holder)
    assert [m.pk for m in policy.steps.get().members.all()] == [bob.pk]


def test_a_personal_channel_cannot_be_removed_or_pointed_elsewhere(holder, bob, client):
    """It goes with the membership: removing it would stop a step telling bob, silently."""
    save_policy(holder, [StepInput(after_minutes=5, members=[bob.pk])])
    [personal] = Channel.objects.filter(owner=holder, member=bob)
    api = APIClient()
    api.force_authenticate(holder)

    deleted = api.delete(f"/channels/{personal.pk}")
    moved = api.patch(
        f"/channels/{personal.pk}", {"config": {"addresses": ["eve@example.com"]}}, format="json"
    )
    renamed = api.patch(f"/channels/{personal.pk}", {"name": "Bob, on call"}, format="json")

    assert deleted.status_code == 400
    assert "personal email channel" in deleted.json()["channel"][0]
    assert moved.status_code == 400
    assert "follows" in moved.json()["config"][0]
    assert renamed.status_code == 200
    personal.refresh_from_db()
    assert (personal.name, personal.config) == ("Bob, on call", {"addresses": ["bob@example.com"]})

    client.force_login(holder)
    page = client.get(reverse("pages:channels")).content.decode()
    assert 'data-testid="personal-channel"' in page
    assert reverse("pages:channel-delete", args=[personal.pk]) not in page
    answer = client.post(reverse("pages:channel-delete", args=[personal.pk]), follow=True)
    assert "stays: this is a member" in answer.content.decode()
    assert Channel.objects.filter(pk=personal.pk).exists()


def test_a_personal_channel_of_a_member_who_left_can_be_removed(holder, bob):
    save_policy(holder, [StepInput(after_minutes=5, members=[bob.pk])])
    [personal] = Channel.objects.filter(owner=holder, member=bob)
    team.leave(account_id=bob.account_id, user=bob.user)
    api = APIClient()
    api.force_authenticate(holder)

    assert api.delete(f"/channels/{personal.pk}").status_code == 204
