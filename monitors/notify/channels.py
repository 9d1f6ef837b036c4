"""Writes on channels, with every rule a channel's write has: the config its kind's notifier
accepts (addresses, an http(s) URL that is not a private address, a Slack hook, an
international phone number), the signing secret stored encrypted, a kind that never changes,
a new phone number verified again, message templates that fill (templating.py). The channels
API and the channels pages both call these.

Device health alerts: a channel with ``device_health`` (the default) is attached to every
device health monitor of its owner (offline, battery low, signal weak) when it is created or
the flag is switched on, and to those made later (devices/health.py asks
``device_health_channels``); switching the flag off detaches it from all of them. A single
health monitor's channels can still be edited like any monitor's."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from monitors.models import (
    BODY_TEMPLATE_LENGTH,
    PHONE_KINDS,
    SUBJECT_TEMPLATE_LENGTH,
    Channel,
    Monitor,
)
from monitors.notify import templating
from monitors.notify.kinds import NOTIFIERS

KIND_FIXED = "a channel's kind cannot change"
PERSONAL = (
    "this is a member's personal email channel: it sends to their login address and follows it, "
    "and goes when they leave the account. To stop telling them, take them out of the "
    "escalation steps that name them"
)


def is_personal(channel: Channel) -> bool:
    """A member's personal email channel (``Channel.member``): managed by their membership."""
    return channel.member_id is not None


class ConfigError(ValidationError):
    """The kind's notifier refused the config: ``key`` names the config entry at fault ("" when
    it names none), ``text`` says what is wrong. A ValidationError on the ``config`` field."""

    def __init__(self, key: str, text: str) -> None:
        super().__init__({"config": [text]})
        self.key = key
        self.text = text


def clean_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config as the kind's notifier cleans it; raises :class:`ConfigError`."""
    try:
        return NOTIFIERS[kind].validate(dict(config))
    except ValueError as exc:  # the notifiers say "url: required"
        key, sep, text = str(exc).partition(": ")
        if sep and key.isidentifier():
            raise ConfigError(key, text) from exc
        raise ConfigError("", str(exc)) from exc


def check_templates(fields: dict[str, Any]) -> None:
    """The message templates among ``fields``, checked (monitors/notify/templating.py); a
    ValidationError naming the template at fault in plain words."""
    limits = {"subject_template": SUBJECT_TEMPLATE_LENGTH, "body_template": BODY_TEMPLATE_LENGTH}
    errors: dict[str, list[str]] = {}
    for name, limit in limits.items():
        try:
            templating.check(fields.get(name) or "", limit=limit)
        except templating.TemplateError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)


def channel_create(
    *,
    owner: User,
    name: str,
    kind: str,
    config: dict[str, Any] | None = None,
    secret: str = "",
    enabled: bool = True,
    device_health: bool = True,
    default_for_new_monitors: bool = False,
    subject_template: str = "",
    body_template: str = "",
) -> Channel:
    """A new channel. An SMS or voice channel starts unverified: a phone proves consent by a
    code (texted, or read out in a call)."""
    check_templates({"subject_template": subject_template, "body_template": body_template})
    channel = Channel(
        owner=owner,
        name=name,
        kind=kind,
        enabled=enabled,
        device_health=device_health,
        default_for_new_monitors=default_for_new_monitors,
        subject_template=subject_template,
        body_template=body_template,
    )
    channel.full_clean(exclude=["owner", "config"])  # the notifier cleans the config
    channel.config = clean_config(kind, config or {})
    channel.verified = kind not in PHONE_KINDS
    if secret:
        channel.secret = secret
    channel.save()
    if device_health:
        attach_to_device_health(channel)
    return channel


def channel_update(*, channel: Channel, secret: str | None = None, **fields: Any) -> Channel:
    """Applies an edit. ``secret=""`` removes the signing secret, ``None`` keeps it. A new phone
    number is unverified again; enabling a channel clears why it was disabled and its failing
    streak."""
    health_was = channel.device_health
    check_templates(fields)
    if "kind" in fields and fields["kind"] != channel.kind:
        raise ValidationError({"kind": [KIND_FIXED]})
    if "config" in fields:
        fields["config"] = clean_config(channel.kind, fields["config"] or {})
        if is_personal(channel) and fields["config"] != channel.config:
            raise ValidationError({"config": [PERSONAL]})
        if channel.is_phone and fields["config"].get("phone") != channel.config.get("phone"):
            channel.verified = False
    for name, value in fields.items():
        setattr(channel, name, value)
    channel.full_clean(exclude=["owner", "config"])
    if secret is not None:
        channel.secret = secret
    if fields.get("enabled"):
        channel.disabled_reason = ""
        channel.consecutive_permanent_failures = 0
        channel.failing_since = None
        channel.owner_told_at = None
    channel.save()
    if channel.device_health and not health_was:
        attach_to_device_health(channel)
    elif health_was and not channel.device_health:
        channel.monitors.remove(*Monitor.objects.filter(**_HEALTH, owner_id=channel.owner_id))
    return channel


def channel_delete(*, channel: Channel) -> None:
    """Raises ValidationError for a member's personal channel (it goes with the membership;
    deleting it would stop an escalation step telling them, silently)."""
    if is_personal(channel):
        raise ValidationError({"channel": [PERSONAL]})
    channel.delete()


_HEALTH = {"health_kind__isnull": False}


def attach_to_device_health(channel: Channel) -> None:
    """Adds the channel to every device health monitor of its owner (idempotent)."""
    Through = Monitor.channels.through
    monitor_ids = Monitor.objects.filter(**_HEALTH, owner_id=channel.owner_id).values_list(
        "pk", flat=True
    )
    Through.objects.bulk_create(
        [Through(monitor_id=pk, channel_id=channel.pk) for pk in monitor_ids],
        ignore_conflicts=True,
    )


def default_channels(*, owner: User) -> list[Channel]:
    """The channels a new monitor notifies unless it is told which: those marked "default for
    new monitors" (the editor ticks them; ``POST /monitors`` without ``channels`` uses them)."""
    return list(Channel.objects.filter(owner=owner, default_for_new_monitors=True))


def device_health_channels(*, owner: User) -> list[Channel]:
    """The channels a new device health monitor notifies."""
    return list(Channel.objects.filter(owner=owner, device_health=True))


MEMBER_LEFT = "the member left the account"


def member_email_changed(*, user_id: int, email: str) -> int:
    """A person's login address changed: their personal email channels (one per account whose
    escalation steps name them) send to the new one from now on. How many changed."""
    if not email:
        return 0  # no address to be told at: the channels keep the last one they had
    changed = 0
    for channel in Channel.objects.filter(member__user_id=user_id, kind=Channel.Kind.EMAIL):
        if channel.config.get("addresses") == [email]:
            continue
        try:
            channel.config = clean_config(Channel.Kind.EMAIL, {"addresses": [email]})
        except ConfigError:
            continue  # an address the email channel refuses: the last good one stays
        channel.save(update_fields=["config"])
        changed += 1
    return changed


def member_left(*, membership_id: int) -> int:
    """A member leaves the account (their membership row is being deleted): their personal
    email channel (``Channel.member``) is disabled and kept with its history; escalation steps
    no longer name them (the step's membership link goes with the row). How many changed."""
    return Channel.objects.filter(member_id=membership_id).update(
        enabled=False, disabled_reason=MEMBER_LEFT
    )
