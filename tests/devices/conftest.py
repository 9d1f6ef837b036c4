"""Devices tests: each test's accounts get their own hosted databases (user ids restart at 1
in every test), dropped afterwards; the ingest queue and counters start empty."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import redis
from django.conf import settings as django_settings

from devices import hosted, services
from devices.ingest import auth, pushed, queue
from tests.observability.receivers import free_port


@pytest.fixture(autouse=True)
def _own_hosted_databases(settings: Any) -> Iterator[None]:
    settings.HOSTED_DATABASE_PREFIX = f"t{uuid.uuid4().hex[:10]}_acct_"
    yield
    with hosted.client() as conn:
        for result in conn.query("SHOW DATABASES", database="_internal"):
            for series in result.series:
                for (name,) in series.values:
                    if str(name).startswith(settings.HOSTED_DATABASE_PREFIX):
                        conn.query(f'DROP DATABASE "{name}"', database=name, method="POST")


@pytest.fixture(autouse=True)
def _empty_ingest_state() -> Iterator[None]:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter("growalert:ingest:*", count=1000):
        client.delete(key)
    queue.reset_local_state()
    auth.reset()
    pushed.reset()
    yield
    client.close()


@pytest.fixture
def owner(django_user_model: Any) -> Any:
    """A grower (the ingest tests' account; other test modules define their own)."""
    return django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")


@pytest.fixture
def other(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("other", "o@example.com", "pw-long-enough")


@pytest.fixture
def device(owner: Any) -> Any:
    """(device, ingest key) of the grower's device "Bench 1"."""
    return services.device_add(owner=owner, name="Bench 1")


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """``growalert.wsgi.application`` (the WSGI fast path in front of Django that the web
    server serves) on a loopback port below the ephemeral range."""
    from django.db import connections

    from growalert.wsgi import application

    def closing(environ: Any, start_response: Any) -> Any:
        try:
            return list(application(environ, start_response))
        finally:
            connections.close_all()  # the server thread's connection, before the test DB goes

    httpd: WSGIServer = make_server("127.0.0.1", free_port(), closing, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
