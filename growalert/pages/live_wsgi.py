"""Live polls answered in front of Django (growalert/wsgi.py).

A live page asks ``/app/live/...?t=<token>`` every 1.5 s (growalert/pages/live.py). Almost
every time nothing has changed, and the answer is a 304 that needs the owner's counter only:
this wrapper reads the token (the owner's id signed by this server), the counter (one Redis
``GET``) and the ``If-None-Match`` header, and answers 304 itself when they agree — without
the session, CSRF, CSP or page middleware and without a database query. A 304 tells nothing
but "unchanged since the version you have".

When the counter moved, the first tab's request renders the answer in Django, which caches it
per owner, role, page, counter and minute; the account's other tabs get that cached answer here when
their token is recent (``live.FRESH_SECONDS``) and was given to the session whose cookie comes
with the request, and that session has not signed out (one Redis ``MGET``); the answer
is the one rendered for the token's role (the buttons a role can use differ). Anything else (no
or a bad token, a stale one, another session's, nothing cached yet, Redis away) goes to
Django, which authenticates the session and answers in full.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import redis
from django.conf import settings
from django.core.cache import cache
from django.http import parse_cookie

from growalert.pages import live as live_pages
from monitors import live

PREFIX = "/app/live/"
PAGES = re.compile(
    r"^/app/live/(?:(dashboard)|monitors/([0-9]{1,18})(?:/incidents/([0-9]{1,18}))?)$"
)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def page_of(path: str) -> str | None:
    """The page a live URL names, as growalert/pages/views.py names its answers."""
    found = PAGES.match(path)
    if found is None:
        return None
    if found.group(1):
        return "dashboard"
    if found.group(3):
        return live_pages.incident_page(int(found.group(2)), int(found.group(3)))
    return live_pages.monitor_page(int(found.group(2)))


def poll_answer(environ: dict[str, Any]) -> tuple[live_pages.Version, bytes | None] | None:
    """``(version, None)``: unchanged, a 304; ``(version, body)``: the cached changed answer;
    None: Django answers."""
    if environ.get("REQUEST_METHOD") != "GET" or not environ.get("PATH_INFO", "").startswith(
        PREFIX
    ):
        return None
    seen = environ.get("HTTP_IF_NONE_MATCH")
    tokens = parse_qs(environ.get("QUERY_STRING", "")).get("t")
    if not seen or not tokens:
        return None
    page = page_of(environ.get("PATH_INFO", ""))
    owner_id = live_pages.owner_of(tokens[0])
    if page is None or owner_id is None:
        return None
    version = kept_version(owner_id, page)
    if version is None or seen != live_pages.etag(version):
        version = read_version(owner_id, page)  # not kept, or moved: Redis says
    if version is None:
        return None
    if seen == live_pages.etag(version):
        return version, None
    body = cached_answer(environ, tokens[0], owner_id, page, version)
    return (version, body) if body is not None else None


# The versions this process read lately: (owner id, page) -> (read at, changes made here
# then, version). 100 tabs of one account poll about 65 times a second; each worker reads the
# counter from Redis once per VERSION_KEEP_SECONDS for all of them instead of once per poll.
# Only a 304 is decided from a kept version: a poll whose version differs reads Redis again.
VERSION_KEEP_SECONDS = 0.2
VERSIONS_KEPT = 10_000
_versions: dict[tuple[int, str], tuple[float, int, live_pages.Version]] = {}


def kept_version(owner_id: int, page: str) -> live_pages.Version | None:
    """The page's version as read at most VERSION_KEEP_SECONDS ago, with no change made by
    this process since, else None. A change made in another process reaches the polls at most
    that much later (the target is 2 s)."""
    kept = _versions.get((owner_id, page))
    if (
        kept is None
        or kept[1] != live.changes_made_here
        or time.monotonic() - kept[0] >= VERSION_KEEP_SECONDS
    ):
        return None
    return kept[2]


def read_version(owner_id: int, page: str) -> live_pages.Version | None:
    """The page's version read from Redis now, and kept for :func:`kept_version`."""
    made_here, read_at = live.changes_made_here, time.monotonic()
    version = live_pages.version_of(owner_id, page)
    if version is not None:
        if len(_versions) >= VERSIONS_KEPT:
            _versions.clear()
        _versions[(owner_id, page)] = (read_at, made_here, version)
    return version


def cached_answer(
    environ: dict[str, Any], token: str, owner_id: int, page: str, version: live_pages.Version
) -> bytes | None:
    cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    reader = live_pages.session_reader_of(token, session_key)
    if reader is None or reader[0] != owner_id:
        return None
    key = live_pages.answer_key(page, owner_id, version, role=reader[1])
    signed_out = live_pages.signed_out_key(session_key)
    try:
        found = cache.get_many([key, signed_out])
    except redis.RedisError:  # Redis away: Django answers, as for any other doubt
        return None
    body = found.get(key)
    if signed_out in found or not isinstance(body, bytes):
        return None
    return body


def with_live(app: WSGIApp) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        found = poll_answer(environ)
        if found is None:
            return app(environ, start_response)
        version, body = found
        headers = [("ETag", live_pages.etag(version)), *live_pages.HEADERS.items()]
        if body is None:
            start_response("304 Not Modified", headers)
            return [b""]
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    return application
