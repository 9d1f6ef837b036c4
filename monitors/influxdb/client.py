"""The only module that talks to InfluxDB.

It speaks InfluxQL over the v1-compatible HTTP API (``/ping``, ``/query`` with bind
parameters, ``/write`` with line protocol): the one protocol served by InfluxDB 1.x, 2.x (v1
compatibility endpoints) and 3.x. Every failure surfaces as a typed ``InfluxError``.

A client is either *trusted* (the deployment's own InfluxDB, ``settings.INFLUXDB_URL``, and the
sources growalert creates for itself) or a customer's: a customer URL goes through the SSRF
guard of ``monitors/outbound.py`` (http(s) only, no private addresses unless
``SOURCES_ALLOW_PRIVATE_ADDRESSES``, never the deployment's own InfluxDB, resolved once and the
connection pinned to the checked address), redirects are not followed, and a refused address,
a DNS failure, a refused connection, a closed port and a timeout all read the same to the
customer (``CONNECT_FAILED``): the detail goes to the log only.
"""

from __future__ import annotations

import json
import logging
import math
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from monitors import outbound

logger = logging.getLogger(__name__)

CONNECT_FAILED = (
    "could not connect to the source, or it did not answer in time: check the URL and that "
    "the server accepts connections from growalert"
)
REDIRECTED = (
    "the source answered with a redirect, which growalert does not follow: enter the URL of "
    "the InfluxDB server itself"
)


class InfluxError(Exception):
    """Base class: InfluxDB could not answer the request."""


class InfluxUnreachable(InfluxError):
    """The server could not be reached (connection refused, DNS, reset)."""


class InfluxTimeout(InfluxError):
    """The server did not answer within the timeout."""


class InfluxAuthError(InfluxError):
    """The server rejected the credentials (401/403)."""


class InfluxQueryError(InfluxError):
    """The server rejected the query (syntax, unknown function, bad parameter)."""


class InfluxServerError(InfluxError):
    """The server failed (5xx)."""


class InfluxRefused(InfluxUnreachable):
    """The SSRF guard refused the URL (scheme, private address, the deployment's InfluxDB)."""


class InfluxRedirect(InfluxError):
    """The server answered with a redirect (never followed)."""


class InfluxNotFound(InfluxQueryError):
    """The server answered 404 (a Flux bucket it cannot find)."""


class InfluxDatabaseMissing(InfluxQueryError):
    """The database (1.x) or bucket (2.x) does not exist on the server."""


def pin(url: str) -> outbound.Target:
    """A customer URL through the SSRF guard; raises InfluxRefused with the customer's text."""
    try:
        return outbound.pin(url, allow_private=settings.SOURCES_ALLOW_PRIVATE_ADDRESSES)
    except outbound.Refused as exc:
        logger.info("influx: refused %s: %s", _host_of(url), exc)
        raise InfluxRefused(CONNECT_FAILED) from exc


def _host_of(url: str) -> str:
    """Host and port of a URL for the log (never its credentials or path)."""
    parts = urlsplit(url)
    try:
        return f"{parts.hostname}:{parts.port}"
    except ValueError:
        return str(parts.hostname)


