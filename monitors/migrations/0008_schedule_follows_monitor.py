"""The database keeps each monitor's Schedule row in step with it: a row for every enabled
monitor (due at once when it is created or resumed), none for a paused one, and the copied
owner, source and interval kept equal. A monitor written without ``Monitor.save()``
(``bulk_create``, a queryset ``update``, SQL) can no longer be left out of the dispatcher.

Row-level and ``AFTER``: it sees the monitor's id, and the evaluation pipeline's UPDATE (which
sets none of the listed columns) never fires it. The ``WHERE`` on the upsert leaves the row
alone when a full-row save changed nothing it copies, so saves do not churn the table."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION monitors_schedule_follows_monitor() RETURNS trigger
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

CREATE TRIGGER monitors_schedule_follows_monitor
AFTER INSERT OR UPDATE OF enabled, interval, source_id, owner_id ON monitors_monitor
FOR EACH ROW EXECUTE FUNCTION monitors_schedule_follows_monitor();

-- enabled monitors written before the trigger without their row: due now
INSERT INTO monitors_schedule (monitor_id, owner_id, source_id, interval, next_due_at)
SELECT m.id, m.owner_id, m.source_id, m.interval, statement_timestamp()
FROM monitors_monitor AS m
WHERE m.enabled AND NOT EXISTS (SELECT 1 FROM monitors_schedule s WHERE s.monitor_id = m.id);
"""

REVERSE = """
DROP TRIGGER IF EXISTS monitors_schedule_follows_monitor ON monitors_monitor;
DROP FUNCTION IF EXISTS monitors_schedule_follows_monitor();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0007_notification_lifecycle_events"),
    ]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
