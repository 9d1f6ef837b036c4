"""The one module that talks to Stripe (and the only importer of ``stripe``).

Everything leaves here as plain ``dict``s shaped like the pinned API version's JSON, and every
Stripe failure leaves as one of the typed errors below, so the rest of billing never sees the SDK.
Every POST carries an idempotency key the caller derives from the business action (e.g.
``create-customer:42``): a retried request, by the SDK or by a user, never acts twice.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)

# The API version every request is made with; webhook payloads follow the endpoint's version,
# which must be set to the same value in the Stripe dashboard.
API_VERSION = "2026-10-28.endive"
MAX_NETWORK_RETRIES = 2
TIMEOUT_SECONDS = 20.0
# Signed webhooks older than this are refused (replay protection, as the SDK's default).
WEBHOOK_TOLERANCE_SECONDS = 300

StripeDict = dict[str, Any]


class StripeGatewayError(Exception):
    """A Stripe request failed; ``message`` is safe to show to the user."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class NotConfigured(StripeGatewayError):
    """No Stripe secret key: billing is switched off in this deployment."""


class CardDeclined(StripeGatewayError):
    def __init__(
        self, message: str, *, code: str = "", decline_code: str = "", payment_intent_id: str = ""
    ) -> None:
        super().__init__(message, code=code)
        self.decline_code = decline_code
        self.payment_intent_id = payment_intent_id


class InvalidRequest(StripeGatewayError):
    def __init__(self, message: str, *, code: str = "", param: str = "") -> None:
        super().__init__(message, code=code)
        self.param = param


class StripeUnavailable(StripeGatewayError):
    """Stripe could not be reached, failed, rate-limited us or refused our credentials."""


class InvalidSignature(StripeGatewayError):
    """A webhook's ``Stripe-Signature`` does not match its body (or is too old)."""


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except stripe.CardError as exc:
        body = exc.json_body if isinstance(exc.json_body, dict) else {}
        error = body.get("error") or {}
        intent = error.get("payment_intent") or {}
        raise CardDeclined(
            exc.user_message or "Your card was declined.",
            code=exc.code or "",
            decline_code=error.get("decline_code") or "",
            payment_intent_id=intent.get("id", "") if isinstance(intent, dict) else "",
        ) from exc
    except (stripe.InvalidRequestError, stripe.IdempotencyError) as exc:
        param = getattr(exc, "param", "") or ""
        message = exc.user_message or str(exc)
        raise InvalidRequest(message, code=exc.code or "", param=param) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        logger.error("Stripe refused our API key: %s", exc.user_message)
        raise StripeUnavailable("Payments are temporarily unavailable.", code="auth") from exc
    except stripe.StripeError as exc:
        logger.warning("Stripe request failed: %s (%s)", type(exc).__name__, exc.user_message)
        raise StripeUnavailable(
            "Payments are temporarily unavailable, please try again.", code=exc.code or ""
        ) from exc


def _plain(obj: Any) -> StripeDict:
    return obj.to_dict() if isinstance(obj, stripe.StripeObject) else dict(obj)


@functools.lru_cache(maxsize=4)
def _sdk_client(api_key: str, api_base: str) -> stripe.StripeClient:
    # One per key and address: the HTTP client keeps its connections (and TLS context) warm.
    return stripe.StripeClient(
        api_key,
        stripe_version=API_VERSION,
        base_addresses={"api": api_base},
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.HTTPXClient(timeout=TIMEOUT_SECONDS, allow_sync_methods=True),
    )


NOT_CONFIGURED = "Billing is not configured on this server."


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def ensure_configured() -> None:
    """Raises NotConfigured (503 in the API) when this deployment has no Stripe secret key."""
    if not is_configured():
        raise NotConfigured(NOT_CONFIGURED, code="not_configured")


