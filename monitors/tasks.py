"""Celery tasks of the monitors app: thin wrappers that take ids and call services."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from monitors import metrics, retention
from monitors.evaluate import dispatch, phase, pipeline

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def dispatch_due_monitors() -> int:
    """Every second (beat): claims due monitors and enqueues one evaluation per batch."""
    close_old_connections()  # workers reuse connections (CELERY_DB_REUSE_MAX): check them
    claimed = dispatch.claim_batches(
        now=timezone.now(),
        size=settings.EVALUATION_BATCH_SIZE,
        spread=settings.EVALUATION_SPREAD,
    )
    enqueue_batches(claimed)
    return sum(len(batch) for batch in claimed)


def enqueue_batches(claimed: list[list[dispatch.Claimed]]) -> None:
    """One evaluation task per batch, each run just after its source's data lands
    (``evaluate.phase``; at once when that instant is unknown)."""
    waits = phase.countdowns({batch[0].source_id for batch in claimed if batch})
    for batch in claimed:
        due = by_due(batch)
        wait = waits.get(batch[0].source_id, 0.0)
        if wait > 0:
            evaluate_monitors.apply_async(kwargs={"due": due}, countdown=wait)
        else:
            evaluate_monitors.delay(due=due)


def by_due(batch: list[dispatch.Claimed]) -> list[tuple[str, list[int]]]:
    """A batch as the task carries it: each due time once, with its monitors' ids. The monitors
    of a batch share a few due times (one per interval and phase), so this is several times
    smaller than a (monitor, due time) pair each, to encode, send and decode (issue 18)."""
    groups: dict[datetime, list[int]] = {}
    for claimed in batch:
        ids = groups.get(claimed.due_at)
        if ids is None:
            groups[claimed.due_at] = [claimed.monitor_id]
        else:
            ids.append(claimed.monitor_id)
    return [(at.isoformat(), ids) for at, ids in groups.items()]


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def evaluate_monitors(
    items: list[tuple[int, str]] | None = None, due: list[tuple[str, list[int]]] | None = None
) -> int:
    """Evaluates one batch (one source): observe, decide, write state + outbox in one
    transaction. Safe to run twice: a tick already applied is skipped.

    The batch is ``due`` (each due time with its monitors' ids, ``by_due``), or ``items``
    (a (monitor, due time) pair each: what a dispatcher sent before 2026-12-04, still queued
    during an upgrade)."""
    close_old_connections()
    pairs = [(pk, datetime.fromisoformat(at)) for pk, at in items or ()]
    for at, ids in due or ():
        when = datetime.fromisoformat(at)
        pairs += [(pk, when) for pk in ids]
    result = pipeline.evaluate_batch(pairs)
    metrics.record_batch(
        outcomes=result.outcomes,
        latencies=result.latencies,
        source_kind=result.source_kind,
        flavor=result.flavor,
    )
    return result.applied


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=60)
def repair_schedules() -> int:
    """Every minute (beat): puts enabled monitors missing from the dispatcher's table back on
    it, and counts them in /metrics (growalert_schedule_repairs_total)."""
    close_old_connections()
    repaired = dispatch.repair_schedules(now=timezone.now())
    if repaired:
        metrics.record_schedule_repairs(len(repaired))
    return len(repaired)


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=330)
def prune_old_rows() -> int:
    """Every 5 minutes (beat): deletes rows past their retention, in small batches within
    RETENTION_TIME_BUDGET_SECONDS (monitors/retention.py)."""
    close_old_connections()
    report = retention.run()
    metrics.record_pruned(report.deleted)
    if report.total or not report.finished:
        logger.info(
            "pruned %d rows in %d batches%s: %s",
            report.total,
            report.batches,
            "" if report.finished else " (time budget spent, more left)",
            ", ".join(f"{name} {rows}" for name, rows in report.deleted.items() if rows),
        )
    return report.total
