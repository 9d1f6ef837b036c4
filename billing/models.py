"""Customers, subscriptions, device orders and the received Stripe events (devices: ``devices``).

Stripe is the source of truth for money; these rows are what growalert needs locally to decide,
without calling Stripe, whether an account is served (see ``billing.gating``), and to show orders
and devices. Amounts are integer minor units (cents) in the price's currency.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Customer(models.Model):
    """A growalert account's billing identity: its Stripe customer, or a comped account."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="billing_customer"
    )
    # NULL for comped accounts that never went through Stripe (several NULLs may coexist).
    stripe_customer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    comped = models.BooleanField(
        default=False, help_text="Served without a subscription (partners, staff demos...)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.stripe_customer_id or f"comped customer of user {self.user_id}"


class Subscription(models.Model):
    """A Stripe subscription, kept in sync by the API responses and the webhook."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", "Incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"
        UNPAID = "unpaid", "Unpaid"
        PAUSED = "paused", "Paused"

    # Stripe never moves a subscription out of these.
    TERMINAL = frozenset({Status.CANCELED, Status.INCOMPLETE_EXPIRED})
    SERVED = frozenset({Status.ACTIVE, Status.TRIALING})

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="subscriptions")
    stripe_subscription_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    price_id = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # When the subscription last became past_due: the grace period runs from here.
    past_due_since = models.DateTimeField(null=True, blank=True)
    # ``created`` of the newest Stripe event applied: older events must not move it backwards.
    last_event_created = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return f"{self.stripe_subscription_id} ({self.status})"


class DeviceOrder(models.Model):
    """GRO-01 devices bought on the first invoice or later through ``/charge``."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        REQUIRES_ACTION = "requires_action", "Requires action (3-D Secure)"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="device_orders")
    quantity = models.PositiveIntegerField()
    amount = models.PositiveBigIntegerField(help_text="Total in minor units (cents).")
    currency = models.CharField(max_length=3)
    price_id = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # One of these links the order to Stripe: a PaymentIntent (/charge) or the subscription's
    # first invoice (devices ordered at signup).
    payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    invoice_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # The business action that created the order (e.g. ``charge:cus_..:tok_..``): a repeated
    # request finds the same order instead of paying twice.
    idempotency_key = models.CharField(max_length=255, unique=True)
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.quantity} x GRO-01 ({self.status})"


class StripeEvent(models.Model):
    """Every verified webhook event, stored once by id with how its processing went."""

    class Status(models.TextChoices):
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (type not handled)"
        FAILED = "failed", "Failed"

    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    api_version = models.CharField(max_length=50, blank=True)
    created = models.DateTimeField(help_text="When Stripe created the event.")
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"
