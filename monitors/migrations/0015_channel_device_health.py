"""Channels get "device health alerts" (Channel.device_health, on by default): a channel with it
is attached to every device health monitor of its owner, existing and future. Existing channels
get it on and are attached to their owner's health monitors, so a channel added after the
devices (which used to get no health alert) now does."""

from django.db import migrations, models


def attach_existing(apps, schema_editor):
    Channel = apps.get_model("monitors", "Channel")
    Monitor = apps.get_model("monitors", "Monitor")
    Through = Monitor.channels.through
    links = []
    for channel in Channel.objects.all().only("pk", "owner_id").iterator():
        for monitor_id in Monitor.objects.filter(
            owner_id=channel.owner_id, health_kind__isnull=False
        ).values_list("pk", flat=True):
            links.append(Through(monitor_id=monitor_id, channel_id=channel.pk))
        if len(links) >= 5000:
            Through.objects.bulk_create(links, ignore_conflicts=True)
            links = []
    Through.objects.bulk_create(links, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0014_device_health_and_no_data_notifies"),
    ]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="device_health",
            field=models.BooleanField(
                default=True,
                help_text="Device health alerts (offline, battery low, signal weak) of every "
                "device of the account, now and later, go to this channel "
                "(monitors/notify/channels.py).",
            ),
        ),
        migrations.RunPython(attach_existing, migrations.RunPython.noop),
    ]
