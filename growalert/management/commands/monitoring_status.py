"""What an operator needs at 3 am: is monitoring blind, why, and since when. Exit status 1 when
it is blind (usable from cron or a shell check)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from growalert.health import monitoring, operator


class Command(BaseCommand):
    help = "Print whether monitoring is blind or late, its reasons and the open episode."

    def handle(self, *args: Any, **options: Any) -> None:
        state = monitoring.assess()
        report = {
            **state.as_json(),
            "dependencies": {name: r.status for name, r in state.probes.items()},
            "episode": operator.episode_json(),
        }
        self.stdout.write(json.dumps(report, indent=2))
        if state.blind:
            raise SystemExit(1)
