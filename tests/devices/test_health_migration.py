"""Devices registered before health monitors existed get theirs from the backfill migration
(devices 0003), once."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from devices import health
from monitors.models import Channel, Monitor, Schedule, Source

BEFORE = [("devices", "0002_device_fields_and_own_table")]


@pytest.mark.django_db(transaction=True)
def test_existing_owned_devices_get_their_three_health_monitors(django_user_model):
    user = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)  # unapplies monitors 0014 and this backfill
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        device = old.get_model("devices", "Device")
        owned = device.objects.create(
            owner_id=user.pk, name="GRO-01 #1", ingest_key_prefix="gro_a",
            ingest_key_hash="b" * 64, claim_code="AAAA-BBBB",
        )  # fmt: skip
        unowned = device.objects.create(
            name="GRO-01 (stock)", ingest_key_prefix="gro_c", ingest_key_hash="c" * 64,
            claim_code="CCCC-DDDD",
        )  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    monitors = Monitor.objects.filter(device_id=owned.pk)
    assert sorted(str(m.health_kind) for m in monitors) == ["battery_low", "offline", "signal_weak"]
    assert not Monitor.objects.filter(device_id=unowned.pk).exists()
    source = Source.objects.get(owner=user, hosted=True)
    assert {m.source_id for m in monitors} == {source.pk}
    assert Schedule.objects.filter(monitor__in=monitors).count() == 3  # the trigger's rows
    channel = Channel.objects.get(owner=user)
    assert channel.config == {"addresses": ["g@example.com"]}
    assert all(list(m.channels.all()) == [channel] for m in monitors)
    assert health.ensure_all() == 0
