"""The customer API's device rows (GET /devices, POST /devices/<id>/ingest-key)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from devices.models import Device


class DeviceOutput(serializers.ModelSerializer[Device]):
    class Meta:
        model = Device
        fields = ["id", "name", "ingest_key_prefix", "order", "created_at"]


class DeviceListOutput(serializers.Serializer[Any]):
    devices = DeviceOutput(many=True)
