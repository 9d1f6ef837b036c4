"""Stripe webhook events: stored once by id, then dispatched to a handler by type.

Each event's payload is a snapshot at ``event.created``; handlers apply it only if nothing newer
was applied already (see ``services.subscription_sync``), so events arriving out of order never
move a subscription backwards. Handlers never call Stripe back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from billing import selectors, services
from billing.models import Customer, DeviceOrder, StripeEvent, Subscription
from billing.stripe_gateway import StripeDict

logger = logging.getLogger(__name__)

Status = Subscription.Status
Handler = Callable[[StripeDict, datetime], None]


def _subscription_changed(obj: StripeDict, created: datetime) -> None:
    if not Customer.objects.filter(stripe_customer_id=obj.get("customer")).exists():
        # Not one of ours (another integration on the same Stripe account): nothing to sync.
        logger.info("Subscription %s belongs to an unknown customer", obj.get("id"))
        return
    services.subscription_sync(obj, as_of=created)


def _invoice_paid(obj: StripeDict, created: datetime) -> None:
    subscription_id = selectors.invoice_subscription_id(obj)
    if subscription_id:
        services.subscription_set_status(
            subscription_id,
            Status.ACTIVE,
            as_of=created,
            only_from=(Status.INCOMPLETE, Status.PAST_DUE, Status.UNPAID),
        )
    order = DeviceOrder.objects.filter(invoice_id=obj.get("id")).first()
    if order:
        services.device_order_paid(order_id=order.pk)


def _invoice_payment_failed(obj: StripeDict, created: datetime) -> None:
    subscription_id = selectors.invoice_subscription_id(obj)
    if subscription_id:
        # A failed first invoice leaves the subscription incomplete; a failed renewal makes it
        # past_due, which starts the grace period.
        services.subscription_set_status(
            subscription_id, Status.PAST_DUE, as_of=created, only_from=(Status.ACTIVE,)
        )


def _invoice_payment_action_required(obj: StripeDict, created: datetime) -> None:
    # Stripe emails the customer (when enabled) and the subscription's own events follow.
    logger.info("Invoice %s needs customer action (3-D Secure)", obj.get("id"))


def _order_for_intent(obj: StripeDict) -> DeviceOrder | None:
    order_id = (obj.get("metadata") or {}).get("device_order_id", "")
    orders = DeviceOrder.objects.filter(payment_intent_id=obj.get("id"))
    if order_id.isdigit():
        orders = DeviceOrder.objects.filter(pk=int(order_id)) | orders
    return orders.first()


def _payment_intent_succeeded(obj: StripeDict, created: datetime) -> None:
    order = _order_for_intent(obj)
    if order:
        services.device_order_paid(order_id=order.pk)


def _payment_intent_failed(obj: StripeDict, created: datetime) -> None:
    order = _order_for_intent(obj)
    if order:
        error = obj.get("last_payment_error") or {}
        services.device_order_failed(order_id=order.pk, message=error.get("message", "failed"))


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "invoice.payment_action_required": _invoice_payment_action_required,
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
}


@dataclass(frozen=True)
class Receipt:
    event: StripeEvent
    duplicate: bool


def event_receive(event: StripeDict) -> Receipt:
    """Store a verified event once and process it; a repeat of a handled event does nothing.

    A failed event is processed again when Stripe retries it: the row lock serialises
    concurrent deliveries of the same id.
    """
    created = datetime.fromtimestamp(int(event.get("created") or 0), tz=UTC)
    with transaction.atomic():
        stored, is_new = StripeEvent.objects.select_for_update().get_or_create(
            stripe_event_id=event["id"],
            defaults={
                "type": event["type"],
                "api_version": event.get("api_version") or "",
                "created": created,
                "livemode": bool(event.get("livemode")),
                "payload": event,
                "status": StripeEvent.Status.FAILED,
            },
        )
        if not is_new and stored.status != StripeEvent.Status.FAILED:
            return Receipt(event=stored, duplicate=True)
        _process(stored, event, created)
    return Receipt(event=stored, duplicate=False)


def _process(stored: StripeEvent, event: StripeDict, created: datetime) -> None:
    handler = HANDLERS.get(stored.type)
    stored.attempts += 1
    stored.processed_at = timezone.now()
    if handler is None:
        stored.status, stored.error = StripeEvent.Status.IGNORED, ""
        stored.save()
        return
    try:
        with transaction.atomic():
            handler((event.get("data") or {}).get("object") or {}, created)
    except Exception as exc:
        logger.exception("Stripe event %s (%s) failed", stored.stripe_event_id, stored.type)
        stored.status, stored.error = StripeEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        stored.status, stored.error = StripeEvent.Status.PROCESSED, ""
    stored.save()
