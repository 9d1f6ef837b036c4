"""FakeStripe: a small hand-written fake of the Stripe HTTP API, for tests only.

It serves, on 127.0.0.1 and a random port, the handful of ``/v1`` endpoints growalert uses, with
JSON shaped like API version ``2026-10-28.endive`` (the version ``billing.stripe_gateway`` pins):
subscription periods live on the items, invoices link their subscription through ``parent`` and
carry ``confirmation_secret`` only when expanded. It records every request (method, path, form or
query parameters decoded into nested dicts/lists, headers) so tests assert what was sent, and
replays responses for a repeated ``Idempotency-Key`` like Stripe does.

Test tokens behave like Stripe's: ``tok_visa`` pays, ``tok_chargeDeclined`` (and
``tok_chargeDeclinedInsufficientFunds``) decline with a 402, ``tok_threeDSecure2Required`` needs
3-D Secure. ``make_event`` builds webhook events to sign and post.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-10-28.endive"
MONTH = 30 * 24 * 3600

DECLINES = {
    "tok_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "tok_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
}
THREE_D_SECURE = {"tok_threeDSecure2Required"}
PAYING = {"tok_visa", "tok_mastercard"}


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class StripeApiError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``items[0][price]=x`` → ``{"items": [{"price": "x"}]}`` (the SDK's form encoding)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    nested: dict[str, Any] = _listify(root)
    return nested


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _missing(kind: str, value: str, param: str = "id") -> StripeApiError:
    return StripeApiError(
        404 if param == "id" else 400,
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": param,
            "message": f"No such {kind}: '{value}'",
        },
    )


@dataclass
class FakeStripe:
    """The fake's state; ``start()`` serves it, ``url`` is what STRIPE_API_BASE points at."""

    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    # Status codes to answer the next requests with, before doing anything (outage simulation).
    failures: list[int] = field(default_factory=list)
    _idempotent: dict[str, tuple[dict[str, Any], int, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

            def do_DELETE(self) -> None:
                fake._serve(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- test helpers --------------------------------------------------------------------

    def add_price(
        self,
        *,
        lookup_key: str | None,
        unit_amount: int,
        currency: str = "usd",
        recurring: bool = True,
        active: bool = True,
        product_name: str = "growalert",
    ) -> dict[str, Any]:
        price: dict[str, Any] = {
            "id": _id("price"),
            "object": "price",
            "active": active,
            "billing_scheme": "per_unit",
            "created": int(time.time()),
            "currency": currency,
            "livemode": False,
            "lookup_key": lookup_key,
            "metadata": {},
            "nickname": None,
            "product": {
                "id": _id("prod"),
                "object": "product",
                "active": True,
                "name": product_name,
                "description": None,
                "metadata": {},
            },
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"}
            if recurring
            else None,
            "tax_behavior": "unspecified",
            "type": "recurring" if recurring else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        self.prices[price["id"]] = price
        return price

    def sent(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def sent_to(self, method: str, prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # --- HTTP ----------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        raw = split.query if method in ("GET", "DELETE") else body
        params = _nest(parse_qsl(raw, keep_blank_values=True))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = RecordedRequest(method, split.path, params, headers)
        with self._lock:
            self.requests.append(request)
            status, payload, extra = self._respond(request)
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", _id("req"))
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _respond(self, request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if self.failures:
            status = self.failures.pop(0)
            error = {"type": "api_error", "message": "The fake is having a bad day."}
            return status, {"error": error}, {}
        if not (request.header("authorization") or "").startswith("Bearer sk_"):
            error = {"type": "invalid_request_error", "message": "Invalid API Key provided."}
            return 401, {"error": error}, {}
        key = request.header("idempotency-key")
        if request.method == "POST" and key and key in self._idempotent:
            params, status, payload = self._idempotent[key]
            if params != request.params:
                error = {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with.",
                }
                return 400, {"error": error}, {}
            return status, payload, {"Idempotent-Replayed": "true"}
        try:
            status, payload = 200, self._route(request)
        except StripeApiError as exc:
            status, payload = exc.status, {"error": exc.error}
        if request.method == "POST" and key:
            self._idempotent[key] = (request.params, status, payload)
        return status, payload, {}

    def _route(self, r: RecordedRequest) -> Any:
        routes: list[tuple[str, str, Any]] = [
            ("GET", r"/v1/prices", self._list_prices),
            ("GET", r"/v1/prices/(?P<id>[\w]+)", self._get_price),
            ("POST", r"/v1/customers", self._create_customer),
            ("POST", r"/v1/subscriptions", self._create_subscription),
            ("POST", r"/v1/subscriptions/(?P<id>\w+)", self._update_subscription),
            ("DELETE", r"/v1/subscriptions/(?P<id>\w+)", self._cancel_subscription),
            ("POST", r"/v1/payment_methods", self._create_payment_method),
            ("POST", r"/v1/payment_intents", self._create_payment_intent),
            ("POST", r"/v1/invoices/create_preview", self._preview_invoice),
            ("POST", r"/v1/billing_portal/sessions", self._create_portal_session),
        ]
        for method, pattern, view in routes:
            match = re.fullmatch(pattern, r.path)
            if method == r.method and match:
                return view(r.params, **match.groupdict())
        error = {"type": "invalid_request_error", "message": f"Unrecognized request URL ({r.path})"}
        raise StripeApiError(404, error)

    # --- resources -----------------------------------------------------------------------

    def _list_prices(self, params: dict[str, Any]) -> dict[str, Any]:
        keys = params.get("lookup_keys", [])
        data = [p for p in self.prices.values() if not keys or p["lookup_key"] in keys]
        if params.get("active") == "true":
            data = [p for p in data if p["active"]]
        return {"object": "list", "data": data, "has_more": False, "url": "/v1/prices"}

    def _get_price(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        if id not in self.prices:
            raise _missing("price", id)
        return self.prices[id]

    def _price(self, price_id: str, param: str) -> dict[str, Any]:
        if price_id not in self.prices:
            raise _missing("price", price_id, param)
        return self.prices[price_id]

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": _id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": int(time.time()),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": params.get("email"),
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "name": params.get("name"),
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self.customers[customer["id"]] = customer
        return customer

    def _create_subscription(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer", "")
        if customer not in self.customers:
            raise _missing("customer", customer, "customer")
        now = int(time.time())
        sub_id = _id("sub")
        items: list[dict[str, Any]] = []
        for item in params.get("items", []):
            price = self._price(item["price"], "items[0][price]")
            if not price["active"]:
                raise StripeApiError(
                    400,
                    {
                        "type": "invalid_request_error",
                        "param": "items[0][price]",
                        "message": f"The price specified is inactive: {price['id']}",
                    },
                )
            items.append(
                {
                    "id": _id("si"),
                    "object": "subscription_item",
                    "price": price,
                    "quantity": int(item.get("quantity", 1)),
                    "current_period_start": now,
                    "current_period_end": now + MONTH,
                    "subscription": sub_id,
                }
            )
        lines = [
            {"price": i["price"], "quantity": i["quantity"], "period_end": now + MONTH}
            for i in items
        ]
        for extra in params.get("add_invoice_items", []):
            lines.append(
                {
                    "price": self._price(extra["price"], "add_invoice_items[0][price]"),
                    "quantity": int(extra.get("quantity", 1)),
                    "period_end": now,
                }
            )
        invoice = self._invoice(customer, sub_id, lines, "subscription_create")
        self.invoices[invoice["id"]] = invoice
        subscription: dict[str, Any] = {
            "id": sub_id,
            "object": "subscription",
            "billing_cycle_anchor": now,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": items[0]["price"]["currency"] if items else "usd",
            "customer": customer,
            "default_payment_method": None,
            "ended_at": None,
            "items": {"object": "list", "data": items, "has_more": False},
            "latest_invoice": invoice["id"],
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "payment_settings": params.get("payment_settings", {}),
            "start_date": now,
            "status": "incomplete",
            "trial_end": None,
        }
        self.subscriptions[sub_id] = subscription
        return self._expand_subscription(subscription, params.get("expand", []))

    def _invoice(
        self, customer: str, sub_id: str, lines: list[dict[str, Any]], reason: str
    ) -> dict[str, Any]:
        invoice_id = _id("in")
        data = [
            {
                "id": _id("il"),
                "object": "line_item",
                "amount": line["price"]["unit_amount"] * line["quantity"],
                "currency": line["price"]["currency"],
                "description": f"{line['quantity']} x {line['price']['product']['name']}",
                "period": {"start": int(time.time()), "end": line["period_end"]},
                "pricing": {
                    "type": "price_details",
                    "price_details": {
                        "price": line["price"]["id"],
                        "product": line["price"]["product"]["id"],
                    },
                    "unit_amount_decimal": line["price"]["unit_amount_decimal"],
                },
                "quantity": line["quantity"],
            }
            for line in lines
        ]
        total = sum(line["amount"] for line in data)
        return {
            "id": invoice_id,
            "object": "invoice",
            "amount_due": total,
            "amount_paid": 0,
            "amount_remaining": total,
            "billing_reason": reason,
            "currency": data[0]["currency"] if data else "usd",
            "customer": customer,
            "lines": {"object": "list", "data": data, "has_more": False},
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": sub_id},
            },
            "status": "open",
            "subtotal": total,
            "total": total,
            "_confirmation_secret": {
                "client_secret": f"pi_{secrets.token_hex(8)}_secret_{secrets.token_hex(8)}",
                "type": "payment_intent",
            },
        }

    def _public_invoice(self, invoice: dict[str, Any], with_secret: bool) -> dict[str, Any]:
        public = {k: v for k, v in invoice.items() if not k.startswith("_")}
        if with_secret:
            public["confirmation_secret"] = invoice["_confirmation_secret"]
        return public

    def _expand_subscription(self, sub: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        out = dict(sub)
        if "latest_invoice" in expand or "latest_invoice.confirmation_secret" in expand:
            invoice = self.invoices[sub["latest_invoice"]]
            with_secret = "latest_invoice.confirmation_secret" in expand
            out["latest_invoice"] = self._public_invoice(invoice, with_secret)
        return out

    def _subscription(self, sub_id: str) -> dict[str, Any]:
        if sub_id not in self.subscriptions:
            raise _missing("subscription", sub_id)
        return self.subscriptions[sub_id]

    def _update_subscription(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        sub = self._subscription(id)
        if sub["status"] == "canceled":
            raise StripeApiError(
                400,
                {
                    "type": "invalid_request_error",
                    "message": "A canceled subscription can only update its cancellation_details "
                    "and metadata.",
                },
            )
        if "cancel_at_period_end" in params:
            cancel = params["cancel_at_period_end"] == "true"
            sub["cancel_at_period_end"] = cancel
            sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] if cancel else None
            sub["canceled_at"] = int(time.time()) if cancel else None
        return self._expand_subscription(sub, params.get("expand", []))

    def _cancel_subscription(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        sub = self._subscription(id)
        if sub["status"] == "canceled":
            raise StripeApiError(
                400,
                {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": f"No such subscription: '{id}'",
                },
            )
        now = int(time.time())
        sub.update(status="canceled", canceled_at=now, ended_at=now)
        return dict(sub)

    def _preview_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer", "")
        if customer not in self.customers:
            raise _missing("customer", customer, "customer")
        sub = self._subscription(params.get("subscription", ""))
        period_end = sub["items"]["data"][0]["current_period_end"]
        lines = [
            {"price": i["price"], "quantity": i["quantity"], "period_end": period_end + MONTH}
            for i in sub["items"]["data"]
        ]
        preview = self._invoice(customer, sub["id"], lines, "upcoming")
        preview.update(id=None, status="draft", next_payment_attempt=period_end)
        return self._public_invoice(preview, with_secret=False)

    def _create_portal_session(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer", "")
        if customer not in self.customers:
            raise _missing("customer", customer, "customer")
        session_id = _id("bps")
        return {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": customer,
            "livemode": False,
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/test_{session_id}",
        }

    def _create_payment_method(self, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("card", {}).get("token", "")
        if token not in PAYING | THREE_D_SECURE | set(DECLINES):
            raise _missing("token", token, "card[token]")
        method = {
            "id": _id("pm"),
            "object": "payment_method",
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "card": {
                "brand": "visa",
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "funding": "credit",
                "last4": "4242",
            },
            "created": int(time.time()),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
            "_token": token,
        }
        self.payment_methods[method["id"]] = method
        return {k: v for k, v in method.items() if not k.startswith("_")}

    def _create_payment_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        method_id = params.get("payment_method", "")
        if method_id not in self.payment_methods:
            raise _missing("payment_method", method_id, "payment_method")
        token = self.payment_methods[method_id]["_token"]
        intent_id = _id("pi")
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "amount_received": 0,
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": params["currency"],
            "customer": params.get("customer"),
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "next_action": None,
            "payment_method": method_id,
            "payment_method_types": params.get("payment_method_types", ["card"]),
            "status": "requires_confirmation",
        }
        self.payment_intents[intent_id] = intent
        if params.get("confirm") != "true":
            return intent
        if token in DECLINES:
            code, decline_code, message = DECLINES[token]
            charge = self._charge(intent, paid=False)
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": message,
                "charge": charge["id"],
                "payment_method": {"id": method_id, "object": "payment_method"},
            }
            intent.update(status="requires_payment_method", last_payment_error=error)
            raise StripeApiError(402, {**error, "payment_intent": dict(intent)})
        if token in THREE_D_SECURE:
            sdk = {"type": "three_d_secure_redirect"}
            intent.update(
                status="requires_action",
                next_action={"type": "use_stripe_sdk", "use_stripe_sdk": sdk},
            )
            return intent
        charge = self._charge(intent, paid=True)
        intent.update(
            status="succeeded", amount_received=intent["amount"], latest_charge=charge["id"]
        )
        if "latest_charge" in params.get("expand", []):
            return {**intent, "latest_charge": charge}
        return intent

    def _charge(self, intent: dict[str, Any], *, paid: bool) -> dict[str, Any]:
        return {
            "id": _id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if paid else 0,
            "captured": paid,
            "created": int(time.time()),
            "currency": intent["currency"],
            "customer": intent["customer"],
            "description": intent["description"],
            "livemode": False,
            "metadata": intent["metadata"],
            "outcome": {
                "network_status": "approved_by_network" if paid else "declined_by_network",
                "type": "authorized" if paid else "issuer_declined",
                "seller_message": "Payment complete." if paid else "The bank declined.",
            },
            "paid": paid,
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "receipt_url": "https://pay.stripe.com/receipts/test" if paid else None,
            "status": "succeeded" if paid else "failed",
        }


_event_seq = itertools.count(1)


def make_event(
    event_type: str, obj: dict[str, Any], *, created: int | None = None
) -> dict[str, Any]:
    """A webhook event as Stripe posts it (snapshot payload, pinned API version)."""
    return {
        "id": f"evt_{secrets.token_hex(6)}{next(_event_seq)}",
        "object": "event",
        "api_version": API_VERSION,
        "created": created if created is not None else int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
