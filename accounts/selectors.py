"""Reads of accounts: a member's API tokens, the team, and the one-statement lookup behind API
requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Case, QuerySet, Value, When
from django.utils import timezone

from accounts import tokens
from accounts.models import RANK, Account, ApiToken, Invitation, Membership
from billing.gating import ServiceFacts
from billing.models import Customer, Subscription


def api_token_list(
    *, owner: AbstractBaseUser | AnonymousUser, account_id: int | None = None
) -> QuerySet[ApiToken]:
    """The member's live tokens (revoked and expired ones are not listed), newest first; with
    ``account_id``, those acting in that account only."""
    now = timezone.now()
    tokens_ = ApiToken.objects.filter(owner_id=owner.pk, revoked_at__isnull=True).exclude(
        expires_at__lte=now
    )
    if account_id is not None:
        tokens_ = tokens_.filter(account_id=account_id)
    return tokens_


def member_list(*, account_id: int) -> QuerySet[Membership]:
    """The account's members, the owner first, then by when they joined."""
    rank = Case(
        *(When(role=role, then=Value(value)) for role, value in RANK.items()),
        default=Value(-1),
    )
    return (
        Membership.objects.filter(account_id=account_id)
        .select_related("user")
        .alias(rank=rank)
        .order_by("-rank", "created_at", "id")
    )


def pending_invitations(*, account_id: int) -> QuerySet[Invitation]:
    now = timezone.now()
    return Invitation.objects.filter(
        account_id=account_id, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    )


def memberships_of(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """The accounts a person belongs to (for the switcher), their own first."""
    return (
        Membership.objects.filter(user_id=user.pk)
        .select_related("account")
        .order_by("account__created_at", "account_id")
    )


def account_of(*, account_id: int) -> Account | None:
    return Account.objects.filter(pk=account_id).first()


@dataclass(frozen=True)
class TokenAuth:
    """What ``request.auth`` holds for a token-authenticated API request."""

    token_id: int
    prefix: str
    last_used_at: datetime | None
    service: ServiceFacts
    account_id: int
    account_name: str
    role: str
    holder_id: int


def _lookup_sql() -> str:
    """Token -> active member -> its membership of the token's account -> the account holder's
    customer -> subscriptions: one row per subscription (one with NULLs when there is none).
    No aggregate, no GROUP BY: the cheapest plan for one token. No membership: no row."""
    user = get_user_model()
    users = user._meta.db_table
    accounts = Account._meta.db_table
    columns = ", ".join(f"u.{field.column}" for field in user._meta.concrete_fields)
    return f"""
        SELECT t.id, t.token_hash, t.last_used_at, coalesce(c.comped, false),
               s.status, s.past_due_since, s.current_period_end,
               a.id, a.name, a.holder_id, m.role, h.is_staff, h.is_superuser, {columns}
        FROM {ApiToken._meta.db_table} t
        JOIN {users} u ON u.id = t.owner_id AND u.is_active
        JOIN {accounts} a ON a.id = coalesce(
            t.account_id, (SELECT own.id FROM {accounts} own WHERE own.holder_id = t.owner_id))
        JOIN {Membership._meta.db_table} m ON m.account_id = a.id AND m.user_id = u.id
        JOIN {users} h ON h.id = a.holder_id
        LEFT JOIN {Customer._meta.db_table} c ON c.user_id = a.holder_id
        LEFT JOIN {Subscription._meta.db_table} s ON s.customer_id = c.id
        WHERE t.prefix = %s AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > %s)
    """  # noqa: S608 (only table and column names from the models are formatted in)


def api_token_user(presented: tokens.PresentedToken) -> tuple[AbstractBaseUser, TokenAuth] | None:
    """The active member a live token belongs to, with its account, role and the facts the
    subscription check needs (the account holder's), in ONE SQL statement; the hash is compared
    in constant time here, not by the database."""
    with connection.cursor() as cursor:
        cursor.execute(_lookup_sql(), [presented.prefix, timezone.now()])
        rows = cursor.fetchall()
    match = next((row for row in rows if tokens.matches(row[1], presented)), None)
    if match is None:
        return None
    token_id, _, last_used_at, comped, *_ = match
    account_id, account_name, holder_id, role, holder_staff, holder_superuser = match[7:13]
    user_model = get_user_model()
    user = user_model.from_db(
        connection.alias, [f.attname for f in user_model._meta.concrete_fields], match[13:]
    )
    facts = ServiceFacts(
        user_id=holder_id,
        is_staff=bool(holder_staff),
        is_superuser=bool(holder_superuser),
        comped=comped,
        subscriptions=[(r[4], r[5], r[6]) for r in rows if r[0] == token_id and r[4]],
    )
    auth = TokenAuth(
        token_id=token_id,
        prefix=presented.prefix,
        last_used_at=last_used_at,
        service=facts,
        account_id=account_id,
        account_name=account_name,
        role=role,
        holder_id=holder_id,
    )
    return user, auth
