"""``manage.py retry_deliveries``: re-queues dead letters (deliveries that gave up)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from monitors import operations


class Command(BaseCommand):
    help = "Re-queue failed (dead-lettered) deliveries, optionally filtered; --dry-run counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", help="username, email or id of the owner")
        parser.add_argument("--channel", type=int)
        parser.add_argument("--monitor", type=int)
        parser.add_argument("--since-hours", type=float, help="written in the last N hours")
        parser.add_argument("--limit", type=int, default=1000)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = None
        if options["account"]:
            try:
                owner = operations.find_user(options["account"])
            except LookupError as exc:
                raise CommandError(str(exc)) from exc
        since = None
        if options["since_hours"] is not None:
            hours = max(0.0, min(options["since_hours"], 24 * 365.0))
            since = timezone.now() - timedelta(hours=hours)
        rows = operations.failed_deliveries(
            owner=owner, channel_id=options["channel"], monitor_id=options["monitor"], since=since
        )
        if options["dry_run"]:
            self.stdout.write(f"{rows.count()} failed deliveries match (nothing queued)")
            return
        report = operations.retry_failed(rows, limit=options["limit"])
        self.stdout.write(f"queued {report.queued} deliveries")
        for channel_id, why in (report.refused or {}).items():
            self.stdout.write(f"channel {channel_id} refused: {why}")
