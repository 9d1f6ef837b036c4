"""The account page (subscription, next invoice, devices and orders, API tokens) and the
register page (the four signup steps, driven by static/js/register.js and Stripe.js)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts import timezones
from accounts.models import ApiToken, Role, available_time_zones
from billing import selectors, services
from billing.errors import BillingError
from billing.gating import has_active_service
from billing.models import Customer, Subscription
from billing.stripe_gateway import StripeGatewayError, is_configured
from devices import selectors as device_selectors
from growalert.csp import stripe_page
from growalert.pages.forms import FreeAccountForm
from shared.auth import acting_of, owner_of

logger = logging.getLogger(__name__)


def _live(customer: Customer | None) -> Subscription | None:
    if customer is None:
        return None
    return customer.subscriptions.filter(status__in=services.LIVE_STATUSES).first()


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _acting_account(request: HttpRequest) -> int | None:
    """The account the signed-in member acts in: their tokens are listed and made for it."""
    acting = acting_of(request)
    return acting.account_id if acting else None


def _money(minor_units: int | None, currency: str | None) -> str:
    return f"{(minor_units or 0) / 100:.2f} {(currency or '').upper()}".strip()


def _next_invoice(customer: Customer | None) -> dict[str, Any] | None:
    live = _live(customer)
    if customer is None or live is None or live.cancel_at_period_end:
        return None
    try:
        return services.invoice_preview(
            customer=customer, subscription_id=live.stripe_subscription_id
        )
    except (BillingError, StripeGatewayError) as exc:
        logger.info("No invoice preview for %s: %s", customer.pk, exc)
        return {"unavailable": True}


@stripe_page
@login_required
def account(request: HttpRequest) -> HttpResponse:
    acting = acting_of(request)
    is_owner = acting is None or acting.role == Role.OWNER  # billing is the owner's alone
    customer = selectors.customer_for(owner_of(request)) if is_owner else None
    invoice = _next_invoice(customer)
    context = {
        "is_owner": is_owner,
        "acting": acting,
        "customer": customer,
        "served": has_active_service(owner_of(request)),
        "subscriptions": selectors.subscription_list(customer=customer) if customer else [],
        "live": _live(customer),
        "invoice": invoice,
        "invoice_total": _money(invoice.get("amount_due"), invoice.get("currency"))
        if invoice and not invoice.get("unavailable")
        else "",
        "orders": [
            (order, _money(order.amount, order.currency))
            for order in (selectors.device_order_list(customer=customer) if customer else [])
        ],
        "devices": device_selectors.device_list(owner=owner_of(request)),
        "tokens": account_selectors.api_token_list(
            owner=_user(request), account_id=_acting_account(request)
        ),
        "new_token": request.session.pop("new-api-token", None),
        "token_name_max": ApiToken.NAME_MAX_LENGTH,
        "stripe_configured": is_configured(),
        "max_devices": settings.BILLING_MAX_DEVICES_PER_ORDER,
        "time_zones": sorted(available_time_zones()),
        "time_zone": timezones.zone_for(_user(request).pk),
    }
    return render(request, "pages/account.html", context)


@login_required
@require_POST
def profile(request: HttpRequest) -> HttpResponseRedirect:
    """The time zone every time on the pages is shown in."""
    try:
        saved = account_services.profile_update(
            user=_user(request), time_zone=request.POST.get("time_zone", "")[:64]
        )
    except ValidationError:
        messages.error(request, "Choose a time zone from the list (for example Europe/Amsterdam).")
    else:
        request.session[timezones.SESSION_KEY] = saved.time_zone
        messages.success(request, f"Times are now shown in {saved.time_zone}.")
    return redirect("pages:account")


@login_required
@require_POST
def subscription_cancel(request: HttpRequest) -> HttpResponseRedirect:
    customer = selectors.customer_for(owner_of(request))
    live = _live(customer)
    if customer is None or live is None:
        messages.error(request, "There is no subscription to cancel.")
        return redirect("pages:account")
    try:
        services.subscription_cancel(
            customer=customer, subscription_id=live.stripe_subscription_id, at_period_end=True
        )
    except (BillingError, StripeGatewayError) as exc:
        messages.error(request, f"Could not cancel: {exc}")
    else:
        messages.success(request, "Your subscription will end at the end of the current period.")
    return redirect("pages:account")


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponseRedirect:
    """A new named API token; it is shown once, on the page this redirects to."""
    try:
        _, secret = account_services.api_token_create(
            owner=_user(request),
            name=request.POST.get("name", ""),
            account_id=_acting_account(request),
        )
    except account_services.TokenError as exc:
        messages.error(request, str(exc))
    else:
        request.session["new-api-token"] = secret
        messages.success(request, "New API token created. Copy it now: it is shown only once.")
    return redirect("pages:account")


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponseRedirect:
    revoked = account_services.api_token_revoke(
        owner=_user(request), token_id=token_id, account_id=_acting_account(request)
    )
    messages.success(request, "API token revoked." if revoked else "There was no such API token.")
    return redirect("pages:account")


def register(request: HttpRequest) -> HttpResponse:
    """Signup: the four steps with Stripe, or, on a deployment without Stripe, a free account
    (comped) from one form."""
    if not is_configured():
        return _register_free(request)
    response: HttpResponse = _register_paid(request)
    return response


def _register_free(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("pages:dashboard")
    form = FreeAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.free_account_register(**form.cleaned_data)
        except BillingError as exc:
            field = "email" if exc.code == "email_taken" else "password"
            form.add_error(field, exc.message)
        else:
            assert isinstance(user, User)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to growalert. Start with a source or a device.")
            return redirect("pages:dashboard")
    status = 400 if form.errors else 200
    return render(request, "pages/register_free.html", {"form": form}, status=status)


@stripe_page
def _register_paid(request: HttpRequest) -> HttpResponse:
    signed_in = request.user.is_authenticated
    customer = selectors.customer_for(owner_of(request)) if signed_in else None
    if customer and customer.subscriptions.filter(status__in=services.LIVE_STATUSES).exists():
        messages.info(request, "You already have a subscription.")
        return redirect("pages:dashboard")
    context = {
        "has_customer": bool(customer and customer.stripe_customer_id),
        "max_devices": settings.BILLING_MAX_DEVICES_PER_ORDER,
    }
    return render(request, "pages/register.html", context)