class StripeClient:
    """growalert's Stripe operations, on a ``stripe.StripeClient`` with the pinned version."""

    def __init__(self, *, api_key: str, api_base: str) -> None:
        if not api_key:
            raise NotConfigured(NOT_CONFIGURED, code="not_configured")
        self._client = _sdk_client(api_key, api_base)

    @classmethod
    def from_settings(cls) -> StripeClient:
        return cls(api_key=settings.STRIPE_SECRET_KEY, api_base=settings.STRIPE_API_BASE)

    # --- prices --------------------------------------------------------------------------

    def prices_by_lookup_key(self, lookup_keys: list[str]) -> list[StripeDict]:
        if not lookup_keys:
            return []
        with _translated_errors():
            page = self._client.v1.prices.list(
                {"lookup_keys": lookup_keys, "expand": ["data.product"], "limit": 100}
            )
        return [_plain(price) for price in page.data]

    def retrieve_price(self, price_id: str) -> StripeDict:
        with _translated_errors():
            return _plain(self._client.v1.prices.retrieve(price_id, {"expand": ["product"]}))

    # --- customers and subscriptions -----------------------------------------------------

    def create_customer(
        self, *, email: str, name: str, user_id: int, idempotency_key: str
    ) -> StripeDict:
        with _translated_errors():
            customer = self._client.v1.customers.create(
                {"email": email, "name": name, "metadata": {"growalert_user_id": str(user_id)}},
                {"idempotency_key": idempotency_key},
            )
        return _plain(customer)

    def create_subscription(
        self,
        *,
        customer_id: str,
        price_id: str,
        device_price_id: str,
        device_quantity: int,
        idempotency_key: str,
    ) -> StripeDict:
        """An incomplete subscription whose first invoice the client confirms with Stripe.js."""
        add_invoice_items: list[Any] = (
            [{"price": device_price_id, "quantity": device_quantity}] if device_quantity else []
        )
        with _translated_errors():
            subscription = self._client.v1.subscriptions.create(
                {
                    "customer": customer_id,
                    "items": [{"price": price_id}],
                    "payment_behavior": "default_incomplete",
                    "payment_settings": {"save_default_payment_method": "on_subscription"},
                    "add_invoice_items": add_invoice_items,
                    "expand": ["latest_invoice.confirmation_secret"],
                },
                {"idempotency_key": idempotency_key},
            )
        return _plain(subscription)

    def set_cancel_at_period_end(
        self, subscription_id: str, *, cancel: bool, idempotency_key: str
    ) -> StripeDict:
        with _translated_errors():
            subscription = self._client.v1.subscriptions.update(
                subscription_id,
                {"cancel_at_period_end": cancel},
                {"idempotency_key": idempotency_key},
            )
        return _plain(subscription)

    def cancel_subscription_now(self, subscription_id: str) -> StripeDict:
        # A DELETE: naturally idempotent, and Stripe ignores idempotency keys on it.
        with _translated_errors():
            return _plain(self._client.v1.subscriptions.cancel(subscription_id))

    def preview_invoice(
        self, *, customer_id: str, subscription_id: str, idempotency_key: str
    ) -> StripeDict:
        with _translated_errors():
            invoice = self._client.v1.invoices.create_preview(
                {"customer": customer_id, "subscription": subscription_id},
                {"idempotency_key": idempotency_key},
            )
        return _plain(invoice)

    def create_portal_session(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> StripeDict:
        with _translated_errors():
            session = self._client.v1.billing_portal.sessions.create(
                {"customer": customer_id, "return_url": return_url},
                {"idempotency_key": idempotency_key},
            )
        return _plain(session)

    # --- one-off payments (devices bought later) -----------------------------------------

    def payment_method_from_token(self, token: str, *, idempotency_key: str) -> StripeDict:
        with _translated_errors():
            method = self._client.v1.payment_methods.create(
                {"type": "card", "card": {"token": token}},
                {"idempotency_key": idempotency_key},
            )
        return _plain(method)

    def confirm_payment(
        self,
        *,
        amount: int,
        currency: str,
        customer_id: str,
        payment_method_id: str,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> StripeDict:
        """Create and confirm a card PaymentIntent; declines raise ``CardDeclined``."""
        with _translated_errors():
            intent = self._client.v1.payment_intents.create(
                {
                    "amount": amount,
                    "currency": currency,
                    "customer": customer_id,
                    "payment_method": payment_method_id,
                    # Cards only, never a redirect: no return_url needed for 3-D Secure, which
                    # Stripe.js handles with the client secret.
                    "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                    "confirm": True,
                    "description": description,
                    "metadata": metadata,
                    "expand": ["latest_charge"],
                },
                {"idempotency_key": idempotency_key},
            )
        return _plain(intent)


def verify_webhook(payload: bytes, signature_header: str, secret: str) -> StripeDict:
    """The event in a webhook body, once its signature (and freshness) is verified."""
    if not secret:
        raise NotConfigured("The webhook signing secret is not configured.", code="not_configured")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature_header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature("Invalid Stripe signature.", code="invalid_signature") from exc
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSignature("The webhook body is not JSON.", code="invalid_payload") from exc
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise InvalidSignature("The webhook body is not a Stripe event.", code="invalid_payload")
    return event
