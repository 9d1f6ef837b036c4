"""Devices: made for paid orders, added, claimed; each account's hosted database and Source."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from devices import hosted, keys, services
from devices.models import MAX_FIRMWARE, Device
from monitors.influxdb import connect
from monitors.models import Source


def _retention_policies(database: str) -> list[list[object]]:
    with hosted.client() as conn:
        (result,) = conn.query("SHOW RETENTION POLICIES", database=database)
    assert result.error is None, result.error
    return [list(row) for row in result.series[0].values]


@pytest.mark.django_db(transaction=True)
def test_an_added_device_gets_a_key_and_its_account_a_hosted_database_and_source(
    django_user_model, settings
):
    settings.HOSTED_RETENTION = "14d"
    owner = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")

    device, key = services.device_add(owner=owner, name="Bench 3", greenhouse="North", zone="A")

    assert key.startswith("gro_")
    assert device.ingest_key_hash == keys.hash_key(key)
    assert key not in repr(Device.objects.filter(pk=device.pk).values())
    source = Source.objects.get(owner=owner, hosted=True)
    assert source.database == f"{settings.HOSTED_DATABASE_PREFIX}{owner.pk}"
    assert source.username == ""
    assert source.secret == ""
    # the database exists with its retention policy, and the source answers like any other
    assert connect.ping(source)
    policies = {row[0]: row for row in _retention_policies(source.database)}
    assert policies["hosted"][1] == "336h0m0s"
    assert policies["hosted"][-1] is True  # the default policy


@pytest.mark.django_db
def test_one_hosted_source_per_account_whatever_the_number_of_devices(django_user_model):
    owner = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    for name in ("a", "b", "c"):
        services.device_add(owner=owner, name=name)
    assert Source.objects.filter(owner=owner, hosted=True).count() == 1


@pytest.mark.django_db
def test_register_by_ingest_key_or_claim_code_and_never_another_accounts_device(
    django_user_model,
):
    alice = django_user_model.objects.create_user("alice", "a@example.com", "pw-long-enough")
    bob = django_user_model.objects.create_user("bob", "b@example.com", "pw-long-enough")
    device, key = services.device_add(owner=alice, name="GRO-01 #1")
    unclaimed, _ = services._create(name="GRO-01 (stock)")

    renamed = services.device_register(owner=alice, code=key, name="Seedlings", zone="Z1")
    assert (renamed.pk, renamed.name, renamed.zone) == (device.pk, "Seedlings", "Z1")

    assert unclaimed.claim_code is not None
    typed = unclaimed.claim_code.lower().replace("-", " ")
    claimed = services.device_register(owner=bob, code=typed, greenhouse="South")
    assert claimed.owner_id == bob.pk
    assert claimed.registered_at is not None
    assert Source.objects.filter(owner=bob, hosted=True).exists()

    for code in (key, str(claimed.claim_code), "NOPE-NOPE-NOPE", ""):
        with pytest.raises(ValidationError) as refused:
            services.device_register(owner=bob if code == key else alice, code=code)
        assert services.NOT_FOUND in str(refused.value)
    assert Device.objects.get(pk=device.pk).owner_id == alice.pk


@pytest.mark.django_db
def test_names_are_bounded(django_user_model):
    owner = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    for name in ("", "x" * 101, "bad\x00name"):
        with pytest.raises(ValidationError):
            services.device_add(owner=owner, name=name)
    assert not Device.objects.exists()


@pytest.mark.django_db
def test_reported_status_moves_last_seen_forward_and_clamps_values(django_user_model):
    from datetime import UTC, datetime

    owner = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    device, _ = services.device_add(owner=owner, name="d")
    later = datetime(2026, 1, 2, tzinfo=UTC)
    services.devices_reported(
        {device.pk: services.Reported(seen_at=later, battery=140.0, rssi=-300.0, firmware="1.2")}
    )
    services.devices_reported(
        {device.pk: services.Reported(seen_at=datetime(2026, 1, 1, tzinfo=UTC), battery=50.0)}
    )
    device.refresh_from_db()
    assert device.last_seen_at == later
    assert (device.battery, device.rssi, device.firmware) == (50, -150, "1.2")


@pytest.mark.django_db
def test_reports_of_many_devices_are_one_statement(django_user_model, django_assert_num_queries):
    from datetime import UTC, datetime

    owner = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    first, _ = services.device_add(owner=owner, name="never seen")
    second, _ = services.device_add(owner=owner, name="seen")
    services.devices_reported(
        {second.pk: services.Reported(seen_at=datetime(2026, 1, 5, tzinfo=UTC), rssi=-70.0)}
    )
    seen = datetime(2026, 1, 3, tzinfo=UTC)
    with django_assert_num_queries(1):
        services.devices_reported(
            {
                first.pk: services.Reported(seen_at=seen, battery=49.6, firmware="x" * 500),
                second.pk: services.Reported(seen_at=seen, battery=-5.0),
            }
        )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.last_seen_at, first.battery, first.rssi) == (seen, 50, None)
    assert len(first.firmware) == MAX_FIRMWARE
    assert second.last_seen_at == datetime(2026, 1, 5, tzinfo=UTC)  # never moves back
    assert (second.battery, second.rssi, second.firmware) == (0, -70, "")
