"""The customer API: thin views over ``billing.services`` and ``billing.selectors``.

Errors are JSON ``{"error": {"message": ..., "code": ...}}`` (the shape Stripe's own samples and
Stripe.js clients expect), with 400 for bad input, 401 without a customer, 402 on a card decline
and 503 when Stripe is unreachable or not configured.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors, services, webhooks
from billing.errors import BillingError, NoCustomer
from billing.models import Customer
from billing.serializers import (
    CancelInput,
    ChargeInput,
    CreateCustomerInput,
    CreateSubscriptionInput,
    CustomerEnvelopeOutput,
    CustomerOutput,
    DeviceOrderListOutput,
    DeviceOrderOutput,
    InvoicePreviewQuery,
    PortalInput,
    SubscriptionEnvelopeOutput,
    SubscriptionListOutput,
    SubscriptionOutput,
)
from billing.stripe_gateway import (
    CardDeclined,
    InvalidRequest,
    InvalidSignature,
    NotConfigured,
    StripeGatewayError,
    StripeUnavailable,
    ensure_configured,
    is_configured,
    verify_webhook,
)
from shared.auth import owner_of
from shared.errors import api_exception_handler
from shared.links import absolute_url

logger = logging.getLogger(__name__)

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
CUSTOMER_COOKIE = "customer"
CUSTOMER_COOKIE_SALT = "billing.customer"
CUSTOMER_COOKIE_MAX_AGE = 60 * 60 * 24 * 365


def error_body(message: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "code": code, **extra}}


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _flatten(value, f"{key}: ")]
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def billing_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, BillingError):
        return Response(error_body(exc.message, exc.code), status=exc.status_code)
    if isinstance(exc, CardDeclined):
        body = error_body(exc.message, exc.code or "card_declined", declineCode=exc.decline_code)
        return Response(body, status=status.HTTP_402_PAYMENT_REQUIRED)
    if isinstance(exc, InvalidRequest):
        return Response(error_body(exc.message, exc.code or "invalid_request"), status=400)
    if isinstance(exc, NotConfigured | StripeUnavailable | StripeGatewayError):
        return Response(error_body(exc.message, exc.code or "unavailable"), status=503)
    response = api_exception_handler(exc, context)
    if response is not None and isinstance(exc, APIException):
        if isinstance(exc, ValidationError):
            message = "; ".join(_flatten(exc.detail))
            response.data = error_body(message, "invalid", fields=response.data)
        else:
            response.data = error_body(str(exc.detail), str(exc.get_codes()))
    return response


class BillingView(APIView):
    permission_classes = [AllowAny]
    # Endpoints that act at Stripe answer 503 not_configured when billing is off, before
    # anything else (caller, body); local reads (lists, ingest keys) keep working.
    needs_stripe = True

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if self.needs_stripe:
            ensure_configured()
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self) -> Any:
        return billing_exception_handler

    def customer(self, request: Request) -> Customer:
        if not request.user.is_authenticated:
            raise NoCustomer()
        customer = selectors.customer_for(owner_of(request))  # the account holder's
        if customer is None:
            raise NoCustomer()
        return customer


def _validated(serializer_class: Any, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ConfigView(BillingView):
    """GET /config: the publishable key and the configured prices."""

    authentication_classes = []
    needs_stripe = False

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="Publishable key and configured prices",
        tags=["billing"],
    )
    def get(self, request: Request) -> Response:
        get_token(request._request)  # session clients get their CSRF cookie here
        if not is_configured():
            body: dict[str, Any] = {
                "publishableKey": "",
                "prices": [],
                "devicePriceId": None,
                "configured": False,
            }
            return Response(body)
        catalog = selectors.price_catalog()
        return Response(
            {
                "publishableKey": settings.STRIPE_PUBLISHABLE_KEY,
                "prices": catalog.as_list(),
                "devicePriceId": catalog.device["id"] if catalog.device else None,
                "configured": True,
            }
        )


class CreateCustomerView(BillingView):
    """POST /create-customer: a growalert account and its Stripe customer; logs the user in."""

    @extend_schema(request=CreateCustomerInput, responses=OpenApiTypes.OBJECT, tags=["billing"])
    def post(self, request: Request) -> Response:
        if request.user.is_authenticated:
            customer, stripe_customer = services.customer_ensure(user=owner_of(request))
            body = stripe_customer or {"id": customer.stripe_customer_id, "object": "customer"}
            return self._respond(request, customer, body)
        data = _validated(CreateCustomerInput, request.data)
        user, customer, stripe_customer = services.customer_register(**data)
        login(request._request, cast(User, user), backend=MODEL_BACKEND)
        return self._respond(request, customer, stripe_customer)

    def _respond(self, request: Request, customer: Customer, body: dict[str, Any]) -> Response:
        response = Response({"customer": body})
        if customer.stripe_customer_id:
            response.set_signed_cookie(
                CUSTOMER_COOKIE,
                customer.stripe_customer_id,
                salt=CUSTOMER_COOKIE_SALT,
                max_age=CUSTOMER_COOKIE_MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response


class CreateSubscriptionView(BillingView):
    """POST /create-subscription: an incomplete subscription and its invoice's client secret."""

    @extend_schema(request=CreateSubscriptionInput, responses=OpenApiTypes.OBJECT, tags=["billing"])
    def post(self, request: Request) -> Response:
        customer = self.customer(request)
        data = _validated(CreateSubscriptionInput, request.data)
        new = services.subscription_create(
            customer=customer, price_id=data["priceId"], quantity=data["quantity"]
        )
        return Response(
            {
                "subscriptionId": new.subscription.stripe_subscription_id,
                "clientSecret": new.client_secret,
            }
        )


