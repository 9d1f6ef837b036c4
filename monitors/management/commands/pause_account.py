"""``manage.py pause_account <user>``: pauses every monitor of an account (``resume_account``
resumes them)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitors import operations


class Command(BaseCommand):
    help = "Pause every enabled monitor of an account (open incidents end, channels are told)."
    enabled = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("account", help="username, email or id")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            owner = operations.find_user(options["account"])
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        changed = operations.set_account_enabled(
            owner, enabled=self.enabled, dry_run=options["dry_run"]
        )
        verb = "resumed" if self.enabled else "paused"
        if options["dry_run"]:
            verb = f"would be {verb}"
        ids = ", ".join(map(str, changed[:50])) + (" …" if len(changed) > 50 else "")
        self.stdout.write(f"{owner.get_username()}: {len(changed)} monitors {verb} {ids}".rstrip())
