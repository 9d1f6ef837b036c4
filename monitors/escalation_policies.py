"""Writes on escalation policies, with every rule a policy has: a name unique to its owner, 1 to
MAX_STEPS steps, each after 1 minute to 7 days and telling up to MAX_STEP_CHANNELS of the
owner's own channels and up to MAX_STEP_MEMBERS members of the owner's account (at least one of
either), steps kept in order of their minutes, at most one default policy per owner. The API
and the pages both call these; errors are sentences keyed by field (``steps`` for a step's,
naming the step).

A member named by a step is told by email at their login address, through their personal
email channel in the account (``Channel.member``): saving the policy makes it (or brings its
address up to date), so escalation needs no second delivery path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from monitors.models import (
    MAX_STEP_CHANNELS,
    MAX_STEP_MEMBERS,
    MAX_STEPS,
    STEP_MINUTES_BOUND,
    Channel,
    EscalationPolicy,
    EscalationStep,
)
from monitors.notify.channels import channel_create, clean_config


@dataclass
class StepInput:
    after_minutes: int
    channels: Sequence[Channel] = ()
    hours: str = EscalationStep.Hours.ALWAYS
    members: Sequence[int] = ()  # membership ids (GET /account/members) of the owner's account


@dataclass
class PolicyInput:
    name: str
    steps: Sequence[StepInput]
    repeat_minutes: int | None = None
    is_default: bool = False
    working_days: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    working_start: time = time(8, 0)
    working_end: time = time(18, 0)


def step_errors(owner: User, steps: Sequence[StepInput]) -> list[str]:
    """What is wrong with the steps, one sentence each (empty: nothing)."""
    if not steps:
        return ["add at least one step."]
    if len(steps) > MAX_STEPS:
        return [f"a policy has at most {MAX_STEPS} steps."]
    errors = []
    for number, step in enumerate(steps, start=1):
        try:
            STEP_MINUTES_BOUND(step.after_minutes)
        except ValidationError as exc:
            errors.append(f"step {number}: the minutes {exc.messages[0]}.")
        if not step.channels and not step.members:
            errors.append(f"step {number}: choose at least one channel or member to notify.")
        elif len(step.channels) > MAX_STEP_CHANNELS:
            errors.append(f"step {number}: at most {MAX_STEP_CHANNELS} channels.")
        elif any(c.owner_id != owner.pk for c in step.channels):
            errors.append(f"step {number}: a channel is not one of yours.")
        errors += [f"step {number}: {text}" for text in _member_errors(owner, step.members)]
        if step.hours not in EscalationStep.Hours.values:
            errors.append(f"step {number}: hours is one of {', '.join(EscalationStep.Hours)}.")
    return errors


def account_members(owner: User) -> Any:
    """The memberships of the account whose rows ``owner`` holds, with their users."""
    membership = EscalationStep._meta.get_field("members").related_model
    return (
        membership._default_manager.filter(account__holder_id=owner.pk)  # type: ignore[union-attr]
        .select_related("user")
        .order_by("id")
    )


def _member_errors(owner: User, member_ids: Sequence[int]) -> list[str]:
    if len(member_ids) > MAX_STEP_MEMBERS:
        return [f"at most {MAX_STEP_MEMBERS} members."]
    found = {m.pk: m for m in account_members(owner).filter(pk__in=list(member_ids))}
    errors = []
    for pk in dict.fromkeys(member_ids):
        if pk not in found:
            errors.append(f"member {pk} is not a member of this account.")
        elif not found[pk].user.email:
            errors.append(f"member {found[pk].user.username} has no email address to be told at.")
    return errors


@transaction.atomic
def policy_save(
    *, owner: User, data: PolicyInput, policy: EscalationPolicy | None = None
) -> EscalationPolicy:
    """Creates (or replaces the settings and steps of) a policy; raises ValidationError."""
    policy = policy or EscalationPolicy(owner=owner)
    values: dict[str, Any] = {
        name: getattr(data, name)
        for name in (
            "name", "repeat_minutes", "is_default", "working_days", "working_start",
            "working_end",
        )
    }  # fmt: skip
    for name, value in values.items():
        setattr(policy, name, value)
    errors: dict[str, list[str]] = {}
    try:
        policy.full_clean(exclude=["owner"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    same_name = EscalationPolicy.objects.filter(owner=owner, name=data.name).exclude(pk=policy.pk)
    if data.name and same_name.exists():
        errors.setdefault("name", []).append("you have a policy with this name already.")
    if found := step_errors(owner, data.steps):
        errors["steps"] = found
    if errors:
        raise ValidationError(errors)
    if data.is_default:  # one default per owner: this one takes it
        EscalationPolicy.objects.filter(owner=owner, is_default=True).exclude(pk=policy.pk).update(
            is_default=False
        )
    policy.save()
    _replace_steps(policy, data.steps)
    return policy


def _replace_steps(policy: EscalationPolicy, steps: Sequence[StepInput]) -> None:
    policy.steps.all().delete()
    ordered = sorted(steps, key=lambda s: s.after_minutes)
    for position, step in enumerate(ordered):
        row = EscalationStep.objects.create(
            policy=policy, position=position, after_minutes=step.after_minutes, hours=step.hours
        )
        row.channels.set(list(step.channels))
        row.members.set(list(dict.fromkeys(step.members)))
    for membership in (
        account_members(policy.owner).filter(escalation_steps__policy=policy).distinct()
    ):
        personal_channel(policy.owner, membership)


def personal_channel(owner: User, membership: Any) -> Channel:
    """The member's personal email channel in the account (to their login address), made or
    its address brought up to date. Device health alerts never go to it."""
    address = membership.user.email
    channel = Channel.objects.filter(owner=owner, member_id=membership.pk).first()
    if channel is None:
        who = membership.user.get_full_name() or membership.user.username
        channel = channel_create(
            owner=owner,
            name=f"{who} (member)"[: Channel._meta.get_field("name").max_length],
            kind=Channel.Kind.EMAIL,
            config={"addresses": [address]},
            device_health=False,
        )
        channel.member_id = membership.pk
        channel.save(update_fields=["member"])
    elif channel.config.get("addresses") != [address]:
        channel.config = clean_config(Channel.Kind.EMAIL, {"addresses": [address]})
        channel.save(update_fields=["config"])
    return channel


def policy_delete(*, policy: EscalationPolicy) -> None:
    """Monitors that named it fall back to the owner's default; running escalations stop."""
    policy.delete()
