"""``manage.py monitor_evaluations <id>``: a monitor's last evaluation, incidents and
notifications."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitors import operations
from monitors.models import Monitor


class Command(BaseCommand):
    help = "Show a monitor's state, last value, status reason, incidents and notifications."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("monitor_id", type=int)
        parser.add_argument("--recent", type=int, default=10)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = operations.monitor_report(options["monitor_id"], recent=options["recent"])
        except Monitor.DoesNotExist as exc:
            raise CommandError(f"no monitor {options['monitor_id']}") from exc
        m = report.monitor
        write = self.stdout.write
        write(f"monitor {m.pk} “{m.name}” of {m.owner.get_username()} on source {m.source_id}")
        write(f"  enabled: {m.enabled}  every {m.interval}  next due: {report.next_due_at}")
        write(f"  status: {m.status} since {m.status_changed_at}")
        write(f"  status reason: {m.status_reason or '-'}")
        write(f"  last value: {m.last_value}  last evaluated: {m.last_evaluated_at}")
        write(f"  evaluated tick: {m.evaluated_due_at}  state version: {m.state_version}")
        write(f"incidents ({len(report.incidents)} most recent):")
        for i in report.incidents:
            end = i.resolved_at or "open"
            write(f"  {i.pk}: {i.severity} {i.opened_at} -> {end}  peak {i.peak_value}")
        write(f"notifications ({len(report.notifications)} most recent):")
        for n in report.notifications:
            write(
                f"  {n.pk}: {n.event} via {n.channel.kind} channel {n.channel_id}: {n.status}"
                f" after {n.attempts} attempts{f' ({n.last_error})' if n.last_error else ''}"
            )
