"""Creates the demo admin, its monitors, and 24 h of simulated GRO-01 history. Safe to rerun."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices import hosted
from growalert.demo import devices as demo
from growalert.demo.setup import ensure_demo_monitors
from monitors.influxdb import client as influx


class Command(BaseCommand):
    help = "Create the demo admin user and monitors, and load simulated GRO-01 data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="growalert-demo")
        parser.add_argument("--hours", type=float, default=24.0)

    def handle(self, *args: Any, **options: Any) -> None:
        admin = self._ensure_admin(options["username"], options["password"])
        created = ensure_demo_monitors(owner=admin)
        self._load_history(admin, options["hours"])
        self.stdout.write(f"demo monitors: {len(created)} created")

    def _ensure_admin(self, username: str, password: str) -> User:
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@growalert.local"}
        )
        if created:
            user.is_staff = True
            user.is_superuser = True
            user.set_password(password)
            user.save()
            self.stdout.write(f"created admin user {username!r}")
        else:
            self.stdout.write(f"admin user {username!r} already exists (password unchanged)")
        return user

    def _load_history(self, admin: User, hours: float) -> None:
        try:
            count = demo.load_history(owner=admin, hours=hours)
        except influx.InfluxError as exc:
            raise CommandError(f"could not load demo data into InfluxDB: {exc}") from exc
        database = hosted.database_name(admin.pk)
        self.stdout.write(
            f"loaded {count} GRO-01 points ({hours:g} h) into InfluxDB database {database!r}"
        )
