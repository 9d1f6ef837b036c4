"""Creates the demo admin, its monitors, and 24 h of simulated GRO-01 history. Safe to rerun."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitors.demo import gro01
from monitors.demo.setup import ensure_demo_monitors
from monitors.influxdb import client as influx


class Command(BaseCommand):
    help = "Create the demo admin user and monitors, and load simulated GRO-01 data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="growalert-demo")
        parser.add_argument("--hours", type=float, default=24.0)

    def handle(self, *args: Any, **options: Any) -> None:
        admin = self._ensure_admin(options["username"], options["password"])
        self._load_history(options["hours"])
        created = ensure_demo_monitors(owner=admin)
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

    def _load_history(self, hours: float) -> None:
        database = settings.INFLUXDB_DEMO_DATABASE
        lines = list(gro01.history_lines(end_ms=int(time.time() * 1000), hours=hours))
        try:
            with influx.InfluxClient(settings.INFLUXDB_URL, timeout=30, trusted=True) as client:
                client.create_database(database)
                for start in range(0, len(lines), 5000):
                    client.write(lines[start : start + 5000], database=database)
        except influx.InfluxError as exc:
            raise CommandError(f"could not load demo data into InfluxDB: {exc}") from exc
        self.stdout.write(
            f"loaded {len(lines)} GRO-01 points ({hours:g} h) into InfluxDB database {database!r}"
        )
