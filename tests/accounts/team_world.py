"""Three accounts, each with an owner, an admin, a member and a viewer (and a spare member to
change or remove), and one of every kind of row, for the permission matrix and team tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from accounts import team
from accounts.models import Account, Membership, Role
from accounts.services import api_token_create
from billing.gating import comp
from devices.models import Device
from monitors import escalation_policies
from monitors.models import Incident, Silence
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory

ROLES = ("owner", "admin", "member", "viewer")


@dataclass
class World:
    """One account: its people by role, and the ids of its rows by URL keyword."""

    account: Account
    people: dict[str, User]
    ids: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def add_member(account: Account, user: User, role: str) -> Membership:
    return Membership.objects.create(account=account, user=user, role=role)


def make_world(name: str) -> World:
    owner = UserFactory(username=f"{name}-owner")
    comp(owner)
    account = Account.objects.get(holder=owner)
    people: dict[str, User] = {"owner": owner}
    for role in ROLES[1:]:
        people[role] = UserFactory(username=f"{name}-{role}")
        add_member(account, people[role], role)
    spare = add_member(account, UserFactory(username=f"{name}-spare"), Role.MEMBER)
    source = SourceFactory(owner=owner, url="http://127.0.0.1:9")
    monitor = MonitorFactory(owner=owner, source=source)
    channel = ChannelFactory(owner=owner)
    now = timezone.now()
    policy = escalation_policies.policy_save(
        owner=owner,
        data=escalation_policies.PolicyInput(
            name="on call", steps=[escalation_policies.StepInput(5, [channel])]
        ),
    )
    invitation, _ = team.invite(
        account=account, email=f"{name}-new@example.com", role="viewer", invited_by=owner
    )
    world = World(account=account, people=people)
    world.ids = {
        "monitor": monitor.pk,
        "source": source.pk,
        "channel": channel.pk,
        "policy": policy.pk,
        "incident": Incident.objects.create(monitor=monitor, opened_at=now, summary="hot").pk,
        "silence": Silence.objects.create(owner=owner, ends_at=now + timedelta(hours=1)).pk,
        "device": Device.objects.create(
            owner=owner,
            name="GRO-01",
            ingest_key_prefix=name[:8],
            ingest_key_hash=name.ljust(64, "0"),
        ).pk,
        "member": spare.pk,
        "invitation": invitation.pk,
    }
    for role, person in people.items():
        world.tokens[role] = api_token_create(owner=person, name="matrix", account_id=account.pk)[1]
    # a token of each person to revoke (not the one the requests use)
    world.ids["token"] = {
        role: api_token_create(owner=person, name="spare", account_id=account.pk)[0].pk
        for role, person in people.items()
    }
    return world
