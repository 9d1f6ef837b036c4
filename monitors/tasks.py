"""Celery tasks of the monitors app: thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from monitors.demo import simulate


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def simulate_demo_devices() -> None:
    """Keeps the demo's GRO-01 devices reporting (only when GROWALERT_DEMO is on)."""
    if settings.GROWALERT_DEMO:
        simulate.write_live(lookback_s=10)
