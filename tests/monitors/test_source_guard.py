"""Sources go through the SSRF guard: refused at save (400 on ``url``) and at connect time (a row
planted in the database), never the deployment's own InfluxDB, DNS resolved once and pinned,
no redirects, one sentence for every way a connection can fail, and a missing database is
not OK. Real servers on loopback stand in for internal services."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from devices import hosted
from growalert.demo.setup import ensure_demo_monitors
from monitors import outbound, services
from monitors.influxdb import client as influx
from monitors.influxdb import connect, observe
from monitors.models import Source
from monitors.notify import http
from tests.factories import MonitorFactory, SourceFactory
from tests.fakes.influxdb2 import FakeInfluxDB2, serve

pytestmark = pytest.mark.django_db


class Listener:
    """A TCP port on loopback that counts the connections it receives and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.port = int(self.socket.getsockname()[1])
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def private_refused(settings: Any) -> None:
    settings.SOURCES_ALLOW_PRIVATE_ADDRESSES = False


def influx_port() -> int:
    return int(urlsplit(django_settings.INFLUXDB_URL).port or 8086)


def loopback_forms(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}",
        f"http://localhost:{port}",
        f"http://[::1]:{port}",
        f"http://[::ffff:127.0.0.1]:{port}",
        f"https://127.0.0.2:{port}",
    ]


def create(api_client_for: Any, user: Any, url: str, **fields: Any) -> Any:
    body = {"name": f"src {url}", "url": url, "database": "farm", **fields}
    return api_client_for(user).post("/sources", body, format="json")


def test_loopback_private_and_other_schemes_are_refused_at_save(
    alice, api_client_for, private_refused
):
    urls = [
        *loopback_forms(8086),
        "http://10.0.0.5:8086",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0:8086",
        "http://[64:ff9b::7f00:1]:8086",
    ]
    for url in urls:
        response = create(api_client_for, alice, url)
        assert response.status_code == 400, url
        assert response.json() == {"url": [connect.URL_REFUSED]}, url

    response = create(api_client_for, alice, "ftp://93.184.216.34/influx")
    assert response.status_code == 400
    assert list(response.json()) == ["url"]
    assert "http://" in response.json()["url"][0]
    assert not Source.objects.filter(owner=alice).exists()


