"""Accounts: teams (an account, its members and their roles, invitations), API tokens and
profiles. Tokens and invitation secrets are stored as a SHA-256 hash, never in clear.

Tenancy: monitors, sources, channels, silences, escalation policies, devices and incidents belong
to an *account*; their column is named ``owner`` for history and holds the account's
``holder`` (the user whose one-person account it was, the account's owner role). A member of the
account acts on the rows whose ``owner_id`` is the holder's id (``accounts/tenancy.py``).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    """A member's role in an account, from the least to the most it may do (``RANK``)."""

    VIEWER = "viewer", "Viewer (read only)"
    MEMBER = "member", "Member (monitors, channels, acknowledge)"
    ADMIN = "admin", "Admin (everything but billing)"
    OWNER = "owner", "Owner (billing)"


RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}
# What an invitation or a role change may give (an account has one owner: its holder).
INVITABLE_ROLE_CHOICES = [(value, label) for value, label in Role.choices if value != Role.OWNER]


class Account(models.Model):
    """A team. Its rows (monitors, sources, channels...) are the rows whose ``owner_id`` is
    ``holder_id``: the column is named owner for history. The holder is the account's one
    member with the owner role, and its billing (Customer, subscriptions) is the holder's."""

    NAME_MAX_LENGTH = 100

    holder = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="held_account"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in an account; one per (account, user), one owner (the holder) per account."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="membership_once_per_account"),
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(role="owner"),
                name="membership_one_owner_per_account",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["owner", "admin", "member", "viewer"]),
                name="membership_role_known",
            ),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} is {self.role} of account {self.account_id}"


class Invitation(models.Model):
    """An invitation by email to join an account with a role. The link carries a random secret;
    only its SHA-256 is stored. Single use (``accepted_at``), expires, can be revoked."""

    EMAIL_MAX_LENGTH = 254

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=EMAIL_MAX_LENGTH)
    role = models.CharField(max_length=16, choices=INVITABLE_ROLE_CHOICES)
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256, hex")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["admin", "member", "viewer"]),
                name="invitation_role_known",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.email} to account {self.account_id}"

    def is_pending(self, now: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now


class ApiToken(models.Model):
    """One named API token of a member of an account; it acts in ``account`` with its owner's
    current role there (no membership any more: the token no longer works). The secret itself
    is shown once, at creation."""

    NAME_MAX_LENGTH = 100

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    # NULL only on rows copied from legacy keys before accounts existed (0002); migration 0005
    # fills every row: such a token acts in its owner's own account.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    prefix = models.CharField(
        max_length=16, db_index=True, help_text="ga_ and 8 hex characters, shown in lists"
    )
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256, hex")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def validate_time_zone(value: str) -> None:
    if value not in available_time_zones():
        raise ValidationError(f"{value!r} is not a time zone (e.g. Europe/Amsterdam).")


def available_time_zones() -> frozenset[str]:
    return _ZONES


_ZONES = frozenset(zoneinfo.available_timezones() | {"UTC"})


class Profile(models.Model):
    """What a person sets for themselves: the time zone every time on the pages is shown in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])

    def __str__(self) -> str:
        return f"profile of user {self.user_id}"
