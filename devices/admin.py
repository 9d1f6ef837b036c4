"""Admin for devices: find one by name, owner or key prefix; the key hash is never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from billing.admin import DeviceOrderAdmin
from billing.models import DeviceOrder
from devices.models import Device

if TYPE_CHECKING:
    DeviceAdminBase = admin.ModelAdmin[Device]
    DeviceInlineBase = admin.TabularInline[Device, DeviceOrder]
else:
    DeviceAdminBase = admin.ModelAdmin
    DeviceInlineBase = admin.TabularInline


class DeviceInline(DeviceInlineBase):
    model = Device
    extra = 0
    fields = ["name", "ingest_key_prefix", "created_at"]
    readonly_fields = ["name", "ingest_key_prefix", "created_at"]
    can_delete = False


# An order's page lists its devices: billing's admin, with devices' inline (billing does not
# import devices).
admin.site.unregister(DeviceOrder)


@admin.register(DeviceOrder)
class DeviceOrderWithDevicesAdmin(DeviceOrderAdmin):
    inlines = [DeviceInline]


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
