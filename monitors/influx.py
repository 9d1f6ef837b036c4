"""The only module that talks to InfluxDB.

It speaks InfluxQL over the v1-compatible HTTP API (``/ping``, ``/query`` with bind
parameters, ``/write`` with line protocol): the one protocol served by InfluxDB 1.x, 2.x (v1
compatibility endpoints) and 3.x. Every failure surfaces as a typed ``InfluxError``.
"""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


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
    name: str
    columns: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatementResult:
    statement_id: int
    series: tuple[Series, ...] = ()
    error: str | None = None


def _raise_for_response(response: httpx.Response) -> None:
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


def _request(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TimeoutException as exc:
        raise InfluxTimeout(f"InfluxDB did not answer in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
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
    """A connection-reusing client for one InfluxDB server."""

    def __init__(self, url: str, *, auth: Auth | None = None, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.auth = auth or Auth()
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers=self.auth.headers(),
            auth=self.auth.httpx_auth(),
            follow_redirects=False,
            verify=_ssl_context(),
        )

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def ping(self) -> str:
        """Returns the server's version; raises InfluxError when it cannot answer."""
        response = _request(self._http, "GET", "/ping")
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
            response = _request(self._http, "GET", "/query", params=data)
        else:
            response = _request(self._http, "POST", "/query", data=data)
        return _parse_results(response)

    def create_database(self, name: str) -> None:
        # CREATE DATABASE cannot take a bound parameter: quote the identifier instead.
        self.query(f"CREATE DATABASE {quote_ident(name)}", database=name, method="POST")

    def write(self, lines: Iterable[str], *, database: str, precision: str = "ms") -> None:
        body = "\n".join(lines)
        _request(
            self._http,
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
                name=s.get("name", ""),
                columns=tuple(s.get("columns", ())),
                values=tuple(tuple(v) for v in s.get("values", ())),
                tags=s.get("tags") or {},
            )
            for s in raw.get("series", ())
        )
        results.append(
            StatementResult(
                statement_id=raw.get("statement_id", 0), series=series, error=raw.get("error")
            )
        )
    return results


class FluxClient:
    """InfluxDB 2.x through ``influxdb-client`` (Flux over ``/api/v2/query``, annotated CSV)."""

    def __init__(self, url: str, *, token: str, org: str, timeout: float = 5.0) -> None:
        from influxdb_client import InfluxDBClient

        self.org = org
        self._client = InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout * 1000), retries=False
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

    def ping(self) -> str:
        return str(self._flux(lambda: self._client.version()))

    @staticmethod
    def _flux(call: Any) -> Any:
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error
        from urllib3.exceptions import NewConnectionError
        from urllib3.exceptions import TimeoutError as Urllib3Timeout

        try:
            return call()
        except ApiException as exc:
            status = exc.status or 0
            if status in (401, 403):
                raise InfluxAuthError(f"InfluxDB rejected the token (HTTP {status})") from exc
            if status >= 500:
                raise InfluxServerError(f"InfluxDB server error (HTTP {status})") from exc
            raise InfluxQueryError(str(exc.message or exc.reason)[:300]) from exc
        except NewConnectionError as exc:  # urllib3 makes it a ConnectTimeoutError: check first
            raise InfluxUnreachable("InfluxDB is unreachable (connection failed)") from exc
        except Urllib3Timeout as exc:
            raise InfluxTimeout("InfluxDB did not answer in time") from exc
        except (Urllib3Error, OSError) as exc:
            raise InfluxUnreachable(f"InfluxDB is unreachable ({type(exc).__name__})") from exc


def ping(url: str, *, timeout: float = 2.0, auth: Auth | None = None) -> str:
    with InfluxClient(url, auth=auth, timeout=timeout) as client:
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
