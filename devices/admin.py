"""Admin for devices: find one by name, owner or key prefix; the key hash is never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from devices.models import Device

if TYPE_CHECKING:
    DeviceAdminBase = admin.ModelAdmin[Device]
else:
    DeviceAdminBase = admin.ModelAdmin


@admin.register(Device)
class DeviceAdmin(DeviceAdminBase):
    list_display = [
        "name",
        "owner",
        "greenhouse",
        "zone",
        "ingest_key_prefix",
        "last_seen_at",
        "battery",
        "rssi",
        "firmware",
        "order",
        "created_at",
    ]
    search_fields = ["name", "owner__username", "owner__email", "ingest_key_prefix", "claim_code"]
    raw_id_fields = ["owner", "order"]
    # The hash is useless to a human and the key itself is never stored.
    exclude = ["ingest_key_hash"]
    readonly_fields = [
        "ingest_key_prefix",
        "claim_code",
        "registered_at",
        "last_seen_at",
        "battery",
        "rssi",
        "firmware",
        "created_at",
    ]
