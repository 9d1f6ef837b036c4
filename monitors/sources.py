"""From a Source row to a connection: the row's auth scheme and secret become an InfluxClient."""

from __future__ import annotations

from monitors import influx
from monitors.models import Source


def auth_for(source: Source) -> influx.Auth:
    if source.auth_scheme == Source.AuthScheme.NONE:
        return influx.Auth()
    return influx.Auth(scheme=source.auth_scheme, username=source.username, secret=source.secret)


def client_for(source: Source) -> influx.InfluxClient:
    return influx.InfluxClient(source.url, auth=auth_for(source), timeout=source.timeout_seconds)


def ping(source: Source) -> str:
    with client_for(source) as client:
        return client.ping()
