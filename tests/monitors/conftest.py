"""A real InfluxDB database seeded per test, the three users of every permission test, and the
firing-monitor set-up the pipeline and lifecycle tests share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.gating import comp
from monitors.influxdb import client as influx
from tests import customer_influx
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory

Point = tuple[float, float]  # (seconds ago, value)


class SeededInflux:
    """A throwaway database on the local influxd; ``write`` puts points N seconds in the past."""

    def __init__(self, client: influx.InfluxClient, database: str) -> None:
        self.client = client
        self.database = database

    def write(
        self,
        measurement: str,
        field: str,
        points: list[Point],
        tags: Mapping[str, str] | None = None,
        *,
        now_ms: int | None = None,
    ) -> None:
        now_ms = now_ms or int(time.time() * 1000)
        self.client.write(
            [
                influx.line(
                    measurement, {field: float(v)}, tags=tags, timestamp_ms=now_ms - int(ago * 1000)
                )
                for ago, v in points
            ],
            database=self.database,
        )


@pytest.fixture
def influx_db() -> Iterator[SeededInflux]:
    database = f"test_{uuid.uuid4().hex[:12]}"
    with influx.InfluxClient(customer_influx.url(), trusted=True) as client:
        client.create_database(database)
        yield SeededInflux(client, database)
        client.query(
            f"DROP DATABASE {influx.quote_ident(database)}", database=database, method="POST"
        )


@pytest.fixture
def alice(db: None):  # the owner (served without a subscription: billing is tested elsewhere)
    user = UserFactory(username="alice")
    comp(user)
    return user


@pytest.fixture
def bob(db: None):  # another customer
    user = UserFactory(username="bob")
    comp(user)
    return user


@pytest.fixture
def api_client_for() -> Callable[..., APIClient]:
    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def owner(db: None):  # "grower", served without a subscription
    user = UserFactory(username="grower")
    comp(user)
    return user


@pytest.fixture
def hot_monitor(owner, influx_db: SeededInflux):
    """A monitor on a real InfluxDB database with two channels, due now (it fires on the first
    tick once a hot value is written)."""
    source = SourceFactory(owner=owner, database=influx_db.database)
    monitor = MonitorFactory(
        owner=owner,
        source=source,
        aggregation="max",
        window=timedelta(minutes=1),
        interval=timedelta(seconds=10),
        critical=35,
        flap_detection=False,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )
    monitor.channels.set([ChannelFactory(owner=owner), ChannelFactory(owner=owner)])
    return monitor
