"""``manage.py overdue``: monitors the dispatcher should have claimed and has not, and why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitors import operations


class Command(BaseCommand):
    help = "List monitors overdue in the dispatcher's schedule (or missing from it), and why."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--late", type=float, default=5.0, help="seconds past due to count (default 5)"
        )
        parser.add_argument("--limit", type=int, default=100)

    def handle(self, *args: Any, **options: Any) -> None:
        late = max(0.0, min(options["late"], 30 * 86400.0))
        found = operations.overdue(late_by=timedelta(seconds=late), limit=options["limit"])
        if not found:
            self.stdout.write(f"no monitor is overdue by more than {late:g} s")
            return
        self.stdout.write(f"{'monitor':>8}  {'late':>9}  {'status':<8}  {'owner':<20}  why")
        for o in found:
            when = "never" if o.late_seconds is None else f"{o.late_seconds:.0f} s"
            self.stdout.write(
                f"{o.monitor_id:>8}  {when:>9}  {o.status:<8}  {o.owner[:20]:<20}  {o.reason}"
            )
        self.stdout.write(f"{len(found)} overdue")
