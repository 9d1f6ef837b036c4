"""Makes the missing health monitors of every owned device (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from devices import health


class Command(BaseCommand):
    help = "Creates the missing health monitors (offline, battery, signal) of every device."

    def handle(self, *args: Any, **options: Any) -> None:
        made = health.ensure_all()
        self.stdout.write(f"{made} health monitor(s) created")
