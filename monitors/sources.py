"""From a Source row to a connection: the row's flavour, auth scheme and secret become a client."""

from __future__ import annotations

from monitors import influx
from monitors.models import Source


def auth_for(source: Source) -> influx.Auth:
    if source.auth_scheme == Source.AuthScheme.NONE:
        return influx.Auth()
    return influx.Auth(scheme=source.auth_scheme, username=source.username, secret=source.secret)


def client_for(source: Source) -> influx.InfluxClient:
    return influx.InfluxClient(source.url, auth=auth_for(source), timeout=source.timeout_seconds)


def flux_client_for(source: Source) -> influx.FluxClient:
    return influx.FluxClient(
        source.url, token=source.secret, org=source.org, timeout=source.timeout_seconds
    )


def ping(source: Source) -> str:
    if source.flavor == Source.Flavor.FLUX:
        with flux_client_for(source) as flux:
            return flux.ping()
    with client_for(source) as client:
        version = client.ping()
        # /ping answers without credentials: a read proves they work and the database exists.
        client.query("SHOW MEASUREMENTS LIMIT 1", database=source.database)
        return version
