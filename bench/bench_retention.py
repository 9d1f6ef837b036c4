"""Retention soak on a moved clock: do Postgres's tables stay flat?

M monitors (default 10,000) on one channel. Each simulated hour, FLIP_RATE of them fire and
resolve ten minutes later: one incident, a ``fired`` and a ``resolved`` notification (delivered,
one delivery attempt each). The first 100 monitors fire once at the start and never resolve
(open incidents, whose notifications must stay). After each simulated hour retention runs as the
beat task does (``monitors.retention.run`` with the simulated ``now``, batches of
RETENTION_BATCH_SIZE); every ``--vacuum-hours`` a plain ``VACUUM`` stands in for autovacuum,
which on a real clock visits a table this busy many times an hour (0: rely on autovacuum alone,
which a compressed clock outruns). Every ``--report-hours`` it prints the rows and
``pg_total_relation_size`` of the outbox, the delivery attempts and the incidents.

This is a time-compressed soak of the tables only: no evaluation runs, nothing is delivered,
and a day of rows is written in seconds. It is not the 24 h soak of issue 21.

    .venv/bin/python bench/bench_retention.py [--monitors 10000] [--days 12] [--flip-rate 0.05]
        [--notification-days 3] [--incident-days 5] [--vacuum-hours 6] [--report-hours 12]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timedelta

import common  # bench/common.py: this directory is first on sys.path

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--monitors", type=int, default=10_000)
parser.add_argument("--days", type=float, default=12.0, help="simulated days")
parser.add_argument("--flip-rate", type=float, default=0.05, help="share firing per hour")
parser.add_argument("--notification-days", type=float, default=3.0)
parser.add_argument("--incident-days", type=float, default=5.0)
parser.add_argument("--vacuum-hours", type=int, default=6, help="0: autovacuum only")
parser.add_argument("--report-hours", type=int, default=12)
parser.add_argument("--batch", type=int, default=1000)
args = parser.parse_args()

common.setup_django(
    env={
        "RETENTION_NOTIFICATIONS_DAYS": str(args.notification_days),
        "RETENTION_INCIDENTS_DAYS": str(args.incident_days),
        "RETENTION_BATCH_SIZE": str(args.batch),
        "RETENTION_TIME_BUDGET_SECONDS": "240",
        "RETENTION_PAUSE_SECONDS": "0",
    }
)

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from monitors import retention
from monitors.models import Channel, Monitor, Source

USERNAME = "bench-retention"
TABLES = ("monitors_notification", "monitors_deliveryattempt", "monitors_incident")
OPEN_FOREVER = 100


def clean(owner_id: int) -> None:
    """Everything a previous run left, in SQL (Django's cascade would load every row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM monitors_deliveryattempt WHERE notification_id IN ("
            " SELECT n.id FROM monitors_notification n JOIN monitors_channel c"
            " ON c.id = n.channel_id WHERE c.owner_id = %s)",
            [owner_id],
        )
        cursor.execute(
            "DELETE FROM monitors_notification WHERE channel_id IN ("
            " SELECT id FROM monitors_channel WHERE owner_id = %s)",
            [owner_id],
        )
        cursor.execute(
            "DELETE FROM monitors_incident WHERE monitor_id IN ("
            " SELECT id FROM monitors_monitor WHERE owner_id = %s)",
            [owner_id],
        )
        cursor.execute(
            "DELETE FROM monitors_monitor_channels WHERE monitor_id IN ("
            " SELECT id FROM monitors_monitor WHERE owner_id = %s)",
            [owner_id],
        )
        cursor.execute("DELETE FROM monitors_monitor WHERE owner_id = %s", [owner_id])
    Channel.objects.filter(owner_id=owner_id).delete()
    Source.objects.filter(owner_id=owner_id).delete()


def setup() -> tuple[list[int], int]:
    owner, _ = get_user_model().objects.get_or_create(username=USERNAME)
    clean(owner.pk)
    source = Source.objects.create(
        owner=owner, name="bench", url="http://127.0.0.1:9", database="bench"
    )
    channel = Channel.objects.create(
        owner=owner, name="bench", kind="webhook", config={"url": "http://127.0.0.1:9/hook"}
    )
    monitors = Monitor.objects.bulk_create(
        [
            common.monitor(owner, source, f"retention {i}", f"dev-{i}", critical=30.0)
            for i in range(args.monitors)
        ],
        batch_size=5000,
    )
    # Paused: the dispatcher (if a beat runs on this database) leaves them alone.
    Monitor.objects.filter(owner=owner).update(enabled=False)
    return [m.pk for m in monitors], channel.pk