@dataclass(frozen=True, slots=True)
class Auth:
    """``basic`` (InfluxDB 1.x user/password) or ``token`` (2.x/3.x ``Authorization: Token``)."""

    scheme: str = "none"
    username: str = ""
    secret: str = ""

    def headers(self) -> dict[str, str]:
        if self.scheme == "token":
            return {"Authorization": f"Token {self.secret}"}
        return {}

    def httpx_auth(self) -> httpx.BasicAuth | None:
        if self.scheme == "basic":
            return httpx.BasicAuth(self.username, self.secret)
        return None

    def __repr__(self) -> str:  # never print the secret
        return f"Auth(scheme={self.scheme!r}, username={self.username!r})"


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a statement's answer. ``columns`` and ``values`` are the decoded JSON's
    lists as they come (read them, do not change them): copying them into tuples was a quarter
    of reading a grouped answer of 10,000 series, every second."""

    name: str
    columns: Sequence[str]
    values: Sequence[Sequence[Any]]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatementResult:
    statement_id: int
    series: tuple[Series, ...] = ()
    error: str | None = None


def _raise_for_response(response: httpx.Response) -> None:
    if 300 <= response.status_code < 400:
        raise InfluxRedirect(REDIRECTED)
    if response.status_code in (401, 403):
        raise InfluxAuthError(f"InfluxDB rejected the credentials (HTTP {response.status_code})")
    if response.status_code >= 500:
        raise InfluxServerError(f"InfluxDB server error (HTTP {response.status_code})")
    if response.status_code >= 400:
        raise InfluxQueryError(_error_message(response))


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or f"HTTP {response.status_code}"
    return str(body.get("error", body))[:300]


def _request(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    trusted: bool = True,
    host: str = "",
    extensions: dict[str, Any] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    try:
        response = client.request(method, path, extensions=extensions, **kwargs)
    except httpx.TimeoutException as exc:
        if not trusted:
            logger.info("influx: %s (%s) timed out: %r", host, client.base_url.host, exc)
            raise InfluxTimeout(CONNECT_FAILED) from exc
        raise InfluxTimeout(f"InfluxDB did not answer in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        if not trusted:
            logger.info("influx: %s (%s) unreachable: %r", host, client.base_url.host, exc)
            raise InfluxUnreachable(CONNECT_FAILED) from exc
        raise InfluxUnreachable(f"InfluxDB is unreachable ({type(exc).__name__})") from exc
    _raise_for_response(response)
    return response


_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: building one costs ~15 ms, once per batch otherwise."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = ssl.create_default_context()
    return _SSL_CONTEXT


class InfluxClient:
    """A connection-reusing client for one InfluxDB server.

    ``trusted=False`` (a customer's source) resolves the URL once through the SSRF guard and
    sends every request to the checked address; raises InfluxRefused when the guard says no.
    """

    def __init__(
        self, url: str, *, auth: Auth | None = None, timeout: float = 5.0, trusted: bool = False
    ) -> None:
        self.url = url.rstrip("/")
        self.auth = auth or Auth()
        self.trusted = trusted
        self._host = _host_of(self.url)
        base_url, headers, self._extensions = self.url, self.auth.headers(), {}
        if not trusted:
            target = pin(self.url)
            base_url, self._extensions = target.url, target.extensions
            headers = {**headers, **target.headers}
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers=headers,
            auth=self.auth.httpx_auth(),
            follow_redirects=False,
            trust_env=False,  # no HTTP(S)_PROXY from the environment around the guard
            verify=_ssl_context(),
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return _request(
            self._http,
            method,
            path,
            trusted=self.trusted,
            host=self._host,
            extensions=self._extensions or None,
            **kwargs,
        )

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def ping(self) -> str:
        """Returns the server's version; raises InfluxError when it cannot answer."""
        response = self._request("GET", "/ping")
        return str(response.headers.get("X-Influxdb-Version", "unknown"))

    def query(
        self,
        statements: str,
        *,
        database: str,
        params: Mapping[str, Any] | None = None,
        method: str = "GET",
    ) -> list[StatementResult]:
        """Runs one or more ``;``-separated InfluxQL statements with bound parameters.

        User values always travel in ``params`` (``$name`` in the query), never in the text.
        Timestamps come back as epoch milliseconds.
        """
        data = {"q": statements, "db": database, "epoch": "ms"}
        if params:
            data["params"] = json.dumps(params)
        if method == "GET":
            response = self._request("GET", "/query", params=data)
        else:
            response = self._request("POST", "/query", data=data)
        return _parse_results(response)

    def query_body(
        self, statements: str, *, database: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """``query`` (POST) answered as InfluxDB's decoded JSON, not built into Series: a fleet
        monitor reads 10,000 series a tick and needs one number of each. Raises as ``query``
        for a failed request or an error of the whole query."""
        data = {"q": statements, "db": database, "epoch": "ms"}
        if params:
            data["params"] = json.dumps(params)
        response = self._request("POST", "/query", data=data)
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise InfluxServerError("InfluxDB answered with something that is not JSON") from exc
        if "error" in body:
            raise InfluxQueryError(str(body["error"])[:300])
        return body

    def create_database(self, name: str) -> None:
        # CREATE DATABASE cannot take a bound parameter: quote the identifier instead.
        self.query(f"CREATE DATABASE {quote_ident(name)}", database=name, method="POST")

    def write(self, lines: Iterable[str], *, database: str, precision: str = "ms") -> None:
        body = "\n".join(lines)
        self._request(
            "POST",
            "/write",
            params={"db": database, "precision": precision},
            content=body.encode(),
        )


def _parse_results(response: httpx.Response) -> list[StatementResult]:
    try:
        body = response.json()
    except ValueError as exc:
        raise InfluxServerError("InfluxDB answered with something that is not JSON") from exc
    if "error" in body:
        raise InfluxQueryError(str(body["error"])[:300])
    results = []
    for raw in body.get("results", []):
        series = tuple(
            Series(
                x.get("name", ""), x.get("columns", ()), x.get("values", ()), x.get("tags") or {}
            )
            for x in raw.get("series", ())
        )
        results.append(
            StatementResult(
                statement_id=raw.get("statement_id", 0), series=series, error=raw.get("error")
            )
        )
    return results


class FluxClient:
    """InfluxDB 2.x through ``influxdb-client`` (Flux over ``/api/v2/query``, annotated CSV)."""

    def __init__(
        self, url: str, *, token: str, org: str, timeout: float = 5.0, trusted: bool = False
    ) -> None:
        from influxdb_client import InfluxDBClient

        self.org = org
        self.trusted = trusted
        self._host = _host_of(url)
        target = None if trusted else pin(url)
        # retries=False: urllib3 neither retries nor follows a redirect (it returns the 3xx).
        self._client = InfluxDBClient(
            url=target.url if target else url,
            token=token,
            org=org,
            timeout=int(timeout * 1000),
            retries=False,
            ssl_context=_ssl_context(),
        )
        if target is not None:
            # The request goes to the checked address; the name travels in Host and, for
            # https, in SNI and the certificate check.
            self._client.api_client.set_default_header("Host", target.headers["Host"])
            if target.extensions:
                pool = self._client.api_client.rest_client.pool_manager
                pool.connection_pool_kw.update(
                    server_hostname=target.hostname, assert_hostname=target.hostname
                )

    def __enter__(self) -> FluxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def query_value(self, flux: str, *, params: Mapping[str, Any]) -> float | None:
        """The last ``_value`` of the query's last table, or None when it returned no rows."""
        tables = self._flux(
            lambda: self._client.query_api().query(flux, org=self.org, params=dict(params))
        )
        for table in reversed(tables):
            for record in reversed(table.records):
                value = record.get_value()
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return float(value)
        return None

    def query_records(self, flux: str, *, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row of every table of the answer, as column -> value (a grouped query: one
        table per series, its tags in each row)."""
        tables = self._flux(
            lambda: self._client.query_api().query(flux, org=self.org, params=dict(params))
        )
        return [record.values for table in tables for record in table.records]

    def ping(self) -> str:
        return str(self._flux(lambda: self._client.version()))

    def check_bucket(self, bucket: str) -> None:
        """Raises InfluxDatabaseMissing when the bucket does not exist (or the token cannot
        read it: InfluxDB 2.x answers 404 for both)."""
        flux = "from(bucket: p_bucket) |> range(start: -1m) |> limit(n: 1)"
        try:
            self._flux(
                lambda: self._client.query_api().query(
                    flux, org=self.org, params={"p_bucket": bucket}
                )
            )
        except InfluxNotFound as exc:
            raise InfluxDatabaseMissing(
                f"the bucket “{bucket}” does not exist on the source (or this token cannot read it)"
            ) from exc

    def _flux(self, call: Any) -> Any:
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error
        from urllib3.exceptions import NewConnectionError
        from urllib3.exceptions import TimeoutError as Urllib3Timeout

        try:
            return call()
        except ApiException as exc:
            status = exc.status or 0
            if 300 <= status < 400:
                raise InfluxRedirect(REDIRECTED) from exc
            if status in (401, 403):
                raise InfluxAuthError(f"InfluxDB rejected the token (HTTP {status})") from exc
            if status >= 500:
                raise InfluxServerError(f"InfluxDB server error (HTTP {status})") from exc
            if status == 404:
                raise InfluxNotFound(str(exc.message or exc.reason)[:300]) from exc
            raise InfluxQueryError(str(exc.message or exc.reason)[:300]) from exc
        except NewConnectionError as exc:  # urllib3 makes it a ConnectTimeoutError: check first
            raise self._failed(InfluxUnreachable, "connection failed", exc) from exc
        except Urllib3Timeout as exc:
            raise self._failed(InfluxTimeout, "timed out", exc) from exc
        except (Urllib3Error, OSError) as exc:
            raise self._failed(InfluxUnreachable, type(exc).__name__, exc) from exc

    def _failed(self, kind: type[InfluxError], detail: str, exc: Exception) -> InfluxError:
        if self.trusted:
            text = "did not answer in time" if kind is InfluxTimeout else "is unreachable"
            return kind(f"InfluxDB {text} ({detail})")
        logger.info("influx: flux source %s: %r", self._host, exc)
        return kind(CONNECT_FAILED)


def ping(url: str, *, timeout: float = 2.0, auth: Auth | None = None, trusted: bool = False) -> str:
    with InfluxClient(url, auth=auth, timeout=timeout, trusted=trusted) as client:
        return client.ping()


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier, with backslashes and quotes escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _escape_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field_value(value: float | int | bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("line protocol cannot carry NaN or infinity")
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line(
    measurement: str,
    fields: Mapping[str, float | int | bool | str],
    *,
    tags: Mapping[str, str] | None = None,
    timestamp_ms: int | None = None,
) -> str:
    """One line of line protocol, with measurement, tags and fields escaped."""
    if not fields:
        raise ValueError("a point needs at least one field")
    head = measurement.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")
    for key, value in sorted((tags or {}).items()):
        head += f",{_escape_key(key)}={_escape_key(value)}"
    body = ",".join(f"{_escape_key(k)}={_field_value(v)}" for k, v in fields.items())
    return f"{head} {body}" + ("" if timestamp_ms is None else f" {timestamp_ms}")


def points(series: Sequence[Series]) -> list[dict[str, Any]]:
    """Flattens series into dicts of column -> value, tags merged in."""
    return [
        {**s.tags, **dict(zip(s.columns, row, strict=True))} for s in series for row in s.values
    ]
