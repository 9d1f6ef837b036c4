"""Live pages: the dashboard and a monitor's page poll a small JSON view and redraw what changed.

How it stays cheap at many open tabs (bench/bench_live.py):

- Every writer that changes what these pages show moves the owner's counter in Redis on
  commit (``monitors.live``). The counter is the answer's ``ETag``.
- A page polls ``/app/live/...?t=<token>`` every 1.5 s with ``If-None-Match``. The token is the
  owner's id and a mark of the session it was given to (a keyed hash, never the session key),
  signed by this server: while the counter is unchanged, ``growalert.pages.live_wsgi`` answers
  304 in front of Django, from one Redis ``GET`` — no session, no database.
- When it moved, the view below authenticates the session as any page does and answers the
  page's HTML rendered without its charts (the script swaps the marked regions). That HTML is
  cached in Redis per owner, page, counter and minute, so 100 tabs of one account render it
  once per change, and the other tabs get it in front of Django too: a token at most
  ``FRESH_SECONDS`` old presented with the session cookie it was given to is enough to read the
  cached answer (one Redis ``MGET``). Only Django gives tokens: a page asks it again every
  ``RENEW_SECONDS``, so a session ended elsewhere (password changed, user deactivated) stops
  reading within ``FRESH_SECONDS``; signing out ends it at once (:func:`forget_session`).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.crypto import salted_hmac
from django.views.decorators.http import require_GET

from monitors import live
from shared.auth import acting_of
from shared.auth import owner_of as tenant_owner

TOKEN_SALT = "growalert.pages.live"  # noqa: S105  (a signing salt, not a secret)
TOKEN_MAX_AGE = 12 * 3600  # for a 304 (which tells nothing but "unchanged")
# For a changed answer given in front of Django: the session's token must be this recent. A page
# asks Django for a new one every RENEW_SECONDS (static/js/live.js), well inside it.
FRESH_SECONDS = 300
RENEW_SECONDS = 240
POLL_MS = 1500  # how often a page asks (static/js/live.js): p99 under 2 s (bench_live)
SIGNED_OUT_PREFIX = "live:signed-out:"
CACHE_SECONDS = 120
RENDER_WAIT_SECONDS = 3
HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Cookie"}


def session_mark(session_key: str | None) -> str:
    """What a token holds of the session it was given to: a keyed hash (tokens travel in URLs,
    which end up in logs; the session key must not)."""
    if not session_key:
        return ""
    return salted_hmac(TOKEN_SALT, session_key).hexdigest()[:24]


def token(owner_id: int, session_key: str | None = None, role: str = "") -> str:
    """The tab's token: the owner's id, a mark of its session and the member's role (the
    cached answer it may read is its role's: pages show only the buttons a role can use)."""
    text = f"{owner_id}:{session_mark(session_key)}:{role}"
    return signing.TimestampSigner(salt=TOKEN_SALT).sign(text)


def role_of(request: HttpRequest) -> str:
    acting = acting_of(request)
    return acting.role if acting is not None else ""


# Tokens whose signature this process checked: (owner id, session mark, role, signed at). A tab
# presents the same token for minutes, every 1.5 s; its HMAC is checked once, its age every time.
_verified: dict[str, tuple[int, str, str, int]] = {}
VERIFIED_KEEP = 4096  # tokens remembered per process (100 tabs renew theirs every 4 minutes)


def _signed(value: str) -> tuple[int, str, str, int] | None:
    """(owner id, session mark, role, when signed) of a token signed by this server, else None.
    Only good signatures are remembered: a forged token is checked again each time."""
    found = _verified.get(value)
    if found is not None:
        return found
    try:
        # TimestampSigner's signature check without its age check: "<owner>:<mark>:<stamp>"
        text = signing.Signer.unsign(signing.TimestampSigner(salt=TOKEN_SALT), value)
    except signing.BadSignature:
        return None
    payload, _, stamp = text.rpartition(":")
    owner, _, rest = payload.partition(":")
    mark, _, role = rest.partition(":")
    if not owner.isdigit():
        return None
    if len(_verified) >= VERIFIED_KEEP:
        _verified.clear()
    found = _verified[value] = (int(owner), mark, role, signing.b62_decode(stamp))
    return found


