"""What an evaluation task carries: each due time once, with its monitors' ids, through the
broker's JSON, and the (monitor, due time) pairs a dispatcher sent before still understood."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from kombu.serialization import dumps, loads

from billing.gating import comp
from monitors import tasks
from monitors.evaluate import dispatch, pipeline
from tests.factories import MonitorFactory, SourceFactory


def _through_broker(**kwargs: object) -> dict[str, Any]:
    """The task's keyword arguments as a worker decodes them (Celery's JSON serializer)."""
    content_type, encoding, body = dumps(kwargs, serializer="json")
    decoded: dict[str, Any] = loads(body, content_type, encoding)
    return decoded


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[int, datetime]]]:
    batches: list[list[tuple[int, datetime]]] = []

    def evaluate_batch(items: list[tuple[int, datetime]]) -> pipeline.BatchResult:
        batches.append(items)
        return pipeline.BatchResult(applied=len(items))

    monkeypatch.setattr(pipeline, "evaluate_batch", evaluate_batch)
    return batches


def claimed_batch(*seconds_ago: int) -> tuple[list[Any], list[dispatch.Claimed]]:
    """Monitors of one source due that many seconds ago, and the dispatcher's one batch."""
    now = timezone.now()
    source = SourceFactory()
    comp(source.owner)  # an owner whose service is active: the dispatcher claims its monitors
    monitors = [
        MonitorFactory(owner=source.owner, source=source, next_due_at=now - timedelta(seconds=s))
        for s in seconds_ago
    ]
    (batch,) = dispatch.claim_batches(now=now, size=100)
    return monitors, batch


@pytest.mark.django_db
def test_a_claimed_batch_reaches_the_worker_with_every_monitor_and_its_own_due_time(
    evaluated: list[list[tuple[int, datetime]]],
) -> None:
    monitors, batch = claimed_batch(2, 2, 2, 1, 1)

    due = tasks.by_due(batch)
    assert sorted(len(ids) for _, ids in due) == [2, 3]  # each due time once
    assert tasks.evaluate_monitors.run(**_through_broker(due=due)) == 5

    (items,) = evaluated
    assert sorted(items) == sorted((m.pk, m.next_due_at) for m in monitors)
    assert all(at.tzinfo is not None for _, at in items)


@pytest.mark.django_db
def test_pairs_sent_by_an_earlier_dispatcher_are_evaluated_the_same(
    evaluated: list[list[tuple[int, datetime]]],
) -> None:
    _, batch = claimed_batch(2, 2, 1)
    pairs = [(c.monitor_id, c.due_at.isoformat()) for c in batch]

    tasks.evaluate_monitors.run(**_through_broker(items=pairs))
    tasks.evaluate_monitors.run(**_through_broker(due=tasks.by_due(batch)))

    before, after = evaluated
    assert sorted(before) == sorted(after) == sorted((c.monitor_id, c.due_at) for c in batch)


def test_a_batch_due_on_one_second_is_several_times_smaller_to_send() -> None:
    at = timezone.now()
    batch = [dispatch.Claimed(monitor_id=870_000 + n, source_id=1, due_at=at) for n in range(1000)]

    grouped = json.dumps(tasks.by_due(batch))
    pairs = json.dumps([(c.monitor_id, c.due_at.isoformat()) for c in batch])

    assert len(grouped) * 4 < len(pairs)
