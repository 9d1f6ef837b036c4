"""How every error is answered: JSON on the API, a friendly page elsewhere.

One place decides which requests get JSON (``wants_json``: the API's path prefixes, or a client
that accepts JSON and not HTML) and one function turns an exception into a status and a body
(``as_api_exception``), used by three hooks:

- ``api_exception_handler`` (DRF's ``EXCEPTION_HANDLER``): errors raised inside a DRF view;
- ``ApiErrorMiddleware``: errors raised before DRF runs or outside it (a body over
  ``DATA_UPLOAD_MAX_MEMORY_SIZE``, a disallowed Host, a NUL in the query string, an unmatched
  URL under an API prefix, a plain Django view's 405) and any unhandled exception, which answers
  ``{"detail": ...}`` with status 500, without a traceback, and is logged;
- ``bad_request``/``permission_denied``/``page_not_found``/``server_error`` (``handler400``...
  in the root URLconf): Django's own error views, JSON on the API and templates elsewhere.

The API's JSON parser, bounded in size and depth, is ``shared.parsers.BoundedJSONParser``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template import loader
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from shared.parsers import PayloadTooLarge

logger = logging.getLogger(__name__)

# First path segments owned by the API (growalert/urls.py, monitors/urls.py, billing/urls.py).
API_PREFIXES = (
    "api",
    "monitors",
    "sources",
    "channels",
    "incidents",
    "escalation-policies",
    "silences",
    "config",
    "create-customer",
    "create-subscription",
    "charge",
    "customer",
    "webhook",
    "webhooks",
    "subscriptions",
    "invoice-preview",
    "customer-portal",
    "device-orders",
    "devices",
    "tokens",
    "account",  # /account/members, /account/invitations (the team)
    "ingest",
    "charts",  # a notification's chart image behind a signed link (monitors/notify/chart_links.py)
)
_API_PATH = re.compile(r"^/(?:" + "|".join(re.escape(p) for p in API_PREFIXES) + r")(?:/|$)")

SERVER_ERROR_DETAIL = "Internal server error. It has been logged; please try again later."


def is_api_path(path: str) -> bool:
    return bool(_API_PATH.match(path))


def wants_json(request: HttpRequest) -> bool:
    """JSON for the API's paths, and for a client that asks for JSON rather than HTML."""
    if is_api_path(request.path_info):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def as_api_exception(exc: BaseException) -> exceptions.APIException | None:
    """The API error an exception stands for; None for a server error (a bug)."""
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(_django_detail(exc))
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, DisallowedHost):
        return exceptions.ParseError("The Host header names a host this server does not serve.")
    if isinstance(exc, SuspiciousOperation):
        return exceptions.ParseError("The request was refused as malformed.")
    if isinstance(exc, RecursionError):
        return exceptions.ParseError("The request is nested too deeply.")
    return None


def _django_detail(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): messages
            for field, messages in exc.message_dict.items()
        }
    return {"non_field_errors": exc.messages}


def _body_and_headers(exc: exceptions.APIException) -> tuple[dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = str(exc.auth_header)  # type: ignore[attr-defined]
    wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
    if wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    detail = exc.detail
    if isinstance(detail, dict):
        return dict(detail), headers
    if isinstance(detail, list):
        return {"detail": " ".join(str(m) for m in detail)}, headers
    return {"detail": detail}, headers


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: Django's own exceptions too, always an object body, and
    ``Retry-After`` in whole seconds (at least 1) on 429. None lets a bug reach the middleware."""
    api_exc = as_api_exception(exc)
    if api_exc is None:
        return None
    response = drf_exception_handler(api_exc, context)
    if response is None:
        return None
    body, headers = _body_and_headers(api_exc)
    response.data = body
    for name, value in headers.items():
        response[name] = value
    return response


def json_error(exc: exceptions.APIException) -> JsonResponse:
    body, headers = _body_and_headers(exc)
    return JsonResponse(body, status=exc.status_code, headers=headers)


def server_error_json() -> JsonResponse:
    return JsonResponse({"detail": SERVER_ERROR_DETAIL}, status=500)


class ApiErrorMiddleware:
    """JSON errors on the API for what happens outside DRF (see the module docstring).
    First in ``MIDDLEWARE``, so it also sees what the other middleware answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not wants_json(request):
            return self.get_response(request)
        refused = refuse_early(request)
        if refused is not None:
            return json_error(refused)
        response = self.get_response(request)
        if response.status_code >= 400 and _is_html(response):
            return _as_json(request, response)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not wants_json(request):
            return None
        api_exc = as_api_exception(exc)
        if api_exc is not None:
            return json_error(api_exc)
        logger.error("Unhandled error on %s %s", request.method, request.path, exc_info=exc)
        # As Django's own handler does: error reporters and the test client listen for it.
        got_request_exception.send(sender=type(self), request=request)
        return server_error_json()


def refuse_early(request: HttpRequest) -> exceptions.APIException | None:
    """What can be refused from the headers and the URL alone, before anything reads them."""
    try:
        request.get_host()
    except DisallowedHost as exc:
        return as_api_exception(exc)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = request.META.get("CONTENT_LENGTH") or "0"
    if limit is not None and length.isdigit() and int(length) > limit:
        return PayloadTooLarge()
    if "\x00" in request.path_info:
        return exceptions.NotFound()
    try:
        params = request.GET.lists()
    except SuspiciousOperation as exc:  # e.g. more than DATA_UPLOAD_MAX_NUMBER_FIELDS
        return as_api_exception(exc)
    for name, value in params:
        if "\x00" in name or any("\x00" in v for v in value):
            field = name.replace("\x00", "\\u0000")
            return exceptions.ValidationError({field: ["must not contain NUL characters."]})
    return None


def _is_html(response: HttpResponseBase) -> bool:
    return str(response.get("Content-Type", "")).startswith("text/html")


_STATUS_DETAIL = {
    400: "Bad request.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    413: "The request body is too large.",
    415: "Unsupported media type.",
    429: "Too many requests; retry later.",
}


def _as_json(request: HttpRequest, response: HttpResponseBase) -> JsonResponse:
    code = response.status_code
    if code == 405:
        detail = f'Method "{request.method}" not allowed.'
    elif code >= 500:
        detail = SERVER_ERROR_DETAIL
    else:
        detail = _STATUS_DETAIL.get(code, "The request could not be served.")
    rewritten = JsonResponse({"detail": detail}, status=code)
    for name, value in response.items():  # Allow, security headers, Vary...
        if name.lower() not in ("content-type", "content-length"):
            rewritten[name] = value
    rewritten.cookies = response.cookies
    return rewritten


def _page(request: HttpRequest, template: str, code: int) -> HttpResponse:
    body = loader.get_template(template).render({"request_path": request.path}, request)
    return HttpResponse(body, status=code)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        if wants_json(request):
            return json_error(PayloadTooLarge())
        return _page(request, "413.html", 413)
    if wants_json(request):
        known = as_api_exception(exception) if exception is not None else None
        return json_error(known or exceptions.ParseError())
    return _page(request, "400.html", 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return json_error(exceptions.PermissionDenied())
    return _page(request, "403.html", 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return json_error(exceptions.NotFound())
    return _page(request, "404.html", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """Rendered without the request's context: whatever failed may fail again in it."""
    if wants_json(request):
        return server_error_json()
    return HttpResponse(loader.get_template("500.html").render({}), status=500)
