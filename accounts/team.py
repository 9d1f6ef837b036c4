"""Writes of a team: invite by email, accept, change a role, remove a member, leave.

An invitation carries a random secret in its link; only the SHA-256 is stored. It is single use
(accepting stamps ``accepted_at`` with a conditional UPDATE: two accepts, one wins), expires
after ``INVITATION_TTL`` and can be revoked. An account has at most ``MAX_PENDING_INVITATIONS``
open at once. The holder is the account's owner: nobody changes or removes that membership.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, Invitation, Membership, Role

logger = logging.getLogger(__name__)

INVITATION_TTL = timedelta(days=7)
MAX_PENDING_INVITATIONS = 50
INVITABLE_ROLES = (Role.ADMIN, Role.MEMBER, Role.VIEWER)


class TeamError(Exception):
    """A team change that cannot be made; the message is shown to the user."""


class NoSuchMember(TeamError):
    pass


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > Invitation.EMAIL_MAX_LENGTH:
        raise TeamError(f"An email address has at most {Invitation.EMAIL_MAX_LENGTH} characters.")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise TeamError("Enter a valid email address.") from exc
    return email


def _clean_role(role: str) -> Role:
    if role not in [r.value for r in INVITABLE_ROLES]:
        raise TeamError("Choose a role: admin, member or viewer (an account has one owner).")
    return Role(role)


def invitation_url(secret: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/invite/{secret}"


def invite(
    *, account: Account, email: str, role: str, invited_by: AbstractBaseUser
) -> tuple[Invitation, str]:
    """A new invitation, emailed at once (after commit): the row and the link's secret."""
    email = _clean_email(email)
    role = _clean_role(role)
    now = timezone.now()
    with transaction.atomic():
        # Serialises the invitations of one account, so the bound holds under concurrency.
        Account.objects.select_for_update().filter(pk=account.pk).first()
        if Membership.objects.filter(account=account, user__email__iexact=email).exists():
            raise TeamError(f"{email} is already in this account.")
        pending = Invitation.objects.filter(
            account=account, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        )
        if pending.filter(email=email).exists():
            raise TeamError(f"{email} has a pending invitation: revoke it to send a new one.")
        if pending.count() >= MAX_PENDING_INVITATIONS:
            raise TeamError(
                f"This account has {MAX_PENDING_INVITATIONS} pending invitations: "
                "revoke some before inviting more."
            )
        secret = secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            account=account,
            email=email,
            role=role,
            token_hash=_digest(secret),
            invited_by_id=invited_by.pk,
            created_at=now,
            expires_at=now + INVITATION_TTL,
        )
        transaction.on_commit(lambda: _send(invitation, secret, invited_by))
    return invitation, secret


def _send(invitation: Invitation, secret: str, invited_by: AbstractBaseUser) -> None:
    who = getattr(invited_by, "email", "") or "A growalert user"
    body = (
        f"{who} invites you to the growalert account {invitation.account.name!r} "
        f"as {invitation.role}.\n\n"
        f"Accept: {invitation_url(secret)}\n\n"
        f"The link works once and expires in {INVITATION_TTL.days} days. "
        "If you did not expect this, ignore this email.\n"
    )
    try:
        send_mail(
            f"You are invited to {invitation.account.name} on growalert",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [invitation.email],
        )
    except OSError as exc:  # the row stays: the admin sees it pending and can revoke/resend
        logger.warning("Invitation %s not emailed: %s", invitation.pk, exc)


def revoke_invitation(*, account_id: int, invitation_id: int) -> bool:
    return (
        Invitation.objects.filter(
            pk=invitation_id,
            account_id=account_id,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        ).update(revoked_at=timezone.now())
        == 1
    )


def open_invitation(secret: str) -> Invitation | None:
    """The pending invitation a link's secret names; None for a forged, used, revoked or
    expired one (the page says so, without telling which)."""
    if not secret or len(secret) > 100:
        return None
    found = Invitation.objects.select_related("account").filter(token_hash=_digest(secret)).first()
    if found is None or not found.is_pending(timezone.now()):
        return None
    return found


def accept(*, secret: str, user: AbstractBaseUser) -> Membership:
    """``user`` joins the invitation's account with its role (once: a used link fails)."""
    invitation = open_invitation(secret)
    if invitation is None:
        raise TeamError("This invitation is not valid: it was used, revoked, or has expired.")
    now = timezone.now()
    with transaction.atomic():
        claimed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ).update(accepted_at=now, accepted_by_id=user.pk)
        if claimed != 1:
            raise TeamError("This invitation is not valid: it was used, revoked, or has expired.")
        existing = Membership.objects.filter(account_id=invitation.account_id, user_id=user.pk)
        if existing.exists():
            raise TeamError("You are already in this account.")
        try:
            with transaction.atomic():
                return Membership.objects.create(
                    account_id=invitation.account_id, user_id=user.pk, role=invitation.role
                )
        except IntegrityError as exc:
            raise TeamError("You are already in this account.") from exc


def _other_member(account_id: int, membership_id: int) -> Membership:
    found = Membership.objects.filter(pk=membership_id, account_id=account_id).first()
    if found is None:
        raise NoSuchMember("No such member in this account.")
    if found.role == Role.OWNER:
        raise TeamError("The account's owner cannot be changed or removed.")
    return found


def change_role(*, account_id: int, membership_id: int, role: str) -> Membership:
    membership = _other_member(account_id, membership_id)
    membership.role = _clean_role(role)
    membership.save(update_fields=["role"])
    return membership


def remove_member(*, account_id: int, membership_id: int) -> None:
    """The member leaves the account at once: their session falls back to their own account
    and their tokens for it answer 401 (they have no membership to act with)."""
    _other_member(account_id, membership_id).delete()


def leave(*, account_id: int, user: AbstractBaseUser) -> None:
    membership = Membership.objects.filter(account_id=account_id, user_id=user.pk).first()
    if membership is None:
        raise TeamError("You are not in this account.")
    if membership.role == Role.OWNER:
        raise TeamError("The owner cannot leave their own account.")
    membership.delete()
