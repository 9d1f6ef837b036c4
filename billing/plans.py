"""What a customer's plan entitles it to, decided from local rows (no Stripe call).

Today one entitlement: the shortest check interval its monitors may have. A plan is a
subscription's price (``Subscription.price_id``); ``MONITOR_MIN_INTERVAL_BY_PRICE`` maps prices
to floors in seconds, and an account with no mapped subscription that serves it (comped, staff,
none) has ``MONITOR_MIN_INTERVAL_SECONDS``. Of several mapped subscriptions the shortest floor
wins: the customer pays for it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from billing.models import Subscription


def min_interval_for(user: AbstractBaseUser) -> timedelta:
    """The shortest check interval ``user``'s plan allows."""
    by_price: dict[str, float] = settings.MONITOR_MIN_INTERVAL_BY_PRICE
    floors: list[float] = []
    if by_price:
        prices = Subscription.objects.filter(
            customer__user_id=user.pk, status__in=Subscription.SERVED
        ).values_list("price_id", flat=True)
        floors = [by_price[price] for price in prices if price in by_price]
    return timedelta(seconds=min(floors) if floors else settings.MONITOR_MIN_INTERVAL_SECONDS)
