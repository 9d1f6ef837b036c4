"""Reads of accounts: a user's API tokens, and the one-statement lookup behind API requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiToken
from billing.gating import ServiceFacts
from billing.models import Customer, Subscription


def api_token_list(*, owner: AbstractBaseUser | AnonymousUser) -> QuerySet[ApiToken]:
    """The owner's live tokens (revoked and expired ones are not listed), newest first."""
    now = timezone.now()
    return ApiToken.objects.filter(owner_id=owner.pk, revoked_at__isnull=True).exclude(
        expires_at__lte=now
    )


@dataclass(frozen=True)
class TokenAuth:
    """What ``request.auth`` holds for a token-authenticated API request."""

    token_id: int
    prefix: str
    last_used_at: datetime | None
    service: ServiceFacts


def _lookup_sql() -> str:
    """Token -> active user -> customer -> subscriptions: one row per subscription (one with
    NULLs when there is none). No aggregate, no GROUP BY: the cheapest plan for one token."""
    user = get_user_model()
    columns = ", ".join(f"u.{field.column}" for field in user._meta.concrete_fields)
    return f"""
        SELECT t.id, t.token_hash, t.last_used_at, coalesce(c.comped, false),
               s.status, s.past_due_since, s.current_period_end, {columns}
        FROM {ApiToken._meta.db_table} t
        JOIN {user._meta.db_table} u ON u.id = t.owner_id AND u.is_active
        LEFT JOIN {Customer._meta.db_table} c ON c.user_id = u.id
        LEFT JOIN {Subscription._meta.db_table} s ON s.customer_id = c.id
        WHERE t.prefix = %s AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > %s)
    """  # noqa: S608 (only table and column names from the models are formatted in)


def api_token_user(presented: tokens.PresentedToken) -> tuple[AbstractBaseUser, TokenAuth] | None:
    """The active user a live token belongs to, with the facts the subscription check needs,
    in ONE SQL statement; the hash is compared in constant time here, not by the database."""
    with connection.cursor() as cursor:
        cursor.execute(_lookup_sql(), [presented.prefix, timezone.now()])
        rows = cursor.fetchall()
    match = next((row for row in rows if tokens.matches(row[1], presented)), None)
    if match is None:
        return None
    token_id, _, last_used_at, comped, *_ = match
    user_model = get_user_model()
    user = user_model.from_db(
        connection.alias, [f.attname for f in user_model._meta.concrete_fields], match[7:]
    )
    facts = ServiceFacts(
        user_id=user.pk,
        is_staff=bool(getattr(user, "is_staff", False)),
        is_superuser=bool(getattr(user, "is_superuser", False)),
        comped=comped,
        subscriptions=[(r[4], r[5], r[6]) for r in rows if r[0] == token_id and r[4]],
    )
    auth = TokenAuth(
        token_id=token_id, prefix=presented.prefix, last_used_at=last_used_at, service=facts
    )
    return user, auth
