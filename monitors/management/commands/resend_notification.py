"""``manage.py resend_notification <id>``: sends one notification again."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitors import operations
from monitors.models import Notification
from monitors.notify import delivery
from monitors.notify.services import RetryError


class Command(BaseCommand):
    help = "Send a notification again (sent, failed or waiting), keeping its idempotency key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("notification_id")
        parser.add_argument("--now", action="store_true", help="deliver here and print the outcome")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            notification = Notification.objects.get(pk=options["notification_id"])
        except (Notification.DoesNotExist, ValidationError, ValueError) as exc:
            raise CommandError(f"no notification {options['notification_id']!r}") from exc
        try:
            row = operations.resend(notification)
        except RetryError as exc:
            raise CommandError(str(exc)) from exc
        if options["now"]:
            outcome = delivery.deliver(row.pk)
            row.refresh_from_db()
            self.stdout.write(f"notification {row.pk}: {outcome} ({row.status})")
            if row.last_error:
                self.stdout.write(f"last error: {row.last_error}")
        else:
            self.stdout.write(f"notification {row.pk} queued for delivery")
