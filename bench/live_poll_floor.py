"""A WSGI application that answers every conditional request 304 and does nothing else: what
the web server alone (granian, ``python -m growalert.serve --app
bench.live_poll_floor:application``) costs per live poll (``bench_live_poll.py --floor``), to
set against the project's own 304 (growalert/pages/live_wsgi.py). Its answers are lists, as
live_wsgi's are: granian sends them in one piece."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

HEADERS = [("ETag", '"0"'), ("Cache-Control", "private, no-cache"), ("Vary", "Cookie")]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("HTTP_IF_NONE_MATCH"):
        start_response("304 Not Modified", HEADERS)
        return [b""]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