class ChargeView(BillingView):
    """POST /charge: buy devices with a card token; the server prices the order."""

    @extend_schema(request=ChargeInput, responses=OpenApiTypes.OBJECT, tags=["billing"])
    def post(self, request: Request) -> Response:
        customer = self.customer(request)
        data = _validated(ChargeInput, request.data)
        result = services.devices_charge(
            customer=customer, token=data["token"], quantity=data["quantity"]
        )
        if result.client_secret:
            return Response({"requiresAction": True, "clientSecret": result.client_secret})
        if result.charge is not None:
            return Response(result.charge)
        return Response(
            {"order": DeviceOrderOutput(result.order).data}, status=status.HTTP_202_ACCEPTED
        )


class CustomerView(BillingView):
    """GET /customer: the caller's own customer record (the payments seed's
    ``GET /v1/customer/{id}``, scoped to the caller)."""

    needs_stripe = False

    @extend_schema(responses=CustomerEnvelopeOutput, tags=["billing"], operation_id="customer_own")
    def get(self, request: Request) -> Response:
        return Response({"customer": CustomerOutput(self.customer(request)).data})


class CustomerByIdView(BillingView):
    """GET /customer/<id>: the same record when ``id`` is the caller's Stripe customer id,
    else 404: another customer's id reads nothing."""

    needs_stripe = False

    @extend_schema(
        responses=CustomerEnvelopeOutput, tags=["billing"], operation_id="customer_by_id"
    )
    def get(self, request: Request, customer_id: str) -> Response:
        customer = self.customer(request)
        if customer_id != customer.stripe_customer_id:
            raise BillingError("No such customer.", code="not_found", status_code=404)
        return Response({"customer": CustomerOutput(customer).data})


class SubscriptionListView(BillingView):
    """GET /subscriptions: the caller's subscriptions, newest first."""

    needs_stripe = False

    @extend_schema(responses=SubscriptionListOutput, tags=["billing"])
    def get(self, request: Request) -> Response:
        subscriptions = selectors.subscription_list(customer=self.customer(request))
        return Response({"subscriptions": SubscriptionOutput(subscriptions, many=True).data})


