"""What billing tells the apps above it (billing imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

#: A device order was paid, inside the transaction that marks it paid (exactly once per order):
#: ``order`` (a DeviceOrder) and ``owner_id``. devices gives the order its devices.
device_order_paid = Signal()