# One simulated hour's flips, written in three statements: incidents, then the fired and
# resolved notifications pointing at them, then one delivery attempt per notification.
FLIPS = """
WITH picked AS (
    SELECT m AS monitor_id, %(start)s + (random() * interval '50 minutes') AS opened
    FROM unnest(%(monitors)s::bigint[]) AS m
), incidents AS (
    INSERT INTO monitors_incident
        (monitor_id, severity, opened_at, resolved_at, opened_value, peak_value, last_value,
         summary, series_key)
    SELECT monitor_id, 'critical', opened, opened + interval '10 minutes', 41, 41, 20,
           'bench: temperature above 30', ''
    FROM picked
    RETURNING id, monitor_id, opened_at, resolved_at
), told AS (
    INSERT INTO monitors_notification
        (id, monitor_id, incident_id, channel_id, event, idempotency_key, payload, status,
         attempts, next_attempt_at, sent_at, last_error, created_at, series_key)
    SELECT gen_random_uuid(), i.monitor_id, i.id, %(channel)s, e.event,
           'bench-retention:' || i.id || ':' || e.event, %(payload)s::jsonb, 'sent', 1,
           e.at, e.at + interval '1 second', '', e.at, ''
    FROM incidents i
    CROSS JOIN LATERAL (VALUES ('fired', i.opened_at), ('resolved', i.resolved_at)) AS e(event, at)
    RETURNING id, created_at
)
INSERT INTO monitors_deliveryattempt
    (notification_id, number, outcome, status_code, error, started_at, duration_ms)
SELECT id, 1, 'sent', 200, '', created_at, 12.5 FROM told
"""

OPEN = """
WITH incidents AS (
    INSERT INTO monitors_incident
        (monitor_id, severity, opened_at, opened_value, peak_value, last_value, summary,
         series_key)
    SELECT m, 'critical', %(start)s, 41, 41, 41, 'bench: never resolves', ''
    FROM unnest(%(monitors)s::bigint[]) AS m
    RETURNING id, monitor_id, opened_at
)
INSERT INTO monitors_notification
    (id, monitor_id, incident_id, channel_id, event, idempotency_key, payload, status,
     attempts, next_attempt_at, sent_at, last_error, created_at, series_key)
SELECT gen_random_uuid(), monitor_id, id, %(channel)s, 'fired',
       'bench-retention:open:' || id, %(payload)s::jsonb, 'sent', 1, opened_at, opened_at, '',
       opened_at, ''
FROM incidents
"""


def sizes() -> dict[str, tuple[int, int]]:
    found = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT count(*), pg_total_relation_size(%s) FROM {table}", [table])  # noqa: S608
            rows, size = cursor.fetchone()
            found[table] = (int(rows), int(size))
    return found


def vacuum() -> None:
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM {table}")


def main() -> None:
    import json

    monitors, channel = setup()
    hours = int(args.days * 24)
    per_hour = max(1, int(len(monitors) * args.flip_rate))
    payload = json.dumps(common.PAYLOAD)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=hours)
    print(
        f"{len(monitors)} monitors, {per_hour} flips per simulated hour for {hours} h "
        f"({args.days:g} days); notifications kept {args.notification_days:g} days, resolved "
        f"incidents {args.incident_days:g} days; VACUUM every "
        f"{args.vacuum_hours or 'never (autovacuum only)'} h; load average "
        f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            OPEN,
            {
                "start": start,
                "monitors": monitors[:OPEN_FOREVER],
                "channel": channel,
                "payload": payload,
            },
        )
    cursor_at = OPEN_FOREVER
    header = (
        f"{'sim day':>7} {'notifications':>13} {'MiB':>7} {'attempts':>9} {'MiB':>7} "
        f"{'incidents':>9} {'MiB':>7} {'deleted/h':>9} {'prune ms/h':>10}"
    )
    print(header)
    deleted = 0
    prune_seconds = 0.0
    since_report = 0
    for hour in range(hours):
        sim_now: datetime = start + timedelta(hours=hour + 1)
        picked = [monitors[(cursor_at + k) % len(monitors)] for k in range(per_hour)]
        picked = [m for m in picked if m not in monitors[:OPEN_FOREVER]]
        cursor_at = (cursor_at + per_hour) % len(monitors)
        with connection.cursor() as cursor:
            cursor.execute(
                FLIPS,
                {
                    "start": sim_now - timedelta(hours=1),
                    "monitors": picked,
                    "channel": channel,
                    "payload": payload,
                },
            )
        began = time.perf_counter()
        report = retention.run(now=sim_now, only={"notifications", "incidents"})
        prune_seconds += time.perf_counter() - began
        deleted += report.total
        since_report += 1
        if args.vacuum_hours and (hour + 1) % args.vacuum_hours == 0:
            vacuum()
        if (hour + 1) % args.report_hours == 0:
            s = sizes()
            mib = {t: s[t][1] / 2**20 for t in TABLES}
            print(
                f"{(hour + 1) / 24:>7.1f} {s[TABLES[0]][0]:>13,} {mib[TABLES[0]]:>7.1f} "
                f"{s[TABLES[1]][0]:>9,} {mib[TABLES[1]]:>7.1f} {s[TABLES[2]][0]:>9,} "
                f"{mib[TABLES[2]]:>7.1f} {deleted / since_report:>9,.0f} "
                f"{1000 * prune_seconds / since_report:>10.0f}",
                flush=True,
            )
            deleted, prune_seconds, since_report = 0, 0.0, 0
    la = os.getloadavg()
    print(f"done; load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    owner = get_user_model().objects.get(username=USERNAME)
    clean(owner.pk)


if __name__ == "__main__":
    main()
