"""A new or resumed monitor's first due time is spread over its first interval, capped at a
minute, instead of all at ``now``: creating (or resuming) 1,000 monitors at once no longer puts
1,000 rows on one tick, and since the dispatcher keeps each monitor's phase (see
``monitors/evaluate/dispatch.py``) the spread lasts.

The offset is deterministic: the fractional part of ``id × (√5 − 1)/2`` (a golden-ratio Weyl
sequence, so consecutive ids fall as evenly as possible over the window) times
``min(interval, 60 s)``. A user who creates or resumes a monitor still sees it evaluated within
a minute (within its interval if that is shorter). ``monitors_first_due_at`` is also used by the
dispatcher's schedule repair. Only the due time of a *new* row changes: an existing row (a move
to another source, a new interval) keeps its due time, as before."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION monitors_first_due_at(monitor_id bigint, step interval, at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT at + LEAST(GREATEST(step, interval '0'), interval '60 seconds')
        * ((monitor_id * 0.6180339887498949) % 1)
$$;

CREATE OR REPLACE FUNCTION monitors_schedule_follows_monitor() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.enabled THEN
        DELETE FROM monitors_schedule WHERE monitor_id = NEW.id;
    ELSE
        INSERT INTO monitors_schedule (monitor_id, owner_id, source_id, interval, next_due_at)
        VALUES (NEW.id, NEW.owner_id, NEW.source_id, NEW.interval,
                monitors_first_due_at(NEW.id, NEW.interval, statement_timestamp()))
        ON CONFLICT (monitor_id) DO UPDATE
        SET owner_id = EXCLUDED.owner_id,
            source_id = EXCLUDED.source_id,
            interval = EXCLUDED.interval
        WHERE (monitors_schedule.owner_id, monitors_schedule.source_id, monitors_schedule.interval)
            IS DISTINCT FROM (EXCLUDED.owner_id, EXCLUDED.source_id, EXCLUDED.interval);
    END IF;
    RETURN NULL;
END
$$;
"""

# 0008's function as it was: every new row due at once
REVERSE = """
CREATE OR REPLACE FUNCTION monitors_schedule_follows_monitor() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.enabled THEN
        DELETE FROM monitors_schedule WHERE monitor_id = NEW.id;
    ELSE
        INSERT INTO monitors_schedule (monitor_id, owner_id, source_id, interval, next_due_at)
        VALUES (NEW.id, NEW.owner_id, NEW.source_id, NEW.interval, statement_timestamp())
        ON CONFLICT (monitor_id) DO UPDATE
        SET owner_id = EXCLUDED.owner_id,
            source_id = EXCLUDED.source_id,
            interval = EXCLUDED.interval
        WHERE (monitors_schedule.owner_id, monitors_schedule.source_id, monitors_schedule.interval)
            IS DISTINCT FROM (EXCLUDED.owner_id, EXCLUDED.source_id, EXCLUDED.interval);
    END IF;
    RETURN NULL;
END
$$;

DROP FUNCTION IF EXISTS monitors_first_due_at(bigint, interval, timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0012_notification_event_kinds"),
    ]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
