"""Health monitors (offline, battery low, signal weak: devices/health.py) for every device
registered before they existed, with the account's hosted Source made where it is missing.
Idempotent: a device that has a kind already keeps it. New devices get theirs when registered.
The monitors' schedule rows are written by the database trigger (monitors 0008)."""

from django.conf import settings
from django.db import migrations

SOURCE_NAME = "GRO-01 devices"  # devices/hosted.py


def _hosted_source(Source, owner_id):
    database = f"{settings.HOSTED_DATABASE_PREFIX}{int(owner_id)}"
    source = Source.objects.filter(owner_id=owner_id, hosted=True, database=database).first()
    if source is not None:
        return source
    taken = Source.objects.filter(owner_id=owner_id, name=SOURCE_NAME).exists()
    return Source.objects.create(
        owner_id=owner_id,
        name=f"{SOURCE_NAME} (growalert)" if taken else SOURCE_NAME,
        url=settings.INFLUXDB_URL,
        database=database,
        hosted=True,
    )


def _channels(Channel, owner):
    channels = list(Channel.objects.filter(owner_id=owner.pk, enabled=True))
    if channels or Channel.objects.filter(owner_id=owner.pk).exists() or not owner.email:
        return channels
    channel, _ = Channel.objects.get_or_create(
        owner_id=owner.pk,
        name="Account email",
        defaults={"kind": "email", "config": {"addresses": [owner.email]}},
    )
    return [channel]


def forward(apps, schema_editor):
    from devices.health import specs  # pure data: each kind's fields

    Device = apps.get_model("devices", "Device")
    Monitor = apps.get_model("monitors", "Monitor")
    Source = apps.get_model("monitors", "Source")
    Channel = apps.get_model("monitors", "Channel")
    for device in Device.objects.filter(owner__isnull=False).select_related("owner").iterator():
        have = set(Monitor.objects.filter(device=device).values_list("health_kind", flat=True))
        missing = {k: f for k, f in specs(device.pk, device.name).items() if k not in have}
        if not missing:
            continue
        source = _hosted_source(Source, device.owner_id)
        channels = _channels(Channel, device.owner)
        for kind, fields in missing.items():
            monitor = Monitor.objects.create(
                owner_id=device.owner_id,
                source=source,
                device=device,
                health_kind=str(kind),
                **fields,
            )
            monitor.channels.set(channels)


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0002_device_fields_and_own_table"),
        ("monitors", "0014_device_health_and_no_data_notifies"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
