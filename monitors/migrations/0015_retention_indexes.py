"""Indexes retention walks (monitors/retention.py): the outbox by creation time and resolved
incidents by resolution time. Built CONCURRENTLY: the outbox is written by every evaluation,
and a plain CREATE INDEX would block those writes for as long as it takes."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


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
    ]
