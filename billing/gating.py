"""Who is served: monitors need an active subscription, decided from local rows only.

An account is served when it is staff or superuser, its Customer is comped, or one of its
subscriptions is active or trialing, or past_due for less than
``settings.BILLING_PAST_DUE_GRACE_DAYS`` (counted from when it became past_due, else from the
end of its period). Everyone else, including an account without any Customer record, is not
served: the monitors API answers 402 and the dispatcher pauses their monitors. Nothing here calls
Stripe; the webhook keeps the rows current, so service resumes as soon as ``invoice.paid`` lands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from billing.models import Customer, Subscription
from shared.auth import owner_of

if TYPE_CHECKING:  # rest_framework.views loads the auth and throttle classes: no cycle
    from rest_framework.views import APIView

PAYMENT_REQUIRED_MESSAGE = (
    "An active subscription is required to use monitors. "
    "Subscribe (POST /create-subscription) or update your payment method (POST /customer-portal)."
)


# The rule for one subscription, stated once; served_q (SQL, for the dispatcher) and
# subscription_serves (Python, per request) are both built from it, and a test holds them to
# agreement. A subscription serves when its status is in Subscription.SERVED, or it is
# GRACE_STATUS and the first of GRACE_FROM that is set (if any) is later than grace_cutoff().
GRACE_STATUS = Subscription.Status.PAST_DUE
GRACE_FROM = ("past_due_since", "current_period_end")


def grace_cutoff(now: datetime) -> datetime:
    return now - timedelta(days=settings.BILLING_PAST_DUE_GRACE_DAYS)


def served_q(now: datetime | None = None) -> Q:
    """A filter on users: the accounts whose monitors run (one SQL expression, no loop)."""
    now = now or timezone.now()
    serving = Subscription.objects.annotate(grace_from=Coalesce(*GRACE_FROM)).filter(
        Q(status__in=Subscription.SERVED)
        | (
            Q(status=GRACE_STATUS)
            & (Q(grace_from__isnull=True) | Q(grace_from__gt=grace_cutoff(now)))
        ),
        customer__user_id=OuterRef("pk"),
    )
    return (
        Q(is_staff=True)
        | Q(is_superuser=True)
        | Q(billing_customer__comped=True)
        | Q(Exists(serving))
    )


def subscription_serves(
    status: str, past_due_since: datetime | None, period_end: datetime | None, now: datetime
) -> bool:
    """``served_q``'s rule for one subscription, in Python (the arguments in GRACE_FROM's
    order after the status)."""
    if status in Subscription.SERVED:
        return True
    if status != GRACE_STATUS:
        return False
    grace_from = next((t for t in (past_due_since, period_end) if t is not None), None)
    return grace_from is None or grace_from > grace_cutoff(now)


SubscriptionFacts = tuple[str, datetime | None, datetime | None]  # status, past_due_since, end


@dataclass(frozen=True)
class ServiceFacts:
    """What the service decision needs about one user, read in one query (here, or by the API
    token authentication, which reads them with the token and leaves them on ``request.auth``)."""

    user_id: int
    is_staff: bool
    is_superuser: bool
    comped: bool
    subscriptions: Sequence[SubscriptionFacts]

    def served(self, now: datetime) -> bool:
        """The one place where the per-user decision is made."""
        if self.is_staff or self.is_superuser or self.comped:
            return True
        return any(
            subscription_serves(status, since, end, now)
            for status, since, end in self.subscriptions
        )


def service_facts(user: AbstractBaseUser) -> ServiceFacts:
    """``user``'s customer and subscriptions, in one plain query."""
    rows = list(
        Customer.objects.filter(user_id=user.pk).values_list(
            "comped", "subscriptions__status", *(f"subscriptions__{f}" for f in GRACE_FROM)
        )
    )
    return ServiceFacts(
        user_id=user.pk,
        is_staff=bool(getattr(user, "is_staff", False)),
        is_superuser=bool(getattr(user, "is_superuser", False)),
        comped=any(comped for comped, *_ in rows),
        subscriptions=[(status, since, end) for _, status, since, end in rows if status],
    )


def has_active_service(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether ``user``'s monitors may be created, changed and evaluated.

    Reads the user's customer and subscriptions in one plain query and decides in Python
    (``ServiceFacts.served``): ``served_q``'s subquery costs over a millisecond to build on each
    call, several times the query itself. Staff and superusers need no query.
    """
    if not user.is_authenticated:
        return False
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return True
    assert isinstance(user, AbstractBaseUser)
    return service_facts(user).served(timezone.now())


def gated_owner_ids(now: datetime | None = None) -> QuerySet[AbstractBaseUser, int]:
    """Ids of the users whose monitors must be paused, as a lazy query.

    Use it as a subquery (``Monitor.objects.exclude(owner_id__in=gated_owner_ids())``: one SQL
    statement) or evaluate it (``set(gated_owner_ids())``).
    """
    users = get_user_model()._default_manager.exclude(served_q(now))
    return users.values_list("pk", flat=True)


class PaymentRequired(APIException):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    default_detail = PAYMENT_REQUIRED_MESSAGE
    default_code = "payment_required"


class HasActiveSubscription(BasePermission):
    """DRF permission: members of an account without active service (the holder's
    subscription) get a 402, reads included.

    A request authenticated by an API token carries its user's ``ServiceFacts`` on
    ``request.auth`` (``accounts.authentication``): then it costs no query at all."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False  # IsAuthenticated (listed before this) answers 401
        holder = owner_of(request)  # the account's subscription, whoever of its members asks
        facts = getattr(request.auth, "service", None)
        if isinstance(facts, ServiceFacts) and facts.user_id == holder.pk:
            served = facts.served(timezone.now())  # read with the token: no query here
        else:
            served = has_active_service(holder)
        if not served:
            raise PaymentRequired()
        return True


def comp(user: AbstractBaseUser) -> Customer:
    """Serve ``user`` without a subscription (tests, partners); never calls Stripe."""
    customer, _ = Customer.objects.update_or_create(user_id=user.pk, defaults={"comped": True})
    return customer
