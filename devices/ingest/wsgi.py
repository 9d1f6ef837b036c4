"""``POST /ingest`` and ``POST /influx/write`` answered in front of Django's middleware stack
(growalert/wsgi.py).

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

from devices.ingest import pushed, service

logger = logging.getLogger(__name__)

PATH = "/ingest"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_REASONS = {
    202: "Accepted",
    204: "No Content",
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
    if answer.status == 204:
        start_response("204 No Content", list(answer.headers.items()))
        return []
    payload = json.dumps(answer.body, separators=(",", ":")).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
        *answer.headers.items(),
    ]
    start_response(f"{answer.status} {_REASONS.get(answer.status, '')}", headers)
    return [payload]


def _read_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The body, or None when it is over the limit (not read any further)."""
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.isdigit():
        length = int(length_text)
        return None if length > limit else stream.read(length)
    body = stream.read(limit + 1)  # chunked: read one byte past the limit to see it
    return None if len(body) > limit else body


Header = Callable[[str], str]
Query = dict[str, list[str]]
Serve = Callable[[bytes, Header, Query], service.Answer]


def _ingest(body: bytes, header: Header, query: Query) -> service.Answer:
    precision = query.get("precision", ["ns"])[0]
    return service.ingest(body, header=header, precision=precision)


def _pushed(body: bytes, header: Header, query: Query) -> service.Answer:
    return pushed.accept(
        body,
        authorization=header("Authorization"),
        database=query.get("db", [""])[0],
        precision=query.get("precision", ["ns"])[0],
        password=query.get("p", [""])[0],
    )


def handle(
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    serve: Serve = _ingest,
    limit: int | None = None,
) -> list[bytes]:
    """``serve`` answers the path (``/ingest`` by default); ``limit`` bounds its body
    (``INGEST_MAX_BODY_BYTES`` by default)."""
    limit = settings.INGEST_MAX_BODY_BYTES if limit is None else limit
    if environ.get("REQUEST_METHOD") != "POST":
        answer = service.Answer(405, {"detail": "use POST", "code": "method_not_allowed"})
        answer.headers["Allow"] = "POST"
        return _respond(answer, start_response)
    body = _read_body(environ, limit)
    if body is None:
        # Not read into memory; the server discards the rest before the next request.
        return _respond(service.too_large(limit), start_response)

    def header(name: str) -> str:
        if name == "Content-Type":
            return str(environ.get("CONTENT_TYPE") or "")
        return str(environ.get("HTTP_" + name.upper().replace("-", "_")) or "")

    query_string = environ.get("QUERY_STRING") or ""
    query = parse_qs(query_string) if query_string else {}
    # What Django's request_started signal does: drop a broken or expired connection (only
    # used when the key cache misses).
    close_old_connections()
    try:
        answer = serve(body, header, query)
    except DatabaseError:
        logger.exception("ingest: database unavailable")
        close_old_connections()
        answer = service.retry_later(503, "unavailable", "ingest is unavailable")
    except Exception:
        logger.exception("ingest: unexpected error")
        answer = service.Answer(500, {"detail": "Internal server error.", "code": "error"})
    return _respond(answer, start_response)


def with_ingest(app: WSGIApp) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == PATH:
            return handle(environ, start_response)
        if path == pushed.PATH:
            return handle(environ, start_response, _pushed, settings.PUSH_MAX_BODY_BYTES)
        return app(environ, start_response)

    return application
