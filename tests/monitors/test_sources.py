"""Sources that are down, slow, or refuse credentials — each a real server: a closed port, a
listener that never answers, and a second influxd with authentication switched on."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitors import services
from monitors.influxdb import client as influx
from monitors.influxdb import observe
from tests.factories import MonitorFactory, SourceFactory, UserFactory
from tests.observability.receivers import free_port, free_ports

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def secured_influx(tmp_path_factory) -> Iterator[str]:
    """A second influxd with auth-enabled = true and one admin user."""
    influxd = shutil.which("influxd")
    if influxd is None:
        pytest.fail("influxd is not installed: make test installs Debian's influxdb")
    root: Path = tmp_path_factory.mktemp("influx-auth")
    http_port, rpc_port = free_ports(2)
    config = root / "influxdb.conf"
    config.write_text(
        f'reporting-enabled = false\nbind-address = "127.0.0.1:{rpc_port}"\n'
        f'[meta]\n  dir = "{root}/meta"\n'
        f'[data]\n  dir = "{root}/data"\n  wal-dir = "{root}/wal"\n  query-log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{http_port}"\n  auth-enabled = true\n'
        "  log-enabled = false\n"
    )
    process = subprocess.Popen(
        [influxd, "run", "-config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ping", timeout=0.5).status_code == 204:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        # The first user of a server with auth on may be created without credentials.
        httpx.post(
            f"{url}/query",
            data={"q": "CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES"},
        ).raise_for_status()
        httpx.post(
            f"{url}/query", data={"q": "CREATE DATABASE farm"}, auth=("admin", "right")
        ).raise_for_status()
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_a_source_that_is_down_is_reported_unreachable():
    source = SourceFactory(url=f"http://127.0.0.1:{free_port()}", timeout_seconds=1)

    checked = services.source_check(source=source)
    observation = observe.observe(MonitorFactory(source=source))

    assert checked.last_check_ok is False
    assert checked.last_check_error == influx.CONNECT_FAILED
    assert isinstance(observation.error, influx.InfluxUnreachable)


def test_a_slow_source_times_out_instead_of_hanging():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    source = SourceFactory(url=f"http://127.0.0.1:{listener.getsockname()[1]}", timeout_seconds=0.5)
    try:
        began = time.monotonic()
        observation = observe.observe(MonitorFactory(source=source))
        took = time.monotonic() - began
    finally:
        for conn in accepted:
            conn.close()
        listener.close()

    assert isinstance(observation.error, influx.InfluxTimeout)
    assert took < 3


def test_wrong_credentials_are_reported_and_right_ones_work(secured_influx):
    wrong = SourceFactory(
        url=secured_influx, database="farm", auth_scheme="basic", username="admin"
    )
    wrong.secret = "wrong"
    wrong.save()
    right = SourceFactory(
        url=secured_influx, database="farm", auth_scheme="basic", username="admin"
    )
    right.secret = "right"
    right.save()

    assert services.source_check(source=wrong).last_check_ok is False
    assert "rejected the credentials" in wrong.last_check_error
    assert isinstance(observe.observe(MonitorFactory(source=wrong)).error, influx.InfluxAuthError)
    assert services.source_check(source=right).last_check_ok is True
    assert right.server_version
    assert observe.observe(MonitorFactory(source=right)).error is None


@pytest.mark.django_db
def test_a_name_taken_by_a_concurrent_create_is_a_field_error(monkeypatch) -> None:
    """Two creates at once both pass full_clean's unique check; the one that loses the race
    at the database gets the same field error, not a server error."""
    from django.core.exceptions import ValidationError

    from monitors import services
    from monitors.models import Source
    from tests import customer_influx

    owner = UserFactory()
    fields: dict[str, Any] = {"name": "greenhouse", "url": customer_influx.url(), "database": "d"}
    services.source_create(owner=owner, **fields)
    monkeypatch.setattr(Source, "validate_constraints", lambda self, exclude=None: None)

    with pytest.raises(ValidationError) as refused:
        services.source_create(owner=owner, **fields)

    assert refused.value.message_dict == {"name": ['You already have a source named "greenhouse".']}
    assert Source.objects.filter(owner=owner).count() == 1
