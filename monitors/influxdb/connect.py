"""From a Source row to a connection: the row's flavour, auth scheme and secret become a client.

A customer's source is reached through the SSRF guard (``influx.InfluxClient`` with
``trusted=False``), whatever its row says: a URL planted in the database without the API's
validation is refused at connect time too. Only ``hosted`` sources (which growalert creates for
itself, never the API or the pages) are trusted.
"""

from __future__ import annotations

from monitors import outbound
from monitors.influxdb import client as influx
from monitors.models import Source

URL_REFUSED = (
    "growalert cannot connect to this address: enter the public host name or address of "
    "your InfluxDB server"
)


def check_url(url: str) -> None:
    """Raises ``ValueError`` with a sentence for the customer when a source may not use
    ``url``. Unresolvable and refused hosts read the same (no probing of internal names);
    the reason goes to the log."""
    try:
        outbound.split(url)
    except outbound.Refused as exc:
        raise ValueError("Enter an http:// or https:// URL with a valid port.") from exc
    try:
        influx.pin(url)
    except influx.InfluxRefused as exc:
        raise ValueError(URL_REFUSED) from exc


def auth_for(source: Source) -> influx.Auth:
    if source.auth_scheme == Source.AuthScheme.NONE:
        return influx.Auth()
    return influx.Auth(scheme=source.auth_scheme, username=source.username, secret=source.secret)


def client_for(source: Source) -> influx.InfluxClient:
    """Raises InfluxRefused when the guard refuses the source's URL."""
    return influx.InfluxClient(
        source.url,
        auth=auth_for(source),
        timeout=source.timeout_seconds,
        trusted=source.hosted,
    )


def flux_client_for(source: Source) -> influx.FluxClient:
    return influx.FluxClient(
        source.url,
        token=source.secret,
        org=source.org,
        timeout=source.timeout_seconds,
        trusted=source.hosted,
    )


def ping(source: Source) -> str:
    """The server's version, once it has answered, accepted the credentials and shown that the
    database (1.x) or bucket (2.x) exists. Raises InfluxError."""
    if source.flavor == Source.Flavor.FLUX:
        with flux_client_for(source) as flux:
            version = flux.ping()
            flux.check_bucket(source.database)
            return version
    with client_for(source) as client:
        version = client.ping()
        # /ping answers without credentials and SHOW MEASUREMENTS answers an empty list for a
        # database that does not exist: SHOW RETENTION POLICIES needs read access to it and
        # fails with "database not found" when it is missing.
        results = client.query("SHOW RETENTION POLICIES", database=source.database)
        error = next((r.error for r in results if r.error), None)
        if error is not None and "database not found" in error:
            raise influx.InfluxDatabaseMissing(
                f"the database “{source.database}” does not exist on the source"
            )
        if error is not None:
            raise influx.InfluxQueryError(error[:300])
        return version