def test_a_private_url_is_refused_by_an_edit_and_by_the_service(
    alice, api_client_for, private_refused
):
    source = SourceFactory(owner=alice, url="http://93.184.216.34:8086")

    response = api_client_for(alice).patch(
        f"/sources/{source.pk}", {"url": "http://localhost:8086"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["url"]
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        services.source_create(owner=alice, name="x", url="http://[::1]:8086", database="d")
    assert list(raised.value.message_dict) == ["url"]


def test_a_planted_loopback_row_is_never_connected_to(alice, listener, private_refused):
    planted = [
        *loopback_forms(listener.port),
        f"ftp://127.0.0.1:{listener.port}",
        f"gopher://127.0.0.1:{listener.port}",
    ]
    for url in planted:
        source = SourceFactory(owner=alice, url=url)  # straight into the table, no validation

        checked = services.source_check(source=source)
        observation = observe.observe(MonitorFactory(owner=alice, source=source))

        assert checked.last_check_ok is False, url
        assert checked.last_check_error == influx.CONNECT_FAILED, url
        assert isinstance(observation.error, influx.InfluxRefused), url
    assert listener.accepted == []


def test_the_deployments_influxdb_is_refused_even_with_private_addresses_allowed(
    alice, api_client_for
):
    assert django_settings.SOURCES_ALLOW_PRIVATE_ADDRESSES is True
    aliases = [django_settings.INFLUXDB_URL, *loopback_forms(influx_port())]
    for url in aliases:
        response = create(api_client_for, alice, url, database="_internal")
        assert response.status_code == 400, url
        assert response.json() == {"url": [connect.URL_REFUSED]}, url

        planted = SourceFactory(owner=alice, url=url, database="_internal")
        checked = services.source_check(source=planted)
        assert checked.last_check_ok is False, url
        assert checked.last_check_error == influx.CONNECT_FAILED, url
        assert checked.server_version == ""


def test_webhooks_may_not_reach_the_deployments_influxdb_either(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    with pytest.raises(ValueError, match="own InfluxDB"):
        http.check_url(f"http://localhost:{influx_port()}/write?db=x")


def test_growalerts_own_sources_are_hosted_and_cannot_be_made_so_by_the_api(
    alice, api_client_for, settings, customer_influx_url
):
    ensure_demo_monitors(owner=alice)
    demo = Source.objects.get(owner=alice, hosted=True)
    assert demo.url == settings.INFLUXDB_URL
    assert services.source_check(source=demo).last_check_ok is True

    response = create(api_client_for, alice, customer_influx_url, name="mine", hosted=True)
    assert response.status_code == 201
    assert "hosted" not in response.json()
    assert Source.objects.get(pk=response.json()["id"]).hosted is False
    source = Source.objects.get(pk=response.json()["id"])
    api_client_for(alice).patch(f"/sources/{source.pk}", {"hosted": True}, format="json")
    source.refresh_from_db()
    assert source.hosted is False


def test_dns_is_resolved_once_and_the_connection_pinned(alice, listener, monkeypatch):
    # The guard's resolver answers a public address; the system resolver (what a second lookup
    # at connect time would ask) has been rebound to loopback, where the listener waits.
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [ipaddress.ip_address("192.0.0.9")])
    real_getaddrinfo = socket.getaddrinfo

    def rebound(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example.test":
            return real_getaddrinfo("127.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    monkeypatch.setattr(outbound, "is_public", lambda address: str(address) == "192.0.0.9")
    source = SourceFactory(
        owner=alice, url=f"http://rebind.example.test:{listener.port}", timeout_seconds=0.5
    )

    checked = services.source_check(source=source)

    assert checked.last_check_ok is False
    assert listener.accepted == []  # it went to 192.0.0.9, never to the rebound answer


def test_a_name_with_a_public_and_a_private_address_is_refused(
    alice, listener, monkeypatch, private_refused
):
    answers = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("127.0.0.1")]
    monkeypatch.setattr(outbound, "resolve", lambda host, port: answers)
    source = SourceFactory(owner=alice, url=f"http://split.example.test:{listener.port}")

    checked = services.source_check(source=source)

    assert checked.last_check_error == influx.CONNECT_FAILED
    assert listener.accepted == []
    with pytest.raises(ValueError, match="public host name"):
        connect.check_url(f"http://split.example.test:{listener.port}")


def test_the_pinned_connection_reaches_the_checked_address_under_its_name(
    alice, monkeypatch, customer_influx_url
):
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    port = urlsplit(customer_influx_url).port
    source = SourceFactory(owner=alice, url=f"http://influx.customer.test:{port}")

    assert services.source_check(source=source).last_check_ok is True
    with connect.client_for(source) as client:
        assert client._http.headers["Host"] == f"influx.customer.test:{port}"
        assert client._http.base_url.host == "127.0.0.1"


@pytest.fixture
def redirecting() -> Iterator[tuple[str, list[str]]]:
    """A server that redirects every request to another host, and that host's hit list."""
    hits: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{other.server_address[1]}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for s in (server, other):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    other.shutdown()


def test_a_redirect_to_another_host_is_not_followed(alice, redirecting):
    url, hits = redirecting
    source = SourceFactory(owner=alice, url=url)

    checked = services.source_check(source=source)
    observation = observe.observe(MonitorFactory(owner=alice, source=source))

    assert checked.last_check_ok is False
    assert checked.last_check_error == influx.REDIRECTED
    assert isinstance(observation.error, influx.InfluxRedirect)
    assert hits == []


def test_a_missing_database_is_not_ok(alice, influx_db):
    missing = SourceFactory(owner=alice, database="no_such_database")
    present = SourceFactory(owner=alice, database=influx_db.database)

    checked = services.source_check(source=missing)

    assert checked.last_check_ok is False
    assert (
        checked.last_check_error == "the database “no_such_database” does not exist on the source"
    )
    assert services.source_check(source=present).last_check_ok is True


@pytest.fixture
def influxdb2() -> Iterator[FakeInfluxDB2]:
    fake, server = serve()
    yield fake
    server.shutdown()


def flux_source(fake: FakeInfluxDB2, **fields: Any) -> Source:
    source = SourceFactory(
        url=fake.url, flavor="flux", org="farm", database="sensors", auth_scheme="token", **fields
    )
    source.secret = "tok-123"
    source.save()
    return source


def test_a_missing_flux_bucket_is_not_ok(influxdb2):
    influxdb2.buckets = {"sensors"}
    missing = flux_source(influxdb2)
    missing.database = "nope"
    missing.save()

    checked = services.source_check(source=missing)

    assert checked.last_check_ok is False
    assert "bucket “nope” does not exist" in checked.last_check_error
    assert services.source_check(source=flux_source(influxdb2)).last_check_ok is True


def test_a_planted_flux_source_on_loopback_is_never_called(influxdb2, private_refused):
    source = flux_source(influxdb2)

    checked = services.source_check(source=source)
    observation = observe.observe(MonitorFactory(owner=source.owner, source=source))

    assert checked.last_check_error == influx.CONNECT_FAILED
    assert isinstance(observation.error, influx.InfluxRefused)
    assert influxdb2.requests == []


def test_a_flux_source_is_pinned_and_keeps_its_name_in_host(influxdb2, monkeypatch):
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    port = urlsplit(influxdb2.url).port
    source = flux_source(influxdb2)
    source.url = f"http://flux.customer.test:{port}"
    source.save()

    assert services.source_check(source=source).last_check_ok is True
    assert influxdb2.requests[0]["headers"]["Host"] == f"flux.customer.test:{port}"


def test_every_connection_failure_reads_the_same_and_the_detail_is_logged(
    alice, listener, caplog, settings
):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    urls = {
        "closed port": f"http://127.0.0.1:{closed_port}",
        "timeout": f"http://127.0.0.1:{listener.port}",
        "dns failure": "http://no-such-host.invalid:8086",
    }
    errors = {}
    with caplog.at_level(logging.INFO, logger="monitors.influxdb.client"):
        for kind, url in urls.items():
            source = SourceFactory(owner=alice, url=url, timeout_seconds=0.5)
            errors[kind] = services.source_check(source=source).last_check_error
        settings.SOURCES_ALLOW_PRIVATE_ADDRESSES = False
        refused = SourceFactory(owner=alice, url="http://10.1.2.3:8086", timeout_seconds=0.5)
        errors["refused address"] = services.source_check(source=refused).last_check_error

    assert set(errors.values()) == {influx.CONNECT_FAILED}
    logged = caplog.text
    assert "Connection refused" in logged or "ConnectError" in logged
    assert "Timeout" in logged
    assert "cannot resolve no-such-host.invalid" in logged
    assert "private address (10.1.2.3)" in logged


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::6810:85e5", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("224.0.0.1", False),
        ("ff02::1", False),
        ("240.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address to refuse, not a bind)
        ("100.64.0.1", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert outbound.is_public(ipaddress.ip_address(address)) is public


def test_the_owner_of_a_hosted_source_cannot_repoint_it(alice, api_client_for, settings):
    ensure_demo_monitors(owner=alice)
    demo = Source.objects.get(owner=alice, hosted=True)
    client = api_client_for(alice)

    renamed = client.put(
        f"/sources/{demo.pk}",
        {"name": "my demo", "url": demo.url, "database": demo.database},
        format="json",
    )
    other_database = client.patch(f"/sources/{demo.pk}", {"database": "_internal"}, format="json")
    elsewhere = client.patch(
        f"/sources/{demo.pk}", {"url": "http://169.254.169.254"}, format="json"
    )

    assert renamed.status_code == 200, renamed.json()
    assert other_database.status_code == 400
    assert list(other_database.json()) == ["database"]
    assert elsewhere.status_code == 400
    demo.refresh_from_db()
    assert (demo.name, demo.database, demo.hosted) == (
        "my demo",
        hosted.database_name(alice.pk),
        True,
    )
