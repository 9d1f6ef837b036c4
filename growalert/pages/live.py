"""Live pages: the dashboard and a monitor's page poll a small JSON view and redraw what changed.

How it stays cheap at many open tabs (bench/bench_live.py):

- Every writer that changes what these pages show moves the owner's counter in Redis on
  commit (``monitors.live``). The counter is the answer's ``ETag``.
- A page polls ``/app/live/...?t=<token>`` about once a second with ``If-None-Match``. The token
  is the owner's id signed by this server (it names the counter, nothing else): while the
  counter is unchanged, ``growalert.pages.live_wsgi`` answers 304 in front of Django, from one
  Redis ``GET`` — no session, no database.
- When it moved, the request reaches the view below, which authenticates the session as any
  page does and answers the page's HTML rendered without its charts (the script swaps the
  marked regions). That HTML is cached in Redis per owner, counter and minute, so 100 tabs of
  one account render it once per change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from monitors import live
from shared.auth import owner_of as tenant_owner

TOKEN_SALT = "growalert.pages.live"  # noqa: S105  (a signing salt, not a secret)
TOKEN_MAX_AGE = 12 * 3600  # a page open longer gets a fresh token from its next full answer
POLL_MS = 1500  # how often a page asks (static/js/live.js): p99 under 2 s (bench_live)
CACHE_SECONDS = 120
RENDER_WAIT_SECONDS = 3
HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Cookie"}


def token(owner_id: int) -> str:
    return signing.TimestampSigner(salt=TOKEN_SALT).sign(str(owner_id))


def owner_of(value: str) -> int | None:
    """The owner id a token names, or None for a forged, garbled or expired one."""
    try:
        text = signing.TimestampSigner(salt=TOKEN_SALT).unsign(value, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return int(text) if text.isdigit() else None


def etag(version: int) -> str:
    return f'"{version}"'


def page_attributes(owner_id: int, url: str) -> dict[str, Any]:
    """What a live page's root element carries for static/js/live.js."""
    return {
        "url": url,
        "token": token(owner_id),
        "version": live.version(owner_id),
        "poll_ms": POLL_MS,
    }


def not_modified(version: int) -> HttpResponse:
    response = HttpResponse(status=304)
    response["ETag"] = etag(version)
    for name, value in HEADERS.items():
        response[name] = value
    return response


@require_GET
def answer(request: HttpRequest, name: str, render_page: Callable[[], str]) -> HttpResponse:
    """The live answer for the page ``name`` of the signed-in owner: 304 while the owner's
    counter is the one the page has, else the page's HTML (cached per counter and minute)."""
    if not isinstance(request.user, User):
        return JsonResponse({"detail": "Sign in again to see live updates."}, status=403)
    user = tenant_owner(request)  # the account's counter and rows, whoever of its members looks
    version = live.version(user.pk)
    if version is not None and request.headers.get("If-None-Match") == etag(version):
        return not_modified(version)

    def encode() -> bytes:
        body = {"version": version, "token": token(user.pk), "html": render_page()}
        return json.dumps(body, separators=(",", ":")).encode()

    # The body depends on the owner, the counter and the minute only (the token is the
    # owner's): encoded once for every tab of the account.
    minute = int(time.time() // 60)
    content = (
        encode()
        if version is None
        else _cached(f"live:{name}:{user.pk}:{version}:{minute}", encode)
    )
    response = HttpResponse(content, content_type="application/json", headers=HEADERS)
    if version is not None:
        response["ETag"] = etag(version)
    return response


def _cached(key: str, make: Callable[[], bytes]) -> bytes:
    """``make()`` once per key across processes: the tabs that ask while another request is
    rendering it wait for that render (a change reaches 100 tabs within a second, and 8
    threads rendering 200 cards side by side would make them all late)."""
    content = cache.get(key)
    if isinstance(content, bytes):
        return content
    if cache.add(f"{key}:rendering", 1, RENDER_WAIT_SECONDS):
        content = make()
        cache.set(key, content, CACHE_SECONDS)
        return content
    deadline = time.monotonic() + RENDER_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.02)
        content = cache.get(key)
        if isinstance(content, bytes):
            return content
    return make()  # the render we waited for failed or is very slow: render it here


def render_without_charts(request: HttpRequest, template: str, context: dict[str, Any]) -> str:
    """The page as the script needs it: no flash messages consumed (they belong to the next
    full page), no charts (the script keeps the ones on screen)."""
    return render_to_string(template, {**context, "messages": ()}, request=request)
