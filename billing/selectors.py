"""Reads: configured prices (from Stripe, cached) and the caller's billing rows."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db.models import QuerySet
from redis import RedisError

from billing.models import Customer, DeviceOrder, Subscription
from billing.stripe_gateway import InvalidRequest, StripeClient, StripeDict

logger = logging.getLogger(__name__)

PRICES_CACHE_SECONDS = 300
User = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True)
class PriceCatalog:
    """The configured prices as Stripe returned them, in configuration order."""

    subscription: list[StripeDict] = field(default_factory=list)
    device: StripeDict | None = None

    def subscription_price(self, price_id: str) -> StripeDict | None:
        """An active configured subscription price, by its Stripe id."""
        for price in self.subscription:
            if price["id"] == price_id and price.get("active"):
                return price
        return None

    def as_list(self) -> list[StripeDict]:
        return [*self.subscription, *([self.device] if self.device else [])]


def _fetch(refs: list[str]) -> dict[str, StripeDict]:
    """Prices by configured reference: ``price_...`` ids are retrieved, the rest are lookup keys."""
    client = StripeClient.from_settings()
    found: dict[str, StripeDict] = {}
    for ref in refs:
        if ref.startswith("price_"):
            try:
                found[ref] = client.retrieve_price(ref)
            except InvalidRequest as exc:
                logger.error("Configured Stripe price %s: %s", ref, exc.message)
    lookup_keys = [ref for ref in refs if not ref.startswith("price_")]
    for price in client.prices_by_lookup_key(lookup_keys):
        found[price["lookup_key"]] = price
    missing = set(refs) - set(found)
    if missing:
        logger.error("Configured Stripe prices not found: %s", ", ".join(sorted(missing)))
    return found


def _cache_key(refs: list[str]) -> str:
    digest = hashlib.sha256("\n".join([settings.STRIPE_API_BASE, *refs]).encode()).hexdigest()
    return f"billing:prices:{digest[:24]}"


def price_catalog() -> PriceCatalog:
    """The subscription and device prices named in settings, cached for a few minutes."""
    subscription_refs = list(settings.STRIPE_SUBSCRIPTION_PRICES)
    refs = [*subscription_refs, settings.STRIPE_DEVICE_PRICE]
    key = _cache_key(refs)
    try:
        found: dict[str, StripeDict] | None = cache.get(key)
    except RedisError as exc:  # the cache is an optimisation: without Redis, ask Stripe
        logger.warning("price cache unavailable: %s", exc)
        found = _fetch(refs)
    if found is None:
        found = _fetch(refs)
        with contextlib.suppress(RedisError):
            cache.set(key, found, PRICES_CACHE_SECONDS)
    return PriceCatalog(
        subscription=[found[ref] for ref in subscription_refs if ref in found],
        device=found.get(settings.STRIPE_DEVICE_PRICE),
    )


def forget_prices() -> None:
    refs = [*settings.STRIPE_SUBSCRIPTION_PRICES, settings.STRIPE_DEVICE_PRICE]
    cache.delete(_cache_key(refs))


def customer_for(user: User) -> Customer | None:
    if not user.is_authenticated:
        return None
    return Customer.objects.filter(user_id=user.pk).first()


def subscription_list(*, customer: Customer) -> QuerySet[Subscription]:
    return Subscription.objects.filter(customer=customer)


def device_order_list(*, customer: Customer) -> QuerySet[DeviceOrder]:
    return DeviceOrder.objects.filter(customer=customer)


def invoice_subscription_id(invoice: dict[str, Any]) -> str:
    """The subscription an invoice bills (``parent.subscription_details`` since 2025-03-31)."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    subscription = details.get("subscription") or invoice.get("subscription") or ""
    return subscription if isinstance(subscription, str) else subscription.get("id", "")
