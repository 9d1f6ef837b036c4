"""X-Request-ID: taken from the request when a proxy set a sane one, made up otherwise; every
log line of the request carries it, the response returns it, and Celery tasks sent while
handling it carry it on (``observability.celery``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase

from observability import context

HEADER = "X-Request-ID"
# A client's value is logged: letters, digits and . _ - only, bounded.
_SANE = re.compile(r"[A-Za-z0-9._-]{8,128}")


def request_id_of(request: HttpRequest) -> str:
    given = request.headers.get(HEADER, "")
    return given if _SANE.fullmatch(given) else uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_of(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        # Kept past the middleware: Django logs 4xx/5xx answers ("Not Found: …") after the
        # middleware chain returns. Cleared when the response is finished (below).
        context.set_fields(request_id=request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


def _forget_request_id(**kwargs: object) -> None:
    context.set_fields(request_id=None)


request_finished.connect(_forget_request_id, dispatch_uid="observability.request_id")
