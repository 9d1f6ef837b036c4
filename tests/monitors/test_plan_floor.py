"""The shortest check interval is the plan's (billing/plans.py): MONITOR_MIN_INTERVAL_SECONDS by
default, MONITOR_MIN_INTERVAL_BY_PRICE per subscription price, never under the database's
absolute floor of 1 s. The API, the monitor page and the services refuse a shorter one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from billing.models import Customer, Subscription
from billing.plans import min_interval_for
from monitors import services
from monitors.models import Monitor, Schedule
from tests.factories import MonitorFactory, SourceFactory, UserFactory
from tests.monitors.test_api import monitor_body

pytestmark = pytest.mark.django_db

PLANS = {"price_pro": 1.0, "price_basic": 30.0}


def _subscribed(username: str, price_id: str, status: str = "active"):
    user = UserFactory(username=username)
    customer = Customer.objects.create(user=user, stripe_customer_id=f"cus_{username}")
    Subscription.objects.create(
        customer=customer,
        stripe_subscription_id=f"sub_{username}",
        status=status,
        price_id=price_id,
    )
    return user


@pytest.fixture
def plans(settings):
    settings.MONITOR_MIN_INTERVAL_SECONDS = 10.0
    settings.MONITOR_MIN_INTERVAL_BY_PRICE = PLANS
    return settings


def test_the_floor_is_the_default_without_a_mapped_plan(alice, plans) -> None:
    assert min_interval_for(alice) == timedelta(seconds=10)
    assert min_interval_for(_subscribed("carol", "price_unknown")) == timedelta(seconds=10)


def test_a_plan_has_its_own_floor_and_the_shortest_served_one_wins(plans) -> None:
    pro = _subscribed("pro", "price_pro")
    basic = _subscribed("basic", "price_basic")
    lapsed = _subscribed("lapsed", "price_pro", status="canceled")

    assert min_interval_for(pro) == timedelta(seconds=1)
    assert min_interval_for(basic) == timedelta(seconds=30)
    assert min_interval_for(lapsed) == timedelta(seconds=10)


def test_the_api_refuses_an_interval_below_the_plan_floor_naming_it(plans, api_client_for) -> None:
    basic = _subscribed("basic", "price_basic")
    source = SourceFactory(owner=basic)

    response = api_client_for(basic).post(
        "/monitors", monitor_body(source, interval="00:00:10"), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"interval": ["must be at least 30 seconds on your plan"]}
    assert not Monitor.objects.exists()


def test_a_one_second_plan_creates_a_one_second_monitor_through_the_api(
    plans, api_client_for
) -> None:
    pro = _subscribed("pro", "price_pro")
    source = SourceFactory(owner=pro)

    response = api_client_for(pro).post(
        "/monitors", monitor_body(source, interval="00:00:01"), format="json"
    )

    assert response.status_code == 201, response.json()
    monitor = Monitor.objects.get()
    assert monitor.interval == timedelta(seconds=1)
    assert Schedule.objects.get(monitor=monitor).interval == timedelta(seconds=1)


def test_an_edit_that_keeps_the_interval_is_not_refused_after_a_downgrade(
    plans, api_client_for
) -> None:
    user = _subscribed("pro", "price_pro")
    monitor = MonitorFactory(owner=user, interval=timedelta(seconds=1))
    Subscription.objects.filter(customer__user=user).update(price_id="price_basic")
    client = api_client_for(user)

    kept = client.patch(f"/monitors/{monitor.pk}", {"name": "renamed"}, format="json")
    shortened = client.patch(f"/monitors/{monitor.pk}", {"interval": "00:00:02"}, format="json")

    assert kept.status_code == 200, kept.json()
    assert shortened.status_code == 400
    assert shortened.json() == {"interval": ["must be at least 30 seconds on your plan"]}
    monitor.refresh_from_db()
    assert (monitor.name, monitor.interval) == ("renamed", timedelta(seconds=1))


def test_the_services_refuse_it_too(plans) -> None:
    user = _subscribed("basic", "price_basic")
    source = SourceFactory(owner=user)

    with pytest.raises(ValidationError) as refused:
        services.monitor_create(
            owner=user, source=source, name="n", measurement="m", field="f",
            comparator="above", critical=1.0, interval=timedelta(seconds=5),
        )  # fmt: skip

    assert refused.value.message_dict == {"interval": ["must be at least 30 seconds on your plan"]}


def test_the_monitor_page_says_the_plan_floor(client, plans) -> None:
    user = _subscribed("pro", "price_pro")
    client.force_login(user)

    page = client.get("/app/monitors/new")

    assert "1s to 1d on your plan" in page.content.decode()


def test_the_database_keeps_the_absolute_floor_of_one_second(alice) -> None:
    monitor = MonitorFactory(owner=alice)

    for table in ("monitors_monitor", "monitors_schedule"):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET interval = '500 milliseconds' WHERE "  # noqa: S608
                + ("id" if table == "monitors_monitor" else "monitor_id")
                + " = %s",
                [monitor.pk],
            )
