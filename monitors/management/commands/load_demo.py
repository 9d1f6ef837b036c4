"""Creates the demo admin and loads simulated GRO-01 history into InfluxDB. Safe to rerun."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitors import influx
from monitors.demo import gro01


class Command(BaseCommand):
    help = "Create the demo admin user and load simulated GRO-01 device data into InfluxDB."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="growalert-demo")
        parser.add_argument("--hours", type=float, default=24.0)

    def handle(self, *args: Any, **options: Any) -> None:
        self._ensure_admin(options["username"], options["password"])
        self._load_history(options["hours"])

    def _ensure_admin(self, username: str, password: str) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
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

    def _load_history(self, hours: float) -> None:
        database = settings.INFLUXDB_DEMO_DATABASE
        try:
            with influx.InfluxClient(settings.INFLUXDB_URL, timeout=30) as client:
                client.create_database(database)
                lines = list(gro01.history_lines(end_ms=int(time.time() * 1000), hours=hours))
                for start in range(0, len(lines), 5000):
                    client.write(lines[start : start + 5000], database=database)
        except influx.InfluxError as exc:
            raise CommandError(f"could not load demo data into InfluxDB: {exc}") from exc
        self.stdout.write(
            f"loaded {len(lines)} GRO-01 points ({hours:g} h) into InfluxDB database {database!r}"
        )
