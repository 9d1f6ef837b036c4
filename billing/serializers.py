"""Input validation and output shapes of the customer (billing) API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from billing.gating import has_active_service
from billing.models import Customer, DeviceOrder, Subscription


def _max_devices() -> int:
    return int(settings.BILLING_MAX_DEVICES_PER_ORDER)


class CreateCustomerInput(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=150)
    password = serializers.CharField(
        max_length=128, trim_whitespace=False, style={"input_type": "password"}
    )
    name = serializers.CharField(max_length=150, required=False, default="", allow_blank=True)


class CreateSubscriptionInput(serializers.Serializer[Any]):
    priceId = serializers.CharField(max_length=255)
    quantity = serializers.IntegerField(required=False, default=0, min_value=0)

    def validate_quantity(self, value: int) -> int:
        if value > _max_devices():
            raise serializers.ValidationError(f"at most {_max_devices()} devices per order")
        return value


class ChargeInput(serializers.Serializer[Any]):
    token = serializers.RegexField(r"^tok_[A-Za-z0-9_]+$", max_length=255)
    quantity = serializers.IntegerField(min_value=1)

    def validate_quantity(self, value: int) -> int:
        if value > _max_devices():
            raise serializers.ValidationError(f"at most {_max_devices()} devices per order")
        return value


class CancelInput(serializers.Serializer[Any]):
    atPeriodEnd = serializers.BooleanField(required=False, default=True)


class InvoicePreviewQuery(serializers.Serializer[Any]):
    subscription = serializers.CharField(
        max_length=255, required=False, default="", allow_blank=True
    )


class PortalInput(serializers.Serializer[Any]):
    returnPath = serializers.RegexField(
        r"^/(?![/\\])\S*$", max_length=500, required=False, default="/"
    )


class SubscriptionOutput(serializers.ModelSerializer[Subscription]):
    id = serializers.CharField(source="stripe_subscription_id")

    class Meta:
        model = Subscription
        fields = [
            "id", "status", "price_id", "quantity", "current_period_end",
            "cancel_at_period_end", "canceled_at", "past_due_since", "created_at",
        ]  # fmt: skip


class CustomerOutput(serializers.ModelSerializer[Customer]):
    """The caller's own customer record (no Stripe call: what growalert keeps)."""

    id = serializers.CharField(source="stripe_customer_id", allow_null=True)
    email = serializers.EmailField(source="user.email")
    username = serializers.CharField(source="user.username")
    served = serializers.SerializerMethodField()
    subscriptions = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = ["id", "email", "username", "comped", "served", "created_at", "subscriptions"]

    def get_served(self, customer: Customer) -> bool:
        return has_active_service(customer.user)

    def get_subscriptions(self, customer: Customer) -> list[dict[str, Any]]:
        return list(SubscriptionOutput(customer.subscriptions.all(), many=True).data)


class CustomerEnvelopeOutput(serializers.Serializer[Any]):
    customer = CustomerOutput()


class DeviceOrderOutput(serializers.ModelSerializer[DeviceOrder]):
    class Meta:
        model = DeviceOrder
        fields = [
            "id", "quantity", "amount", "currency", "status", "failure_message",
            "created_at", "paid_at",
        ]  # fmt: skip


# The answers' envelopes, for the schema: each list or row sits under a named key.
class SubscriptionListOutput(serializers.Serializer[Any]):
    subscriptions = SubscriptionOutput(many=True)


class SubscriptionEnvelopeOutput(serializers.Serializer[Any]):
    subscription = SubscriptionOutput()


class DeviceOrderListOutput(serializers.Serializer[Any]):
    orders = DeviceOrderOutput(many=True)
