"""Unchanged live polls answered in front of Django (growalert/wsgi.py).

A live page asks ``/app/live/...?t=<token>`` about once a second (growalert/pages/live.py).
Almost every time nothing has changed, and the answer is a 304 that needs the owner's counter
only: this wrapper reads the token (the owner's id signed by this server), the counter (one
Redis ``GET``) and the ``If-None-Match`` header, and answers 304 itself when they agree —
without the session, CSRF, CSP or page middleware and without a database query. Anything else
(the counter moved, no or a bad token, Redis away) goes to Django, which authenticates the
session and answers in full. A 304 tells nothing but "unchanged since the version you have".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from growalert.pages import live as live_pages
from monitors import live

PREFIX = "/app/live/"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def unchanged_version(environ: dict[str, Any]) -> int | None:
    """The counter, when this request is a live poll whose version is still current."""
    if environ.get("REQUEST_METHOD") != "GET" or not environ.get("PATH_INFO", "").startswith(
        PREFIX
    ):
        return None
    seen = environ.get("HTTP_IF_NONE_MATCH")
    tokens = parse_qs(environ.get("QUERY_STRING", "")).get("t")
    if not seen or not tokens:
        return None
    owner_id = live_pages.owner_of(tokens[0])
    if owner_id is None:
        return None
    version = live.version(owner_id)
    if version is None or seen != live_pages.etag(version):
        return None
    return version


def with_live(app: WSGIApp) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        version = unchanged_version(environ)
        if version is None:
            return app(environ, start_response)
        headers = [("ETag", live_pages.etag(version)), *live_pages.HEADERS.items()]
        start_response("304 Not Modified", headers)
        return [b""]

    return application
