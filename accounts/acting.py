"""Who acts in which account: the one resolution of a request's membership.

A signed-in person acts in the account chosen with the switcher (session key
``SESSION_ACCOUNT_KEY``), else their own; an API token acts in its account with its member's
current role (no membership: no acting, and the token answers 401). The result is a
``shared.auth.Acting``: ``shared.auth.owner_of(request)`` is the account holder whose
``owner_id`` keys the account's rows. (``accounts.tenancy`` leaves it on the request.)
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest

from accounts import selectors, tokens
from accounts.models import Account, Membership, Role
from shared.auth import Acting

SESSION_ACCOUNT_KEY = "growalert_account_id"
TOKEN_KEYWORDS = (b"token", b"bearer")
ACCOUNT_NAME_MAX_LENGTH = Account.NAME_MAX_LENGTH


def default_account_name(user: AbstractBaseUser) -> str:
    email = str(getattr(user, "email", "") or "")
    username = str(getattr(user, "username", "") or "")
    return (email or username).strip()[:ACCOUNT_NAME_MAX_LENGTH] or "My team"


def own_membership(user: AbstractBaseUser) -> Membership:
    """The user's own account (they hold it, as owner), created on first need."""
    found = (
        Membership.objects.select_related("account")
        .filter(user_id=user.pk, account__holder_id=user.pk)
        .first()
    )
    if found is not None:
        return found
    try:
        with transaction.atomic():
            account = Account.objects.create(holder_id=user.pk, name=default_account_name(user))
            return Membership.objects.create(account=account, user_id=user.pk, role=Role.OWNER)
    except IntegrityError:  # a concurrent request made it first
        return Membership.objects.select_related("account").get(
            user_id=user.pk, account__holder_id=user.pk
        )


def acting_for(user: User, membership: Membership) -> Acting:
    return Acting(
        user=user,
        account_id=membership.account_id,
        account_name=membership.account.name,
        role=membership.role,
        owner_id=membership.account.holder_id,
    )


def session_acting(request: HttpRequest) -> Acting | None:
    """The membership a signed-in person acts with: the chosen account if they still belong to
    it, else their own (one query; a second only the first time an account is made)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        return None
    chosen = request.session.get(SESSION_ACCOUNT_KEY)
    wanted = Q(account__holder_id=user.pk)
    if isinstance(chosen, int):
        wanted |= Q(account_id=chosen)
    rows = list(Membership.objects.select_related("account").filter(wanted, user_id=user.pk))
    membership = next((m for m in rows if m.account_id == chosen), None) or next(
        (m for m in rows if m.account.holder_id == user.pk), None
    )
    if membership is None:
        membership = own_membership(user)
    return acting_for(user, membership)


def token_acting(request: HttpRequest) -> Acting | None:
    """The membership an API token acts with (its lookup is kept on the request for
    ``ApiTokenAuthentication``: one query per request)."""
    found = token_lookup(request)
    if found is None:
        return None
    user, auth = found
    assert isinstance(user, User)
    return Acting(
        user=user,
        account_id=auth.account_id,
        account_name=auth.account_name,
        role=auth.role,
        owner_id=auth.holder_id,
    )


_MISSING = object()


def token_lookup(request: HttpRequest) -> tuple[AbstractBaseUser, selectors.TokenAuth] | None:
    """The token's member and facts, looked up once per request (None: no live token)."""
    cached = getattr(request, "_growalert_token", _MISSING)
    if cached is not _MISSING:
        return cached  # type: ignore[return-value]
    words = _authorization(request).split()
    found = None
    if len(words) == 2 and words[0].lower() in TOKEN_KEYWORDS:
        presented = tokens.parse(words[1].decode("latin-1"))
        found = selectors.api_token_user(presented) if presented else None
    request._growalert_token = found  # type: ignore[attr-defined]
    return found


def _authorization(request: HttpRequest) -> bytes:
    header = request.META.get("HTTP_AUTHORIZATION", b"")
    return header.encode("latin-1") if isinstance(header, str) else header


def presents_token(request: HttpRequest) -> bool:
    words = _authorization(request).split()
    return bool(words) and words[0].lower() in TOKEN_KEYWORDS
