"""Real receivers for notification tests: an SMTP server (aiosmtpd), an HTTP receiver that can
be told how to answer, and FakeTwilio."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from monitors.notify import breaker
from tests.fakes.twilio import FakeTwilio
from tests.monitors.conftest import influx_db  # noqa: F401 (shared fixture)
from tests.observability.receivers import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int] = ("", 0)  # the sender's address and port: one per connection

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    # listen()'s backlog is read when the server binds: the default (5) drops the SYNs of a
    # burst's side-by-side sends, which the client retries a second later
    request_queue_size = 256


@dataclass
class Receiver:
    """An HTTP server on loopback. ``script`` is the list of status codes to answer with, in
    order (the last one repeats); ``hang`` seconds delays every answer. ``in_flight`` counts
    the requests being answered (one whose sender hung up no longer counts). ``keep_alive``:
    answers in HTTP/1.1 and keeps each connection open for the next request, as most
    production receivers do (by default HTTP/1.0, one request per connection)."""

    script: list[int] = field(default_factory=lambda: [200])
    hang: float = 0.0
    hits: list[Received] = field(default_factory=list)  # every request
    accepted: list[Received] = field(default_factory=list)  # those answered 2xx
    in_flight: int = 0  # requests being answered now
    max_in_flight: int = 0  # the most at once
    keep_alive: bool = False

    def __post_init__(self) -> None:
        receiver = self
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def _hang(self) -> bool:
                """Waits ``hang`` seconds (set it to 0 to release every waiting request);
                False when the sender hung up meanwhile."""
                started = time.monotonic()
                while time.monotonic() < started + receiver.hang:
                    readable, _, _ = select.select([self.connection], [], [], 0.05)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return False
                return True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hit = Received(self.path, dict(self.headers), body, self.client_address[:2])
                with receiver.lock:
                    receiver.hits.append(hit)
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                try:
                    if not self._hang():
                        return  # the sender gave up (timed out) and closed the connection
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1
                index = min(len(receiver.hits) - 1, len(receiver.script) - 1)
                code = receiver.script[index]
                if 200 <= code < 300:
                    receiver.accepted.append(hit)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_inbox(settings) -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()  # below the ephemeral range (aiosmtpd checks it can connect to its own)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    yield inbox
    controller.stop()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receiver lives on loopback
    settings.NOTIFY_RETRY_BASE_SECONDS = 0.05
    server = Receiver()
    receivers = [f"{host}:{server.server.server_address[1]}" for host in ("127.0.0.1", "localhost")]
    for name in receivers:  # a port used before starts with no circuit state
        breaker.forget(name)
    yield server
    server.close()
    for name in receivers:
        breaker.forget(name)


@pytest.fixture
def eager() -> Iterator[None]:
    """Tasks queued by the code under test run in this process, at once."""
    from growalert.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def twilio(settings) -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    settings.TWILIO_ACCOUNT_SID = fake.account_sid
    settings.TWILIO_AUTH_TOKEN = fake.auth_token
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_API_BASE = fake.url
    yield fake
    fake.close()