def _unsigned(value: str, max_age: int) -> tuple[int, str, str] | None:
    """As ``TimestampSigner.unsign(value, max_age)`` (the same signature and age checks)."""
    found = _signed(value)
    if found is None or time.time() - found[3] > max_age:
        return None
    return found[0], found[1], found[2]


def owner_of(value: str) -> int | None:
    """The owner id a token names, or None for a forged, garbled or expired one (enough for a
    304)."""
    found = _unsigned(value, TOKEN_MAX_AGE)
    return found[0] if found else None


def session_reader_of(value: str, session_key: str | None) -> tuple[int, str] | None:
    """The owner id and role a token names when it is at most FRESH_SECONDS old and was given
    to the session ``session_key`` (enough to read that role's cached answer), else None."""
    found = _unsigned(value, FRESH_SECONDS)
    if found is None or not session_key:
        return None
    owner_id, mark, role = found
    if not mark or not hmac.compare_digest(mark, session_mark(session_key)):
        return None
    return owner_id, role


def session_owner_of(value: str, session_key: str | None) -> int | None:
    found = session_reader_of(value, session_key)
    return found[0] if found else None


Version = int | str  # the dashboard's: the owner's counter; a monitor page's: "every.own"


def version_of(owner_id: int, page: str) -> Version | None:
    """The version a page's answer follows (None when Redis cannot be read): the dashboard
    moves with every change of the owner's, a monitor page only with its own monitor's and the
    changes every monitor page shows (so 20 open monitor pages do not all render again when one
    monitor changes)."""
    if page.startswith(MONITOR_PAGE_PREFIX):
        monitor_id = page.removeprefix(MONITOR_PAGE_PREFIX).split("-", 1)[0]
        return live.monitor_version(owner_id, int(monitor_id))
    return live.version(owner_id)


def answer_key(page: str, owner_id: int, version: Version, role: str = "") -> str:
    """Where the answer of ``page`` (``dashboard``, ``monitor-<id>``) is cached: per owner,
    role (the buttons shown), counter and minute (the minute moves "3 minutes ago" on)."""
    return f"live:{page}:{owner_id}:{role}:{version}:{int(time.time() // 60)}"


MONITOR_PAGE_PREFIX = "monitor-"


def monitor_page(monitor_id: int) -> str:
    return f"{MONITOR_PAGE_PREFIX}{monitor_id}"


def incident_page(monitor_id: int, incident_id: int) -> str:
    """An incident's page follows its monitor's version (the monitor's writers move it)."""
    return f"{MONITOR_PAGE_PREFIX}{monitor_id}-incident-{incident_id}"


def signed_out_key(session_key: str | None) -> str:
    return f"{SIGNED_OUT_PREFIX}{session_mark(session_key)}"


def forget_session(session_key: str | None) -> None:
    """A signed-out session's tokens stop reading cached answers at once (user_logged_out)."""
    if session_key:
        cache.set(signed_out_key(session_key), 1, FRESH_SECONDS)


def etag(version: Version) -> str:
    return f'"{version}"'


def page_attributes(
    request: HttpRequest, owner_id: int, url: str, page: str = "dashboard"
) -> dict[str, Any]:
    """What a live page's root element carries for static/js/live.js."""
    return {
        "url": url,
        "token": token(owner_id, request.session.session_key, role_of(request)),
        "version": version_of(owner_id, page),
        "poll_ms": POLL_MS,
        "renew_ms": RENEW_SECONDS * 1000,
    }


def not_modified(version: Version) -> HttpResponse:
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
    version = version_of(user.pk, name)
    if version is not None and request.headers.get("If-None-Match") == etag(version):
        return not_modified(version)

    def encode() -> bytes:
        body = {"version": version, "html": render_page()}
        return json.dumps(body, separators=(",", ":")).encode()

    # The body depends on the owner, the role, the page, the counter and the minute only:
    # encoded once for every tab of the account with that role. The session's token goes in
    # front of it.
    role = role_of(request)
    key = None if version is None else answer_key(name, user.pk, version, role)
    content = encode() if key is None else _cached(key, encode)
    fresh = json.dumps(token(user.pk, request.session.session_key, role)).encode()
    content = b'{"token":' + fresh + b"," + content[1:]
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
