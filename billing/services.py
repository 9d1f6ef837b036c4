"""Writes: customers, subscriptions, device orders and devices.

Every Stripe POST gets an idempotency key naming the business action, so a retry (by the SDK on
a network error, or by a user double-clicking) finds the first result instead of acting twice.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing import selectors, signals
from billing.errors import BillingError
from billing.models import Customer, DeviceOrder, Subscription
from billing.stripe_gateway import CardDeclined, StripeClient, StripeDict

logger = logging.getLogger(__name__)

TAKEN = "An account with this email already exists."
API_SNAPSHOT_MARGIN = timedelta(seconds=2)
# Subscriptions that already serve (or are about to): a second one would bill twice.
LIVE_STATUSES = (
    Subscription.Status.ACTIVE,
    Subscription.Status.TRIALING,
    Subscription.Status.PAST_DUE,
)


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


# --- customers ----------------------------------------------------------------------------


def _email_taken(email: str) -> bool:
    user_model = get_user_model()
    return user_model._default_manager.filter(
        Q(email__iexact=email) | Q(username__iexact=email)
    ).exists()


def _check_new_account(email: str, password: str, name: str) -> None:
    """An email already in use (as an email or a username) or a weak password is refused."""
    if _email_taken(email):
        raise BillingError(TAKEN, code="email_taken")
    candidate = get_user_model()(username=email, email=email, first_name=name[:150])
    try:
        validate_password(password, candidate)
    except ValidationError as exc:
        raise BillingError(" ".join(exc.messages), code="weak_password") from exc


def free_account_register(*, email: str, password: str, name: str = "") -> AbstractBaseUser:
    """A new account on a deployment without Stripe (self-hosted): served free (comped), with
    no Stripe customer. The same checks as a paying signup."""
    email = email.strip().lower()
    _check_new_account(email, password, name)
    user_model = get_user_model()
    try:
        with transaction.atomic():
            user = user_model._default_manager.create_user(
                username=email, email=email, password=password, first_name=name[:150]
            )
            Customer.objects.create(user_id=user.pk, comped=True)
    except IntegrityError as exc:
        raise BillingError(TAKEN, code="email_taken") from exc
    return user


def customer_register(
    *, email: str, password: str, name: str = ""
) -> tuple[AbstractBaseUser, Customer, StripeDict]:
    """A new growalert account with its Stripe customer; an email already in use is refused."""
    email = email.strip().lower()
    _check_new_account(email, password, name)
    user_model = get_user_model()
    try:
        # The user row is inserted before Stripe is called, so a concurrent signup with the same
        # email waits on the unique username and then fails here without reaching Stripe.
        with transaction.atomic():
            user = user_model._default_manager.create_user(
                username=email, email=email, password=password, first_name=name[:150]
            )
            customer, stripe_customer = customer_ensure(user=user, name=name)
    except IntegrityError as exc:
        raise BillingError(TAKEN, code="email_taken") from exc
    return user, customer, stripe_customer or {}


def customer_ensure(
    *, user: AbstractBaseUser, name: str = ""
) -> tuple[Customer, StripeDict | None]:
    """The user's Customer, creating the Stripe customer once (keyed by the user's id)."""
    existing = Customer.objects.filter(user_id=user.pk).first()
    if existing and existing.stripe_customer_id:
        return existing, None
    email = getattr(user, "email", "") or ""
    stripe_customer = StripeClient.from_settings().create_customer(
        email=email, name=name, user_id=user.pk, idempotency_key=f"create-customer:user-{user.pk}"
    )
    customer, _ = Customer.objects.update_or_create(
        user_id=user.pk, defaults={"stripe_customer_id": stripe_customer["id"]}
    )
    return customer, stripe_customer


# --- subscriptions ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSubscription:
    subscription: Subscription
    client_secret: str | None


def subscription_create(*, customer: Customer, price_id: str, quantity: int) -> NewSubscription:
    """An incomplete monthly subscription, with ``quantity`` devices on its first invoice."""
    _require_stripe_customer(customer)
    catalog = selectors.price_catalog()
    price = catalog.subscription_price(price_id)
    if price is None:
        raise BillingError(f"Unknown or inactive price: {price_id!r}.", code="unknown_price")
    device = _device_price(catalog.device) if quantity else None
    if customer.subscriptions.filter(status__in=LIVE_STATUSES).exists():
        raise BillingError("This customer already has a subscription.", code="already_subscribed")
    # Counting earlier attempts lets a user retry after an abandoned (incomplete) subscription,
    # while a double-submitted request reuses the first one.
    attempt = customer.subscriptions.count()
    data = StripeClient.from_settings().create_subscription(
        customer_id=str(customer.stripe_customer_id),
        price_id=price["id"],
        device_price_id=device["id"] if device else "",
        device_quantity=quantity,
        idempotency_key=(
            f"create-subscription:{customer.stripe_customer_id}:{attempt}:{price['id']}:{quantity}"
        ),
    )
    invoice = data.get("latest_invoice") or {}
    with transaction.atomic():
        subscription = subscription_sync(data, as_of=None)
        if device and isinstance(invoice, dict) and invoice.get("id"):
            _order_on_invoice(customer, device, quantity, invoice["id"])
    secret = (invoice.get("confirmation_secret") or {}).get("client_secret") if invoice else None
    return NewSubscription(subscription=subscription, client_secret=secret)


def _require_stripe_customer(customer: Customer) -> None:
    if not customer.stripe_customer_id:
        raise BillingError("This account is comped and has no Stripe customer.", code="comped")


def _device_price(price: StripeDict | None) -> StripeDict:
    if not price or not price.get("active") or price.get("unit_amount") is None:
        raise BillingError("Devices are not for sale at the moment.", code="no_device_price")
    return price


def _order_on_invoice(
    customer: Customer, price: StripeDict, quantity: int, invoice_id: str
) -> None:
    DeviceOrder.objects.get_or_create(
        invoice_id=invoice_id,
        defaults={
            "customer": customer,
            "quantity": quantity,
            "amount": int(price["unit_amount"]) * quantity,
            "currency": price["currency"],
            "price_id": price["id"],
            "idempotency_key": f"invoice:{invoice_id}",
        },
    )


def _period_end(data: StripeDict) -> datetime | None:
    """Periods live on subscription items since API 2025-03-31; older payloads on the root."""
    items = (data.get("items") or {}).get("data") or []
    ends = [item.get("current_period_end") for item in items if item.get("current_period_end")]
    return _timestamp(max(ends) if ends else data.get("current_period_end"))


def _first_price(data: StripeDict) -> tuple[str, int]:
    items = (data.get("items") or {}).get("data") or []
    if not items:
        return "", 1
    price = items[0].get("price") or {}
    price_id = price if isinstance(price, str) else price.get("id", "")
    return price_id, int(items[0].get("quantity") or 1)


def subscription_sync(data: StripeDict, *, as_of: datetime | None) -> Subscription:
    """Store a Stripe subscription snapshot unless a newer one was already applied.

    ``as_of`` is the ``created`` of the event carrying the snapshot, or None for a fresh API
    response, which counts as of a moment ago (``API_SNAPSHOT_MARGIN`` absorbs clock skew and
    Stripe's one-second event timestamps). An older event, or any change to a canceled
    subscription, is ignored: Stripe never brings a canceled subscription back, and events may
    arrive in any order.
    """
    as_of = as_of or timezone.now() - API_SNAPSHOT_MARGIN
    customer = Customer.objects.get(stripe_customer_id=data["customer"])
    subscription, _ = Subscription.objects.select_for_update().get_or_create(
        stripe_subscription_id=data["id"],
        defaults={"customer": customer, "status": data["status"]},
    )
    if _is_stale(subscription, as_of):
        logger.info("Ignoring a stale snapshot of %s", subscription.stripe_subscription_id)
        return subscription
    _set_status(subscription, data["status"], as_of)
    subscription.price_id, subscription.quantity = _first_price(data)
    subscription.current_period_end = _period_end(data)
    subscription.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
    subscription.canceled_at = _timestamp(data.get("canceled_at"))
    subscription.last_event_created = as_of
    subscription.save()
    return subscription


def _is_stale(subscription: Subscription, as_of: datetime) -> bool:
    last = subscription.last_event_created
    if last is None:
        return False
    return subscription.status in Subscription.TERMINAL or as_of < last


def _set_status(subscription: Subscription, status: str, at: datetime) -> None:
    if status == Subscription.Status.PAST_DUE and subscription.past_due_since is None:
        subscription.past_due_since = at
    elif status != Subscription.Status.PAST_DUE:
        subscription.past_due_since = None
    subscription.status = status


def subscription_set_status(
    subscription_id: str, status: str, *, as_of: datetime, only_from: tuple[str, ...]
) -> Subscription | None:
    """Move a known subscription to ``status`` if it is in ``only_from`` and the event is new."""
    subscription = (
        Subscription.objects.select_for_update()
        .filter(stripe_subscription_id=subscription_id)
        .first()
    )
    if subscription is None or _is_stale(subscription, as_of):
        return subscription
    if subscription.status in only_from:
        _set_status(subscription, status, as_of)
    subscription.last_event_created = as_of
    subscription.save()
    return subscription


def subscription_cancel(
    *, customer: Customer, subscription_id: str, at_period_end: bool
) -> Subscription:
    subscription = _owned_subscription(customer, subscription_id)
    client = StripeClient.from_settings()
    if at_period_end:
        data = client.set_cancel_at_period_end(
            subscription.stripe_subscription_id,
            cancel=True,
            idempotency_key=f"cancel-subscription:{subscription.stripe_subscription_id}:period-end",
        )
    else:
        data = client.cancel_subscription_now(subscription.stripe_subscription_id)
    with transaction.atomic():
        return subscription_sync(data, as_of=None)


def subscription_resume(*, customer: Customer, subscription_id: str) -> Subscription:
    """Undo a cancellation at period end (before the period ends)."""
    subscription = _owned_subscription(customer, subscription_id)
    data = StripeClient.from_settings().set_cancel_at_period_end(
        subscription.stripe_subscription_id,
        cancel=False,
        idempotency_key=f"resume-subscription:{subscription.stripe_subscription_id}:{uuid.uuid4()}",
    )
    with transaction.atomic():
        return subscription_sync(data, as_of=None)


def _owned_subscription(customer: Customer, subscription_id: str) -> Subscription:
    subscription = customer.subscriptions.filter(stripe_subscription_id=subscription_id).first()
    if subscription is None:
        raise BillingError("No such subscription.", code="not_found", status_code=404)
    if subscription.status in Subscription.TERMINAL:
        raise BillingError("This subscription has already ended.", code="ended")
    return subscription


def invoice_preview(*, customer: Customer, subscription_id: str) -> StripeDict:
    subscription = _owned_subscription(customer, subscription_id)
    # A preview changes nothing at Stripe: each request is its own action.
    return StripeClient.from_settings().preview_invoice(
        customer_id=str(customer.stripe_customer_id),
        subscription_id=subscription.stripe_subscription_id,
        idempotency_key=f"invoice-preview:{subscription.stripe_subscription_id}:{uuid.uuid4()}",
    )


def portal_session(*, customer: Customer, return_url: str) -> str:
    _require_stripe_customer(customer)
    session = StripeClient.from_settings().create_portal_session(
        customer_id=str(customer.stripe_customer_id),
        return_url=return_url,
        idempotency_key=f"customer-portal:{customer.stripe_customer_id}:{uuid.uuid4()}",
    )
    return str(session["url"])


# --- devices bought later (/charge) -------------------------------------------------------


@dataclass(frozen=True)
class ChargeResult:
    order: DeviceOrder
    charge: StripeDict | None = None
    client_secret: str | None = None


def devices_charge(*, customer: Customer, token: str, quantity: int) -> ChargeResult:
    """Pay for ``quantity`` devices with a card token; the amount comes from the device price."""
    _require_stripe_customer(customer)
    price = _device_price(selectors.price_catalog().device)
    # Tokens are single-use, so the token names the purchase: a repeat finds the same order.
    token_digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    order, _ = DeviceOrder.objects.get_or_create(
        idempotency_key=f"charge:{customer.stripe_customer_id}:{token_digest}",
        defaults={
            "customer": customer,
            "quantity": quantity,
            "amount": int(price["unit_amount"]) * quantity,
            "currency": price["currency"],
            "price_id": price["id"],
        },
    )
    if order.quantity != quantity:
        raise BillingError("This card token was already used for another order.", code="token_used")
    client = StripeClient.from_settings()
    method = client.payment_method_from_token(
        token, idempotency_key=f"device-order:{order.pk}:payment-method"
    )
    try:
        intent = client.confirm_payment(
            amount=order.amount,
            currency=order.currency,
            customer_id=str(customer.stripe_customer_id),
            payment_method_id=method["id"],
            description=f"{quantity} x GRO-01 device",
            metadata={"device_order_id": str(order.pk)},
            idempotency_key=f"device-order:{order.pk}:payment-intent",
        )
    except CardDeclined as exc:
        DeviceOrder.objects.filter(pk=order.pk).exclude(status=DeviceOrder.Status.PAID).update(
            status=DeviceOrder.Status.FAILED,
            failure_message=exc.message[:500],
            payment_intent_id=exc.payment_intent_id or order.payment_intent_id,
        )
        raise
    return _apply_intent(order, intent)


def _apply_intent(order: DeviceOrder, intent: StripeDict) -> ChargeResult:
    DeviceOrder.objects.filter(pk=order.pk).update(payment_intent_id=intent["id"])
    status = intent.get("status")
    if status == "succeeded":
        order = device_order_paid(order_id=order.pk)
        charge = intent.get("latest_charge")
        return ChargeResult(order=order, charge=charge if isinstance(charge, dict) else None)
    if status == "requires_action":
        DeviceOrder.objects.filter(pk=order.pk, status=DeviceOrder.Status.PENDING).update(
            status=DeviceOrder.Status.REQUIRES_ACTION
        )
        order.refresh_from_db()
        return ChargeResult(order=order, client_secret=intent.get("client_secret"))
    order.refresh_from_db()
    return ChargeResult(order=order)


def device_order_paid(*, order_id: int) -> DeviceOrder:
    """Mark an order paid and give it its devices, exactly once (API response or webhook)."""
    with transaction.atomic():
        order = DeviceOrder.objects.select_for_update().select_related("customer").get(pk=order_id)
        if order.status == DeviceOrder.Status.PAID:
            return order
        order.status = DeviceOrder.Status.PAID
        order.paid_at = timezone.now()
        order.failure_message = ""
        order.save()
        signals.device_order_paid.send(
            sender=DeviceOrder, order=order, owner_id=order.customer.user_id
        )
    return order


def device_order_failed(*, order_id: int, message: str) -> None:
    DeviceOrder.objects.filter(pk=order_id).exclude(status=DeviceOrder.Status.PAID).update(
        status=DeviceOrder.Status.FAILED, failure_message=message[:500]
    )
