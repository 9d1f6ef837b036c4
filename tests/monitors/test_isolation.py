"""No customer's monitor can stop another's from being evaluated.

Broken rows are planted straight into Postgres (raw SQL, past validation; the CHECK constraint
that would refuse them is dropped inside the test's transaction) next to healthy monitors of
another owner; then the real dispatcher claims and ``pipeline.evaluate_batch`` evaluates against
the real Postgres and InfluxDB, as the Celery tasks do."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from monitors.evaluate import dispatch, pipeline, step
from monitors.models import Monitor, Notification, Schedule, Status
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory

HOT = 41.0


def sql(statement: str, params: list[int] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def drop_checks(*names: str) -> None:
    """Lets a test plant what the CHECK constraints refuse (restored when the test's
    transaction rolls back)."""
    sql("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses pending deferred FK checks
    for name in names:
        table = "monitors_schedule" if name.startswith("schedule_") else "monitors_monitor"
        sql(f"ALTER TABLE {table} DROP CONSTRAINT {name}")


def tick() -> list[pipeline.BatchResult]:
    """One dispatcher pass, every batch evaluated in-process."""
    return [
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])
        for batch in dispatch.claim_batches(now=timezone.now(), size=500)
    ]


@pytest.fixture
def hot_source(influx_db):
    """Both owners' series are hot (one InfluxDB database; each owner has a source on it)."""
    influx_db.write("gro01", "temperature", [(5, HOT)], {"device": "greenhouse-1"})
    influx_db.write("gro01", "temperature", [(5, HOT)], {"device": "greenhouse-2"})
    return influx_db


def monitor_of(owner, influx_db, *, device: str = "greenhouse-1", **fields) -> Monitor:
    fields.setdefault("tags", {"device": device})
    source = (
        fields.pop("source", None)
        or SourceFactory(owner=owner, database=influx_db.database)  # one source = one batch
    )
    monitor = MonitorFactory(
        owner=owner,
        source=source,
        aggregation="max",
        window=timedelta(minutes=1),
        critical=35,
        flap_detection=False,
        next_due_at=timezone.now() - timedelta(seconds=1),
        **fields,
    )
    monitor.channels.set([ChannelFactory(owner=owner)])
    return monitor


def assert_evaluated(*monitors: Monitor) -> None:
    for monitor in monitors:
        monitor.refresh_from_db()
        assert monitor.status == Status.FIRING, (monitor.pk, monitor.status_reason)
        assert monitor.last_value == HOT
        assert monitor.last_evaluated_at is not None
        assert Notification.objects.filter(monitor=monitor, event="fired").count() == 1


def assert_error(monitor: Monitor, reason: str) -> None:
    monitor.refresh_from_db()
    assert monitor.status == Status.ERROR
    assert reason in monitor.status_reason
    assert not Notification.objects.filter(monitor=monitor).exists()


@pytest.mark.django_db
def test_the_reported_overflowing_interval_no_longer_stops_the_dispatcher(
    alice, bob, hot_source
) -> None:
    planted = monitor_of(alice, hot_source)
    healthy = monitor_of(bob, hot_source)
    drop_checks("monitor_interval_in_range", "schedule_interval_in_range")
    sql("UPDATE monitors_monitor SET interval = '999999999 days' WHERE id = %s", [planted.pk])
    sql(
        "UPDATE monitors_schedule SET interval = '999999999 days' WHERE monitor_id = %s",
        [planted.pk],
    )

    before = timezone.now()
    tick()

    assert_evaluated(healthy)
    # claimed too, its step clamped to the longest interval there is
    next_due = Schedule.objects.get(monitor_id=planted.pk).next_due_at
    assert timedelta(hours=23, minutes=59) < next_due - before <= timedelta(days=1)
    assert_evaluated(planted)


@pytest.mark.django_db
def test_a_schedule_row_the_claim_cannot_read_is_parked_and_every_other_is_claimed(
    alice, bob, hot_source, caplog
) -> None:
    planted = monitor_of(alice, hot_source)
    healthy = [monitor_of(bob, hot_source), monitor_of(bob, hot_source, device="greenhouse-2")]
    # a due time the claim's statement cannot turn into a number: the statement fails
    sql(
        "UPDATE monitors_schedule SET next_due_at = '-infinity' WHERE monitor_id = %s",
        [planted.pk],
    )

    before = timezone.now()
    tick()

    assert_evaluated(*healthy)
    assert_error(planted, "could not be scheduled")
    assert Schedule.objects.get(monitor_id=planted.pk).next_due_at >= before + dispatch.PARK_FOR
    assert f"monitor {planted.pk} could not be claimed" in caplog.text


