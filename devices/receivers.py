"""devices' answers to what billing announces (billing/signals.py): billing never imports
devices, devices listens."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from billing.models import DeviceOrder
from billing.signals import device_order_paid
from devices import services


@receiver(device_order_paid, dispatch_uid="devices.give_paid_order_its_devices")
def give_paid_order_its_devices(
    sender: type[DeviceOrder], *, order: DeviceOrder, owner_id: int, **_: Any
) -> None:
    """A paid order's devices, made in the transaction that marks the order paid."""
    services.devices_for_paid_order(owner_id=owner_id, order=order, quantity=order.quantity)
