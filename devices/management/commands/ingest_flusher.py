"""``manage.py ingest_flusher``: moves accepted readings from Redis to InfluxDB until stopped."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from devices.ingest.queue import Flusher


class Command(BaseCommand):
    help = "Writes the readings accepted by POST /ingest to each account's InfluxDB database."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        flusher = Flusher()
        self.stdout.write(f"ingest flusher {flusher.consumer} running")
        try:
            flusher.run(stop=stop)
        finally:
            flusher.close()
