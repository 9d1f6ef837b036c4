"""factory_boy factories for the model graph (users, sources, channels, monitors)."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model

from monitors.models import Channel, Monitor, Source
from tests import customer_influx


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"influx {n}")
    # The customers' influxd, never the deployment's own (settings.INFLUXDB_URL): the guard
    # refuses that one for every source that is not ``hosted``.
    url = factory.LazyFunction(customer_influx.url)
    database = customer_influx.DATABASE
    timeout_seconds = 2.0


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"channel {n}")
    kind = Channel.Kind.WEBHOOK
    config = factory.LazyFunction(lambda: {"url": "http://127.0.0.1:9/hook"})


class MonitorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Monitor

    owner = factory.SubFactory(UserFactory)
    source = factory.SubFactory(SourceFactory, owner=factory.SelfAttribute("..owner"))
    name = factory.Sequence(lambda n: f"monitor {n}")
    measurement = "gro01"
    field = "temperature"
    tags = factory.LazyFunction(lambda: {"device": "greenhouse-1"})
    aggregation = Monitor.Aggregation.MEAN
    window = timedelta(minutes=5)
    comparator = Monitor.Comparator.ABOVE
    critical = 30.0
    interval = timedelta(minutes=1)
