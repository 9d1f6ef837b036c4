"""``manage.py evaluate_on_arrival``: decides hosted monitors as their readings arrive, until
stopped (devices/arrival/evaluator.py, docs/arrival.md)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.arrival.evaluator import ArrivalEvaluator
from monitors.notify import warmup


class Command(BaseCommand):
    help = "Evaluates the monitors of hosted sources on the readings POST /ingest accepts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--shard",
            type=int,
            default=0,
            help="the shard to evaluate (0 to ARRIVAL_SHARDS - 1); several processes of one "
            "shard are standbys for each other",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.ARRIVAL_EVALUATION:
            raise CommandError("ARRIVAL_EVALUATION is off: the poller evaluates every monitor")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            evaluator = ArrivalEvaluator(shard=options["shard"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        warmup.warm_up(send=False)  # the first firing round does not wait for the URLconf
        name = f"{evaluator.consumer} (shard {evaluator.shard})"
        self.stdout.write(f"arrival evaluator {name} running")
        try:
            evaluator.run(stop=stop)
        finally:
            evaluator.close()
