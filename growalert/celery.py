"""The Celery app. Periodic tasks are defined here in code (``beat_schedule``) and synced by
django-celery-beat's DatabaseScheduler into Postgres, so beat holds a small fixed set of
entries however many monitors exist."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, worker_init, worker_process_shutdown
from kombu import Exchange, Queue

from observability import celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")

# Task modules are listed explicitly (not only autodiscovered, which is lazy) so that every task
# named in beat_schedule is registered as soon as the app is imported, in any process.
app = Celery("growalert", include=["growalert.tasks", "monitors.tasks", "monitors.notify.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def route(name: str, *args: Any, **kwargs: Any) -> dict[str, str]:
    """The routes, in one place: delivery tasks on the delivery queue, everything else
    (dispatcher, evaluations, housekeeping) on the evaluation queue. Read when a task is sent,
    not when this module is imported: a settings module that star-imports growalert.settings
    (an operator's overlay, the API bench's) imports this package before it is complete."""
    from django.conf import settings

    if name.startswith("monitors.notify.tasks."):
        return {"queue": settings.CELERY_DELIVERY_QUEUE}
    return {"queue": settings.CELERY_EVALUATION_QUEUE}


def declared_queues() -> list[Queue]:
    """Both queues, each with its own direct exchange and routing key (with a shared default
    exchange and key, a message for one queue would also land in the other). A worker started
    without ``-Q`` consumes both; ``make run`` starts one worker per queue."""
    from django.conf import settings

    names = (settings.CELERY_EVALUATION_QUEUE, settings.CELERY_DELIVERY_QUEUE)
    return [Queue(n, Exchange(n, type="direct"), routing_key=n) for n in dict.fromkeys(names)]


app.conf.task_routes = (route,)
# Log lines of a task run carry its id and name; the worker's log handlers get the format.
celery_signals.connect()
celery_signals.connect_tracing()  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set


@celeryd_init.connect
def _declare_queues(conf: Any = None, **kwargs: Any) -> None:
    """Celery's documented hook for a worker's configuration, run before it subscribes."""
    conf.task_queues = declared_queues()


@worker_init.connect
def _warm_up(**kwargs: Any) -> None:
    """The first send's one-time costs (the URLconf, the TLS context, Redis) paid before the
    worker consumes (``monitors.notify.warmup``); after Celery's Django fix-up set Django up
    (connected first, when the app was made). A prefork pool's children inherit them."""
    from monitors.notify import warmup

    warmup.warm_up()


app.conf.beat_schedule = {
    "dispatch-due-monitors": {
        "task": "monitors.tasks.dispatch_due_monitors",
        "schedule": 1.0,
        "options": {"expires": 1.0},
    },
    "deliver-due-notifications": {
        "task": "monitors.notify.tasks.deliver_due_notifications",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
    "escalate-due-incidents": {
        "task": "monitors.notify.tasks.escalate_due_incidents",
        "schedule": 1.0,
        "options": {"expires": 1.0},
    },
    "repair-schedules": {
        "task": "monitors.tasks.repair_schedules",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "record-heartbeat": {
        "task": "growalert.tasks.record_heartbeat",
        "schedule": 10.0,
        "options": {"expires": 10.0},
    },
    "check-monitoring": {
        "task": "growalert.tasks.check_monitoring",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    "prune-old-rows": {
        "task": "monitors.tasks.prune_old_rows",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "simulate-demo-devices": {
        "task": "growalert.tasks.simulate_demo_devices",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
}


@worker_process_shutdown.connect
def _mark_metrics_process_dead(pid: int | None = None, **kwargs: object) -> None:
    """prometheus_client multiprocess bookkeeping for a pool process that exits."""
    from shared import metrics

    metrics.mark_process_dead(pid or os.getpid())
