"""Sends to one receiver reuse its connections (HTTP keep-alive, monitors/notify/http.py), never
across two receiver names, never past the keep-alive time, never a parent process's. Real
loopback receivers; each request's sender port tells its connection."""

from __future__ import annotations

import ipaddress
import os
import time

import pytest

from monitors import outbound
from monitors.notify import http
from tests.notify.conftest import Receiver

BODY = b'{"event": "fired"}'


@pytest.fixture(autouse=True)
def _fresh_clients(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receivers live on loopback
    http.clients.close_all()
    yield
    http.clients.close_all()


@pytest.fixture
def kept():
    server = Receiver(keep_alive=True)
    yield server
    http.clients.close_all()  # before the server: its handler threads wait on open connections
    server.close()


def _post(url: str) -> None:
    assert http.post(url, content=BODY, headers=http.json_headers()).status_code == 200


def _ports(server: Receiver) -> list[int]:
    return [hit.peer[1] for hit in server.hits]


def test_sends_to_one_receiver_reuse_its_connection(kept):
    for _ in range(3):
        _post(kept.url)

    assert len(kept.hits) == 3
    assert len(set(_ports(kept))) == 1
    assert len(http.clients) == 1


def test_a_receiver_that_closes_each_connection_still_gets_every_send():
    server = Receiver()  # HTTP/1.0: one request per connection
    try:
        for _ in range(3):
            _post(server.url)
    finally:
        server.close()

    assert len(server.accepted) == 3
    assert len(set(_ports(server))) == 3


def test_two_names_of_one_address_never_share_a_connection(kept, monkeypatch):
    # each connection was made (and, over TLS, verified) for one name: another name resolving
    # to the same address gets its own
    monkeypatch.setattr(outbound, "resolve", lambda name, port: [ipaddress.ip_address("127.0.0.1")])
    port = kept.server.server_address[1]

    for name in ("a.example", "b.example", "a.example", "b.example"):
        _post(f"http://{name}:{port}/hook")

    by_name: dict[str, set[int]] = {}
    for hit in kept.hits:
        by_name.setdefault(hit.headers["Host"], set()).add(hit.peer[1])
    assert set(by_name) == {f"a.example:{port}", f"b.example:{port}"}
    assert all(len(ports) == 1 for ports in by_name.values())  # each name kept its own
    assert not by_name[f"a.example:{port}"] & by_name[f"b.example:{port}"]


def test_a_connection_unused_past_the_keep_alive_time_is_not_used_again(kept, monkeypatch):
    monkeypatch.setattr(http, "KEEPALIVE_S", 0.2)
    monkeypatch.setattr(http, "SWEEP_EVERY_S", 0.0)

    _post(kept.url)
    time.sleep(0.4)
    _post(kept.url)

    first, second = _ports(kept)
    assert first != second
    assert len(http.clients) == 1  # the unused receiver's client was closed and dropped


def test_a_client_dropped_while_in_use_is_closed_when_its_last_request_ends(monkeypatch):
    monkeypatch.setattr(http, "MAX_RECEIVERS", 1)
    clients = http._Clients()

    with clients.using(("http", "a.example", "127.0.0.1:1")) as first:
        with clients.using(("http", "b.example", "127.0.0.1:1")) as second:
            assert not first.is_closed  # evicted by b.example, but a request is under way
        assert not second.is_closed  # kept: the one receiver allowed
    assert first.is_closed
    assert len(clients) == 1
    clients.close_all()
    assert second.is_closed


def test_a_forked_child_does_not_use_its_parents_connections(kept, monkeypatch):
    _post(kept.url)
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)  # as in a forked child

    _post(kept.url)

    first, second = _ports(kept)
    assert first != second


def test_a_request_longer_than_the_keep_alive_time_keeps_its_client(monkeypatch):
    monkeypatch.setattr(http, "KEEPALIVE_S", 0.05)
    monkeypatch.setattr(http, "SWEEP_EVERY_S", 0.0)
    clients = http._Clients()

    with clients.using(("http", "slow.example", "127.0.0.1:1")) as slow:
        time.sleep(0.1)  # a slow receiver's answer
        with clients.using(("http", "other.example", "127.0.0.1:1")):
            pass  # a sweep runs meanwhile
    with clients.using(("http", "slow.example", "127.0.0.1:1")) as again:
        assert again is slow  # its connection goes on serving the receiver
    assert not slow.is_closed
    clients.close_all()
