"""Device moved from billing to devices: existing rows keep their ids, owners, orders and
ingest key hashes, and gain a claim code."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("billing", "0001_initial")]
AFTER = [
    ("billing", "0002_device_moves_to_devices"),
    ("devices", "0002_device_fields_and_own_table"),
]


def _migrate(targets: Sequence[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.fixture
def _latest_schema_after() -> Iterator[None]:
    """Later migrations that depend on devices (monitors 0014) come back for the next tests."""
    yield
    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_latest_schema_after")
def test_existing_billing_devices_move_with_their_ids_and_key_hashes(django_user_model):
    user = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    _migrate([("devices", None)])  # unapplies billing 0002 too (it depends on devices 0001)
    executor = _migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        customer = old.get_model("billing", "Customer").objects.create(user_id=user.pk)
        order = old.get_model("billing", "DeviceOrder").objects.create(
            customer=customer, quantity=1, amount=4900, currency="eur", price_id="p",
            idempotency_key="k", status="paid",
        )  # fmt: skip
        device = old.get_model("billing", "Device").objects.create(
            id=4242, owner_id=user.pk, order=order, name="GRO-01 #1",
            ingest_key_prefix="gro_abcdefgh", ingest_key_hash="a" * 64,
        )  # fmt: skip
    finally:
        executor = _migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps.get_model("devices", "Device")
    moved = new.objects.get(pk=device.pk)
    assert (moved.owner_id, moved.order_id, moved.name) == (user.pk, order.pk, "GRO-01 #1")
    assert (moved.ingest_key_prefix, moved.ingest_key_hash) == ("gro_abcdefgh", "a" * 64)
    assert moved.claim_code
    assert moved.registered_at == moved.created_at
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('billing_device'), to_regclass('devices_device')")
        assert cursor.fetchone() == (None, "devices_device")