class SubscriptionCancelView(BillingView):
    """POST /subscriptions/<id>/cancel {"atPeriodEnd": true}: cancel at period end, or now."""

    @extend_schema(request=CancelInput, responses=SubscriptionEnvelopeOutput, tags=["billing"])
    def post(self, request: Request, subscription_id: str) -> Response:
        data = _validated(CancelInput, request.data)
        subscription = services.subscription_cancel(
            customer=self.customer(request),
            subscription_id=subscription_id,
            at_period_end=data["atPeriodEnd"],
        )
        return Response({"subscription": SubscriptionOutput(subscription).data})


class SubscriptionResumeView(BillingView):
    """POST /subscriptions/<id>/resume: keep a subscription that was to end at period end."""

    @extend_schema(request=None, responses=SubscriptionEnvelopeOutput, tags=["billing"])
    def post(self, request: Request, subscription_id: str) -> Response:
        subscription = services.subscription_resume(
            customer=self.customer(request), subscription_id=subscription_id
        )
        return Response({"subscription": SubscriptionOutput(subscription).data})


class InvoicePreviewView(BillingView):
    """GET /invoice-preview?subscription=<id>: the next invoice (Stripe's preview)."""

    @extend_schema(
        parameters=[InvoicePreviewQuery],
        responses=OpenApiTypes.OBJECT,
        tags=["billing"],
    )
    def get(self, request: Request) -> Response:
        customer = self.customer(request)
        subscription_id = _validated(InvoicePreviewQuery, request.query_params)["subscription"]
        if not subscription_id:
            live = customer.subscriptions.filter(status__in=services.LIVE_STATUSES).first()
            if live is None:
                raise BillingError("No subscription to preview.", code="no_subscription")
            subscription_id = live.stripe_subscription_id
        invoice = services.invoice_preview(customer=customer, subscription_id=subscription_id)
        return Response({"invoice": invoice})


class CustomerPortalView(BillingView):
    """POST /customer-portal: a Stripe Customer Portal session (JSON url, or 303 for forms)."""

    @extend_schema(
        request=PortalInput,
        responses={
            200: OpenApiTypes.OBJECT,
            303: OpenApiResponse(description="A form post: redirected to the portal."),
        },
        tags=["billing"],
    )
    def post(self, request: Request) -> Response | HttpResponse:
        data = _validated(PortalInput, request.data)
        url = services.portal_session(
            customer=self.customer(request),
            return_url=absolute_url(data["returnPath"]),
        )
        if request.content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
            return HttpResponseRedirect(url, status=status.HTTP_303_SEE_OTHER)
        return Response({"url": url})


class DeviceOrderListView(BillingView):
    """GET /device-orders: the caller's device orders."""

    needs_stripe = False

    @extend_schema(responses=DeviceOrderListOutput, tags=["billing"])
    def get(self, request: Request) -> Response:
        orders = selectors.device_order_list(customer=self.customer(request))
        return Response({"orders": DeviceOrderOutput(orders, many=True).data})


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> JsonResponse:
    """POST /webhook: a Stripe event, verified against STRIPE_WEBHOOK_SECRET before anything."""
    try:
        event = verify_webhook(
            request.body,
            request.headers.get("Stripe-Signature", ""),
            settings.STRIPE_WEBHOOK_SECRET,
        )
    except NotConfigured as exc:
        logger.error("Stripe webhook refused: %s", exc.message)
        return JsonResponse(error_body(exc.message, exc.code), status=503)
    except InvalidSignature as exc:
        return JsonResponse(error_body(exc.message, exc.code), status=400)
    receipt = webhooks.event_receive(event)
    stored = receipt.event
    body = {"received": True, "duplicate": receipt.duplicate, "status": stored.status}
    # A failed handler answers 500 so that Stripe delivers the event again later.
    failed = stored.status == stored.Status.FAILED
    return JsonResponse(body, status=500 if failed else 200)
