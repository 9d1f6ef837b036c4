"""GRO-01 devices: who owns them, where they stand, and what they last reported.

A device authenticates to ``POST /ingest`` with its ingest key, stored here only as a SHA-256
hash (and a short prefix to recognise it by). A paid device is created with its order (billing)
and owned by the payer; a device can also be added from the account page, or claimed by
another account with its claim code while it is unowned.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

MAX_NAME = 100
MAX_PLACE = 100  # greenhouse, zone
MAX_FIRMWARE = 32
BATTERY_MIN, BATTERY_MAX = 0, 100
RSSI_MIN, RSSI_MAX = -150, 0


class Device(models.Model):
    """A GRO-01 device. Its ingest key is stored as a SHA-256 hash; only a prefix is shown."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="devices",
        null=True,
        blank=True,
        help_text="The account the device reports to; empty for an unclaimed device.",
    )
    order = models.ForeignKey(
        "billing.DeviceOrder",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="devices",
    )
    name = models.CharField(max_length=MAX_NAME)
    greenhouse = models.CharField(max_length=MAX_PLACE, blank=True)
    zone = models.CharField(max_length=MAX_PLACE, blank=True)
    ingest_key_prefix = models.CharField(max_length=16)
    ingest_key_hash = models.CharField(max_length=64, unique=True)
    # Printed with the device: lets an account claim it without the ingest key.
    claim_code = models.CharField(max_length=20, unique=True, null=True, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    # Reported by the device itself (POST /ingest); written at most every few seconds.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    battery = models.SmallIntegerField(null=True, blank=True, help_text="Percent.")
    rssi = models.SmallIntegerField(null=True, blank=True, help_text="Signal, dBm.")
    firmware = models.CharField(max_length=MAX_FIRMWARE, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["owner_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(battery__isnull=True)
                | Q(battery__gte=BATTERY_MIN, battery__lte=BATTERY_MAX),
                name="device_battery_percent",
            ),
            models.CheckConstraint(
                condition=Q(rssi__isnull=True) | Q(rssi__gte=RSSI_MIN, rssi__lte=RSSI_MAX),
                name="device_rssi_dbm",
            ),
        ]

    def __str__(self) -> str:
        return self.name
