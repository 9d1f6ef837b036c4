"""Do schedules keep their spread? (issue 14: after an outage they collapsed onto one instant)

For each N: N monitors with due times spread evenly over a 10 s interval. The real claim
(``dispatch.claim_due``, one statement) runs once per second-slot, with ``now`` driven
explicitly rather than slept: one interval on time, then nothing for OUTAGE seconds (the
dispatcher or beat was down), then the catch-up tick and the next two intervals. Printed: the
largest number claimed in one tick against the mean (target within 1.5x), how wide the due
times are right after the catch-up, and how long the claims took.

Then N monitors are created at once (``bulk_create``; the schedule trigger gives them their first
due time): how many are first due in each one-second slot from the moment the creation began,
which is what each tick of the dispatcher would claim, against N / 10 s.

Everything runs in one transaction that is rolled back: the database is left as it was. The
script uses only what the dispatcher had before the fix too, so it measures the old code when
run from a checkout of it (with the old trigger: migrate monitors to 0010 first).

    .venv/bin/python bench/bench_phase.py [N ...]          # default: 2000 10000
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

common.setup_django()

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from monitors.evaluate import dispatch
from monitors.models import Monitor, Source

INTERVAL = timedelta(seconds=10)
OUTAGE = timedelta(seconds=60)
SECOND = timedelta(seconds=1)


class Rollback(Exception):
    pass


def make_monitors(count: int) -> tuple[list[int], tuple[int, ...]]:
    """``count`` monitors of a fresh owner on a 10 s interval; returns their ids and the other
    owners (left out of every claim, so nothing else in the database is counted)."""
    owner = get_user_model().objects.create(username=f"bench-phase-{time.monotonic_ns()}")
    source = Source.objects.create(
        owner=owner, name="bench", url="http://127.0.0.1:9", database="x"
    )
    monitors = Monitor.objects.bulk_create(
        [
            common.monitor(
                owner,
                source,
                f"phase {i}",
                f"dev-{i % 1000}",
                critical=30.0,
                interval=INTERVAL,
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    others = tuple(get_user_model().objects.exclude(pk=owner.pk).values_list("pk", flat=True))
    return [m.pk for m in monitors], others


def spread_evenly(ids: list[int], start: datetime) -> None:
    """Due times start + INTERVAL * i / N for i = 1 ... N: ticks start + 1 s ... start + 10 s
    claim each once."""
    params: dict[str, Any] = {"start": start, "over": INTERVAL, "n": float(len(ids)), "ids": ids}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE monitors_schedule AS s
            SET next_due_at = %(start)s::timestamptz + %(over)s::interval * (o.n / %(n)s)
            FROM (SELECT monitor_id, row_number() OVER (ORDER BY monitor_id) AS n
                  FROM monitors_schedule WHERE monitor_id = ANY(%(ids)s)) AS o
            WHERE s.monitor_id = o.monitor_id
            """,
            params,
        )


def claim(now: datetime, others: tuple[int, ...], took: list[float]) -> int:
    began = time.perf_counter()
    claimed = dispatch.claim_due(now=now, excluded_owner_ids=others)
    took.append(time.perf_counter() - began)
    return len(claimed)


def interval_of_ticks(after: datetime, others: tuple[int, ...], took: list[float]) -> list[int]:
    seconds = int(INTERVAL / SECOND)
    return [claim(after + k * SECOND, others, took) for k in range(1, seconds + 1)]


def due_width(ids: list[int]) -> timedelta:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(next_due_at) - min(next_due_at) FROM monitors_schedule "
            "WHERE monitor_id = ANY(%s)",
            [ids],
        )
        (width,) = cursor.fetchone()
    return width  # type: ignore[no-any-return]


def ratio(counts: list[int]) -> str:
    mean = sum(counts) / len(counts)
    return f"max {max(counts):>6,} / mean {mean:>8,.1f} = {max(counts) / mean:5.2f}x"


def outage(count: int) -> None:
    ids, others = make_monitors(count)
    start = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    spread_evenly(ids, start)
    took: list[float] = []
    on_time = interval_of_ticks(start, others, took)
    recovered = start + INTERVAL + OUTAGE
    catch_up = claim(recovered, others, took)
    catch_up_ms = took[-1] * 1000
    width = due_width(ids)
    first = interval_of_ticks(recovered, others, took)
    second = interval_of_ticks(recovered + INTERVAL, others, took)
    print(f"{count:,} monitors evenly over 10 s, outage of {OUTAGE.seconds} s")
    print(f"  on time, one interval:            {ratio(on_time)}   {on_time}")
    print(
        f"  catch-up tick: {catch_up:,} claimed in {catch_up_ms:.0f} ms; "
        f"their next due times span {width.total_seconds() * 1000:,.0f} ms"
    )
    print(f"  first interval after the outage:  {ratio(first)}   {first}")
    print(f"  second interval after the outage: {ratio(second)}   {second}")
    print(f"  claim time: max {max(took) * 1000:.0f} ms over {len(took)} claims")


def created_at_once(count: int) -> None:
    began = timezone.now()
    ids, _ = make_monitors(count)  # the trigger writes their first due times
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT floor(extract(epoch FROM next_due_at - %s))::int, count(*) "
            "FROM monitors_schedule WHERE monitor_id = ANY(%s) GROUP BY 1 ORDER BY 1",
            [began, ids],
        )
        slots = dict(cursor.fetchall())
    per_slot = [slots.get(k, 0) for k in range(max(slots) + 1)]
    mean = count / (INTERVAL / SECOND)
    statements = -(-count // 2000)
    print(f"{count:,} monitors created at once (bulk_create in {statements} statement(s))")
    print(
        f"  first due times per 1 s slot (what each tick claims): max {max(per_slot):,} "
        f"/ {mean:,.0f} (N / 10 s) = {max(per_slot) / mean:.2f}x   {per_slot}"
    )


def main() -> None:
    counts = [int(arg) for arg in sys.argv[1:]] or [2000, 10_000]
    for count in counts:
        for scenario in (outage, created_at_once):
            try:
                with transaction.atomic():
                    scenario(count)
                    raise Rollback
            except Rollback:
                pass


if __name__ == "__main__":
    main()
