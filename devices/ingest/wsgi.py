"""``POST /ingest`` answered in front of Django's middleware stack (growalert/wsgi.py).

A device's request needs none of the session, CSRF, CSP or page middleware, and at thousands of
requests per second their cost is most of the request: this WSGI wrapper answers ``/ingest``
itself with the same service the Django view (``devices.views.ingest``) uses, and hands every
other path to Django unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from devices.ingest import service

logger = logging.getLogger(__name__)

PATH = "/ingest"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_REASONS = {
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _respond(answer: service.Answer, start_response: Callable[..., Any]) -> list[bytes]:
    payload = json.dumps(answer.body, separators=(",", ":")).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
        *answer.headers.items(),
    ]
    start_response(f"{answer.status} {_REASONS.get(answer.status, '')}", headers)
    return [payload]


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The body, or None when it is over the limit (not read any further)."""
    limit = settings.INGEST_MAX_BODY_BYTES
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.isdigit():
        length = int(length_text)
        return None if length > limit else stream.read(length)
    body = stream.read(limit + 1)  # chunked: read one byte past the limit to see it
    return None if len(body) > limit else body


def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ.get("REQUEST_METHOD") != "POST":
        answer = service.Answer(405, {"detail": "use POST", "code": "method_not_allowed"})
        answer.headers["Allow"] = "POST"
        return _respond(answer, start_response)
    body = _read_body(environ)
    if body is None:
        # Not read into memory; the server discards the rest before the next request.
        return _respond(service.too_large(), start_response)

    def header(name: str) -> str:
        if name == "Content-Type":
            return str(environ.get("CONTENT_TYPE") or "")
        return str(environ.get("HTTP_" + name.upper().replace("-", "_")) or "")

    query = environ.get("QUERY_STRING") or ""
    precision = parse_qs(query).get("precision", ["ns"])[0] if query else "ns"
    # What Django's request_started signal does: drop a broken or expired connection (only
    # used when the key cache misses).
    close_old_connections()
    try:
        answer = service.ingest(body, header=header, precision=precision)
    except DatabaseError:
        logger.exception("ingest: database unavailable")
        close_old_connections()
        answer = service.Answer(503, {"detail": "ingest is unavailable", "code": "unavailable"})
        answer.headers["Retry-After"] = "1"
    except Exception:
        logger.exception("ingest: unexpected error")
        answer = service.Answer(500, {"detail": "Internal server error.", "code": "error"})
    return _respond(answer, start_response)


def with_ingest(app: WSGIApp) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            return handle(environ, start_response)
        return app(environ, start_response)

    return application
