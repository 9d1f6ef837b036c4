"""A worker builds what the first send needs before it consumes (monitors/notify/warmup.py), so
the first alert after a start does not wait ~200 ms for the URLconf, the TLS context and Redis."""

from __future__ import annotations

import logging
import weakref

import pytest
import redis
from celery import current_app
from celery.signals import worker_init
from django.urls import clear_url_caches, get_resolver
from kombu.exceptions import OperationalError

from growalert import celery as celery_app
from monitors.notify import breaker, http, queue, warmup


@pytest.fixture
def cold(monkeypatch):
    """A process that has built none of it yet."""
    clear_url_caches()
    http._built_once.cache_clear()
    monkeypatch.setattr(breaker, "_client", None)
    yield
    http._built_once.cache_clear()


def test_warming_up_loads_the_urlconf_builds_the_tls_context_and_connects_to_redis(cold):
    took = warmup.warm_up()

    assert took > 0
    assert vars(get_resolver())["_populated"]  # the acknowledgement link's reverse() index
    assert http._built_once.cache_info().currsize == 1
    client = breaker._client
    assert client is not None
    pool = client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    opened = pool._connections  # connected, not only configured
    assert len(opened) == breaker.CONNECTIONS
    assert all(connection._sock is not None for connection in opened)
    shas = [breaker._script(name).sha for name in ("admit", "done")]
    assert client.script_exists(*shas) == [True, True]  # loaded: the first send runs by SHA


def test_a_worker_starts_even_when_redis_is_unreachable(cold, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    with caplog.at_level(logging.WARNING, logger="monitors.notify.warmup"):
        warmup.warm_up()

    assert "Redis not reachable at start" in caplog.text
    assert vars(get_resolver())["_populated"]


def test_warming_up_opens_the_connection_deliveries_are_queued_on(cold):
    warmup.warm_up(send=False)  # the arrival evaluator's

    with current_app.producer_or_acquire() as producer:
        assert producer.connection.connected  # the first round's publish does not open it


def test_a_worker_starts_even_when_the_broker_is_unreachable(cold, monkeypatch, caplog):
    def unreachable() -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(queue, "connect", unreachable)
    with caplog.at_level(logging.WARNING, logger="monitors.notify.warmup"):
        warmup.warm_up()

    assert "broker not reachable at start" in caplog.text
    assert breaker._client is not None  # the rest was still done


def test_every_worker_warms_up_at_start(monkeypatch):
    calls: list[str] = []

    def warm_up() -> float:
        calls.append("warm")
        return 0.0

    monkeypatch.setattr(warmup, "warm_up", warm_up)
    hook = celery_app._warm_up
    connected = [r() if isinstance(r, weakref.ref) else r for _, r in worker_init.receivers]
    assert hook in connected
    hook()
    assert calls == ["warm"]
