"""Reads of accounts: a user's API tokens, and the one-statement lookup behind API requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
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
    user = get_user_model()._meta.db_table
    token, customer = ApiToken._meta.db_table, Customer._meta.db_table
    subscription = Subscription._meta.db_table
    aggregate = "array_agg(s.{} ORDER BY s.id) FILTER (WHERE s.id IS NOT NULL)"
    # Only table and column names are formatted in (from the models); values are parameters.
    return f"""
        SELECT u.*, t.id AS api_token_id, t.token_hash AS api_token_hash,
               t.last_used_at AS api_token_last_used_at,
               coalesce(c.comped, false) AS billing_comped,
               {aggregate.format("status")} AS billing_statuses,
               {aggregate.format("past_due_since")} AS billing_past_due_since,
               {aggregate.format("current_period_end")} AS billing_period_ends
        FROM {token} t
        JOIN {user} u ON u.id = t.owner_id AND u.is_active
        LEFT JOIN {customer} c ON c.user_id = u.id
        LEFT JOIN {subscription} s ON s.customer_id = c.id
        WHERE t.prefix = %s AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > %s)
        GROUP BY u.id, t.id, c.id
    """  # noqa: S608


def api_token_user(presented: tokens.PresentedToken) -> tuple[AbstractBaseUser, TokenAuth] | None:
    """The active user a live token belongs to, with the facts the subscription check needs,
    in ONE SQL statement; the hash is compared in constant time here, not by the database."""
    rows = get_user_model()._default_manager.raw(_lookup_sql(), [presented.prefix, timezone.now()])
    for user in rows:  # one row, unless two tokens share a prefix
        extra = vars(user)  # the columns beyond the user's own, set by raw()
        if not tokens.matches(extra["api_token_hash"], presented):
            continue
        statuses = extra["billing_statuses"] or []
        facts = ServiceFacts(
            user_id=user.pk,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
            comped=extra["billing_comped"],
            subscriptions=list(
                zip(
                    statuses,
                    extra["billing_past_due_since"] or [None] * len(statuses),
                    extra["billing_period_ends"] or [None] * len(statuses),
                    strict=True,
                )
            ),
        )
        auth = TokenAuth(
            token_id=extra["api_token_id"],
            prefix=presented.prefix,
            last_used_at=extra["api_token_last_used_at"],
            service=facts,
        )
        return user, auth
    return None
