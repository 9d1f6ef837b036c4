"""Counters and histograms in prometheus_client's multiprocess mode.

Evaluations and deliveries happen in Celery worker processes while /metrics is served by
web workers: every process writes its own memory-mapped file in
``settings.PROMETHEUS_MULTIPROC_DIR`` and the scrape (growalert.metrics) sums them. The counts
therefore survive a Redis restart and a worker that exits (its file stays and keeps counting in
the sum). The web and worker processes must share that directory (same host, or one volume in
docker-compose). An app defines its metrics with ``registry=None`` after importing this module.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from django.conf import settings
from prometheus_client import multiprocess, values

logger = logging.getLogger(__name__)

# Settings put PROMETHEUS_MULTIPROC_DIR in the environment; should prometheus_client have been
# imported before them, its value class is still the single-process one: switch it.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR)
if values.ValueClass is values.MutexValue:
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def record(write: Callable[[], None]) -> None:
    """Runs ``write`` (metric updates). Metrics must never break the work they count: an error
    writing the metrics file is logged."""
    try:
        write()
    except (OSError, ValueError) as exc:
        logger.warning("could not record metrics: %s", exc)


def mark_process_dead(pid: int) -> None:
    """Bookkeeping when a Celery child exits (its counter file stays, and counts)."""
    multiprocess.mark_process_dead(pid, settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]