@pytest.mark.django_db
def test_monitors_that_cannot_be_evaluated_are_errors_and_the_rest_of_their_batch_is_not(
    alice, bob, hot_source, caplog
) -> None:
    source = SourceFactory(owner=alice, database=hot_source.database)
    healthy = [
        monitor_of(alice, hot_source, source=source),
        monitor_of(alice, hot_source, source=source, device="greenhouse-2"),
        monitor_of(bob, hot_source),
    ]
    unreadable = monitor_of(alice, hot_source, source=source)
    nan = monitor_of(alice, hot_source, source=source)
    negative = monitor_of(alice, hot_source, source=source, device="greenhouse-2")
    drop_checks("monitor_numbers_finite", "monitor_repeat_every_in_range")
    sql(
        """UPDATE monitors_monitor SET state = '{"status": "exploded", "since": "never"}'
        WHERE id = %s""",
        [unreadable.pk],
    )
    sql("UPDATE monitors_monitor SET critical = 'NaN' WHERE id = %s", [nan.pk])
    sql("UPDATE monitors_monitor SET repeat_every = '-5 minutes' WHERE id = %s", [negative.pk])

    results = tick()

    assert_evaluated(*healthy)
    assert_error(unreadable, step.UNREADABLE_STATE)
    assert unreadable.state == {}  # reset: the next check starts afresh
    assert_error(nan, "its critical must be a finite number")
    assert_error(negative, "its repeat_every must be between 1 minute and 7 days")
    assert sum(r.broken for r in results) == 3
    for monitor in (unreadable, nan, negative):
        assert f"monitor {monitor.pk} could not be evaluated" in caplog.text

    # the next tick evaluates the monitor whose state was reset like any other
    Schedule.objects.filter(monitor_id=unreadable.pk).update(next_due_at=timezone.now())
    tick()
    assert_evaluated(unreadable)


@pytest.mark.django_db
def test_a_result_the_database_refuses_to_store_fails_only_its_own_monitor(
    alice, bob, hot_source, caplog
) -> None:
    source = SourceFactory(owner=alice, database=hot_source.database)
    refused = monitor_of(alice, hot_source, source=source)
    healthy = [
        monitor_of(alice, hot_source, source=source, device="greenhouse-2"),
        monitor_of(alice, hot_source, source=source),
        monitor_of(bob, hot_source),
    ]
    # e.g. a reason with a NUL character, which jsonb and text refuse: here any result but
    # the error this monitor is then marked with
    sql(
        """CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status <> 'error' THEN RAISE EXCEPTION 'refused'; END IF;
            RETURN NEW;
        END $$"""
    )
    sql(
        f"""CREATE TRIGGER refuse BEFORE UPDATE ON monitors_monitor FOR EACH ROW
        WHEN (NEW.id = {refused.pk}) EXECUTE FUNCTION pg_temp.refuse()"""
    )

    results = tick()

    assert_evaluated(*healthy)
    assert_error(refused, pipeline.UNSTORABLE)
    assert sum(r.applied for r in results) == 3
    assert f"the evaluation of monitor {refused.pk} could not be stored" in caplog.text


@pytest.mark.django_db
def test_a_row_that_cannot_be_loaded_is_an_error_and_its_batch_is_evaluated(
    alice, hot_source, caplog
) -> None:
    source = SourceFactory(owner=alice, database=hot_source.database)
    unloadable = monitor_of(alice, hot_source, source=source)
    healthy = monitor_of(alice, hot_source, source=source, device="greenhouse-2")
    drop_checks("monitor_window_in_range")
    # longer than any Python timedelta: the row cannot be read into a Monitor
    sql("UPDATE monitors_monitor SET \"window\" = '3000000 years' WHERE id = %s", [unloadable.pk])

    tick()

    assert_evaluated(healthy)
    row = Monitor.objects.filter(pk=unloadable.pk).values("status", "status_reason").get()
    assert row["status"] == Status.ERROR
    assert row["status_reason"] == pipeline.UNLOADABLE
    assert f"monitor {unloadable.pk} could not be loaded" in caplog.text


@pytest.mark.django_db
def test_a_monitor_whose_query_cannot_be_built_is_an_error_and_its_batch_is_observed(
    alice, hot_source, caplog
) -> None:
    source = SourceFactory(owner=alice, database=hot_source.database)
    odd = monitor_of(alice, hot_source, source=source)
    healthy = [
        monitor_of(alice, hot_source, source=source),
        monitor_of(alice, hot_source, source=source, device="greenhouse-2"),
    ]
    sql(
        """UPDATE monitors_monitor SET tags = '["device", "greenhouse-1"]' WHERE id = %s""",
        [odd.pk],
    )

    tick()

    assert_evaluated(*healthy)
    assert_error(odd, "its tags must be an object of tag names to values")
    assert f"monitor {odd.pk} could not be observed" in caplog.text


class _NulAnswering(http.server.BaseHTTPRequestHandler):
    """A customer's own "InfluxDB" (a source URL is theirs to choose): its first statement
    fails with a message holding a NUL character, which Postgres cannot store; the second
    answers a hot value."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        body = json.dumps(
            {
                "results": [
                    {"statement_id": 0, "error": "measurement \x00 not found"},
                    {
                        "statement_id": 1,
                        "series": [
                            {"name": "gro01", "columns": ["time", "max"], "values": [[0, HOT]]}
                        ],
                    },
                ]
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def nul_source_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NulAnswering)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_a_reason_with_a_nul_character_fails_only_its_own_monitor(
    alice, bob, hot_source, nul_source_url, caplog
) -> None:
    source = SourceFactory(owner=alice, url=nul_source_url, database="farm")
    nul = monitor_of(alice, hot_source, source=source, name="a nul", tags={})
    same_batch = monitor_of(alice, hot_source, source=source, name="b healthy", tags={})
    other_owner = monitor_of(bob, hot_source)

    tick()

    assert_evaluated(same_batch, other_owner)
    assert_error(nul, pipeline.UNSTORABLE)
    assert f"the evaluation of monitor {nul.pk} could not be stored" in caplog.text
