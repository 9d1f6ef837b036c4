"""``manage.py prune``: deletes rows past their retention now (what the beat task does)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitors import metrics, retention


class Command(BaseCommand):
    help = (
        "Delete notifications, incidents, Stripe events, expired sessions and admin log rows "
        "past their retention (RETENTION_* settings), in small batches; --dry-run counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument(
            "--only", action="append", choices=retention.NAMES, help="this rule only (repeatable)"
        )
        parser.add_argument("--batch-size", type=int, help="rows per statement (at most 1000)")
        parser.add_argument("--budget", type=float, help="seconds to spend at most")

    def handle(self, *args: Any, **options: Any) -> None:
        only = set(options["only"]) if options["only"] else None
        ages = retention.ages()
        if options["dry_run"]:
            found = retention.dry_run(only=only)
            for name, rows in found.items():
                self.stdout.write(f"{name:<18} {rows:>9} rows (retention: {_age(ages[name])})")
            self.stdout.write(f"{sum(found.values())} rows would be deleted (nothing deleted)")
            return
        budget = None if options["budget"] is None else max(0.1, min(options["budget"], 3600.0))
        report = retention.run(batch=options["batch_size"], budget_seconds=budget, only=only)
        metrics.record_pruned(report.deleted)
        for name, rows in report.deleted.items():
            self.stdout.write(f"{name:<18} {rows:>9} rows deleted (retention: {_age(ages[name])})")
        self.stdout.write(f"{report.total} rows deleted in {report.batches} batches")
        if report.skipped:
            self.stdout.write(f"locked, left for the next run: {', '.join(report.skipped)}")
        if not report.finished:
            self.stdout.write("time budget spent: more rows are left for the next run")


def _age(age: Any) -> str:
    if age is None:
        return "kept for ever"
    if not age:
        return "once expired"
    return f"{age.total_seconds() / 86400:g} days"
