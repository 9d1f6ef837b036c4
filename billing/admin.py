"""Admin for billing: customers (comp an account here), subscriptions, orders, events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from billing.models import Customer, DeviceOrder, StripeEvent, Subscription

# The admin classes are generic for django-stubs only (no django_stubs_ext monkeypatch at runtime).
if TYPE_CHECKING:
    CustomerAdminBase = admin.ModelAdmin[Customer]
    SubscriptionAdminBase = admin.ModelAdmin[Subscription]
    DeviceOrderAdminBase = admin.ModelAdmin[DeviceOrder]
    StripeEventAdminBase = admin.ModelAdmin[StripeEvent]
    SubscriptionInlineBase = admin.TabularInline[Subscription, Customer]
else:
    CustomerAdminBase = SubscriptionAdminBase = DeviceOrderAdminBase = admin.ModelAdmin
    StripeEventAdminBase = admin.ModelAdmin
    SubscriptionInlineBase = admin.TabularInline


class SubscriptionInline(SubscriptionInlineBase):
    model = Subscription
    extra = 0
    fields = ["stripe_subscription_id", "status", "price_id", "current_period_end"]
    readonly_fields = ["stripe_subscription_id", "status", "price_id", "current_period_end"]
    can_delete = False


@admin.register(Customer)
class CustomerAdmin(CustomerAdminBase):
    list_display = ["user", "stripe_customer_id", "comped", "created_at"]
    list_filter = ["comped"]
    search_fields = ["user__username", "user__email", "stripe_customer_id"]
    raw_id_fields = ["user"]
    inlines = [SubscriptionInline]


@admin.register(Subscription)
class SubscriptionAdmin(SubscriptionAdminBase):
    list_display = [
        "stripe_subscription_id", "customer", "status", "quantity", "current_period_end",
        "cancel_at_period_end", "past_due_since",
    ]  # fmt: skip
    list_filter = ["status", "cancel_at_period_end"]
    search_fields = [
        "stripe_subscription_id",
        "customer__stripe_customer_id",
        "customer__user__email",
    ]
    raw_id_fields = ["customer"]
    readonly_fields = ["last_event_created", "created_at", "updated_at"]


@admin.register(DeviceOrder)
class DeviceOrderAdmin(DeviceOrderAdminBase):
    list_display = [
        "id",
        "customer",
        "quantity",
        "amount",
        "currency",
        "status",
        "created_at",
        "paid_at",
    ]
    list_filter = ["status", "currency"]
    search_fields = ["customer__user__email", "payment_intent_id", "invoice_id"]
    raw_id_fields = ["customer"]
    readonly_fields = ["idempotency_key", "created_at", "paid_at"]


@admin.register(StripeEvent)
class StripeEventAdmin(StripeEventAdminBase):
    list_display = ["stripe_event_id", "type", "status", "created", "received_at", "attempts"]
    list_filter = ["status", "type"]
    search_fields = ["stripe_event_id", "type"]
    readonly_fields = [
        "stripe_event_id", "type", "api_version", "created", "livemode", "payload", "status",
        "error", "attempts", "received_at", "processed_at",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
