"""Housekeeping tasks of the project itself."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from growalert.demo import simulate
from growalert.health import heartbeat, operator


@shared_task(ignore_result=True)
def record_heartbeat() -> None:
    """Proves beat and a worker are alive: /health/deps reports the age of the last beat."""
    heartbeat.record()


@shared_task(ignore_result=True)
def check_monitoring() -> None:
    """Emails the operator once per blind episode that lasts, and when it ends."""
    operator.check()


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def simulate_demo_devices() -> None:
    """Keeps the demo's GRO-01 devices reporting (only when GROWALERT_DEMO is on)."""
    if settings.GROWALERT_DEMO:
        simulate.write_live(lookback_s=10)
