"""Writes of accounts: create, revoke and mark API tokens as used."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import acting, tokens
from accounts.models import ApiToken, Profile

MAX_TOKENS_PER_USER = 20
# last_used_at is written at most this often per token: not a write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(Exception):
    """A token request that cannot be honoured; the message is shown to the user."""


def api_token_create(
    *, owner: AbstractBaseUser, name: str, account_id: int | None = None
) -> tuple[ApiToken, str]:
    """A new token of the member ``owner``, acting in ``account_id`` (default: their own
    account): the row, and the token itself (to show once; never stored)."""
    name = name.strip()
    if not name:
        raise TokenError("Give the token a name.")
    if len(name) > ApiToken.NAME_MAX_LENGTH:
        raise TokenError(f"A token name has at most {ApiToken.NAME_MAX_LENGTH} characters.")
    with transaction.atomic():
        # Serialises creations of one owner, so the limit holds under concurrent requests.
        get_user_model()._default_manager.select_for_update().filter(pk=owner.pk).first()
        live = ApiToken.objects.filter(owner_id=owner.pk, revoked_at__isnull=True).count()
        if live >= MAX_TOKENS_PER_USER:
            raise TokenError(
                f"You have {MAX_TOKENS_PER_USER} tokens: revoke one before creating another."
            )
        if account_id is None:
            account_id = acting.own_membership(owner).account_id
        secret = tokens.generate()
        presented = tokens.parse(secret)
        assert presented is not None
        token = ApiToken.objects.create(
            owner_id=owner.pk,
            account_id=account_id,
            name=name,
            prefix=presented.prefix,
            token_hash=presented.digest,
        )
    return token, secret


def api_token_revoke(
    *, owner: AbstractBaseUser, token_id: int, account_id: int | None = None
) -> bool:
    """Revokes one of ``owner``'s tokens (in ``account_id`` when given; the row stays, for the
    record); False if none."""
    mine = ApiToken.objects.filter(pk=token_id, owner_id=owner.pk, revoked_at__isnull=True)
    if account_id is not None:
        mine = mine.filter(account_id=account_id)
    return mine.update(revoked_at=timezone.now()) == 1


def api_token_touch(*, token_id: int) -> None:
    """Records a use, unless one was recorded within ``LAST_USED_RESOLUTION`` (the condition
    makes concurrent requests write once)."""
    now = timezone.now()
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
        pk=token_id,
    ).update(last_used_at=now)


def profile_update(*, user: AbstractBaseUser, time_zone: str) -> Profile:
    """Sets the user's time zone (validated against the IANA database)."""
    profile, _ = Profile.objects.get_or_create(user_id=user.pk)
    profile.time_zone = time_zone
    profile.full_clean()
    profile.save(update_fields=["time_zone"])
    return profile
