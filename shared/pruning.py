"""Deleting old rows in small batches, never in the way of the pipeline.

A :class:`Rule` is one table's retention: a ``WHERE`` clause that is true of a row that may go
(old enough, and nothing still needs it), the key to walk the table by (an indexed column), and
any dependent rows to delete with it. :func:`prune` deletes at most ``batch`` rows per
statement, each statement in its own short transaction, until nothing is left or its time
budget is spent. Every batch locks its rows with ``FOR UPDATE SKIP LOCKED``: a row another
transaction holds (a delivery, a resend, an evaluation) is skipped, never waited for, and is
taken on a later run. ``lock_timeout`` bounds any other wait (an index page, a foreign key
check) so a prune gives up rather than queue in front of the workers.

The rules (what is old, what must be kept) live with their apps: ``monitors/retention.py``
gathers them; this module knows nothing about any table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import OperationalError, connection, transaction

logger = logging.getLogger(__name__)

MAX_BATCH = 1000  # rows per statement, whatever the caller asks
LOCK_TIMEOUT_MS = 1000  # the longest a batch waits for any lock before it gives up


@dataclass(frozen=True)
class Rule:
    """One table's retention. ``where`` is SQL on the alias ``t`` with the named parameters
    ``%(cutoff)s`` and ``%(now)s``; ``order_by`` an indexed column of ``t`` (oldest first);
    ``dependents`` are ``(table, column)`` pairs whose rows point at ``t.<key>`` and go with
    it (tables without ON DELETE CASCADE in the database: Django cascades in Python)."""

    name: str
    table: str
    where: str
    order_by: str
    key: str = "id"
    dependents: tuple[tuple[str, str], ...] = ()

    def _candidates(self) -> str:
        # Identifiers and clauses come from the code's own rules, never from input.
        return f"SELECT t.{self.key} FROM {self.table} AS t WHERE {self.where}"  # noqa: S608

    def delete_sql(self) -> str:
        """One statement: lock up to ``%(batch)s`` prunable rows (skipping locked ones), delete
        their dependents, then them; returns the deleted keys."""
        doomed = (
            f"{self._candidates()} ORDER BY t.{self.order_by} LIMIT %(batch)s "
            "FOR UPDATE OF t SKIP LOCKED"
        )
        parts = [f"doomed AS ({doomed})"]
        for i, (table, column) in enumerate(self.dependents):
            parts.append(
                f"dep{i} AS (DELETE FROM {table} "  # noqa: S608
                f"WHERE {column} IN (SELECT {self.key} FROM doomed))"
            )
        return (
            f"WITH {', '.join(parts)} DELETE FROM {self.table} "  # noqa: S608
            f"WHERE {self.key} IN (SELECT {self.key} FROM doomed) RETURNING {self.key}"
        )

    def count_sql(self) -> str:
        return f"SELECT count(*) FROM {self.table} AS t WHERE {self.where}"  # noqa: S608


@dataclass(frozen=True)
class Target:
    """A rule with the age it applies: rows older than ``cutoff`` (None: keep them all)."""

    rule: Rule
    cutoff: datetime | None


@dataclass
class Report:
    deleted: dict[str, int] = field(default_factory=dict)  # rule name -> rows
    batches: int = 0
    finished: bool = True  # False: the time budget ran out with rows left
    skipped: list[str] = field(default_factory=list)  # rules that hit lock_timeout

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def count(targets: Sequence[Target], *, now: datetime) -> dict[str, int]:
    """What :func:`prune` would delete now (a dry run: counts, deletes nothing)."""
    found: dict[str, int] = {}
    with connection.cursor() as cursor:
        for target in targets:
            if target.cutoff is None:
                found[target.rule.name] = 0
                continue
            cursor.execute(target.rule.count_sql(), {"cutoff": target.cutoff, "now": now})
            found[target.rule.name] = int(cursor.fetchone()[0])
    return found


def delete_batch(target: Target, *, now: datetime, batch: int) -> int:
    """Deletes one batch (at most ``batch`` rows, capped at MAX_BATCH) in its own transaction."""
    params = {"cutoff": target.cutoff, "now": now, "batch": max(1, min(batch, MAX_BATCH))}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
        cursor.execute(target.rule.delete_sql(), params)
        return len(cursor.fetchall())


def prune(
    targets: Sequence[Target],
    *,
    now: datetime,
    batch: int = MAX_BATCH,
    budget_seconds: float = 20.0,
    pause_seconds: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Runs every target in turn, batch after batch, until each has nothing left or
    ``budget_seconds`` have passed (the rest waits for the next run). ``pause_seconds``
    between batches leaves the database to the pipeline for a moment."""
    report = Report()
    deadline = clock() + budget_seconds
    batch = max(1, min(batch, MAX_BATCH))
    for target in targets:
        report.deleted.setdefault(target.rule.name, 0)
        if target.cutoff is None:
            continue
        while True:
            if clock() >= deadline:
                report.finished = False
                return report
            try:
                deleted = delete_batch(target, now=now, batch=batch)
            except OperationalError as exc:  # lock_timeout: leave this table for the next run
                logger.warning("prune %s: %s; left for the next run", target.rule.name, exc)
                report.skipped.append(target.rule.name)
                break
            report.batches += 1
            report.deleted[target.rule.name] += deleted
            if deleted < batch:
                break
            if pause_seconds:
                time.sleep(pause_seconds)
    return report
