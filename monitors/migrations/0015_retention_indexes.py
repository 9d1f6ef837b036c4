"""Indexes retention walks (monitors/retention.py): the outbox by creation time and resolved
incidents by resolution time. Built CONCURRENTLY: the outbox is written by every evaluation,
and a plain CREATE INDEX would block those writes for as long as it takes.

And autovacuum on the tables retention deletes from: after 2 % of dead rows (plus 1,000)
rather than Postgres's default 20 %, so the space a prune frees is reused within hours and the
tables stay flat (docs/operations.md "Retention"). Changing storage parameters takes a lock
that does not block reads or writes."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


VACUUMED = ("monitors_notification", "monitors_deliveryattempt", "monitors_incident")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("monitors", "0014_device_health_and_no_data_notifies"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="incident",
            index=models.Index(
                condition=models.Q(("resolved_at__isnull", False)),
                fields=["resolved_at"],
                name="incident_resolved_at_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="notification",
            index=models.Index(fields=["created_at"], name="notification_created_at_idx"),
        ),
        migrations.RunSQL(
            [
                f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0.02, "
                "autovacuum_vacuum_threshold = 1000)"
                for table in VACUUMED
            ],
            [
                f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, "
                "autovacuum_vacuum_threshold)"
                for table in VACUUMED
            ],
        ),
    ]
