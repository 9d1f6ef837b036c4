"""Housekeeping tasks of the project itself."""

from __future__ import annotations

from celery import shared_task

from growalert.health import heartbeat, operator


@shared_task(ignore_result=True)
def record_heartbeat() -> None:
    """Proves beat and a worker are alive: /health/deps reports the age of the last beat."""
    heartbeat.record()


@shared_task(ignore_result=True)
def check_monitoring() -> None:
    """Emails the operator once per blind episode that lasts, and when it ends."""
    operator.check()
