"""``manage.py resume_account <user>``: resumes every paused monitor of an account (also those
its owner had paused: list them first with --dry-run)."""

from __future__ import annotations

from monitors.management.commands import pause_account


class Command(pause_account.Command):
    help = "Resume every paused monitor of an account (--dry-run lists them)."
    enabled = True
