"""A monitor row's revision, kept by the database, and room on its pages for its updates.

``revision`` moves with every UPDATE that changes a column other than the four a quiet
evaluation writes (``status_reason``, ``last_value``, ``last_evaluated_at``,
``evaluated_due_at``): a ``BEFORE UPDATE`` trigger whose ``WHEN`` compares the other columns of
the old and new row (a comparison in the executor, no function call for a quiet write). Every
writer bumps it, the ORM, the admin, a queryset ``update``, SQL typed by hand. An evaluation
worker keeps a monitor between ticks while its revision has not moved (``evaluate.resident``);
before this it asked Postgres for an ``md5`` of the row's text each tick, 12-17 ms of
Postgres per 1,000 evaluations (``bench/profile_polling.py``). A new column of the table must
be added to ``COMPARED`` by the migration that adds it (``tests/monitors/test_resident.py``
fails until it is).

``fillfactor = 50``: a monitor evaluated every second is updated every second. With full
pages (the default 100) only ~12 % of those updates were HOT; the others wrote a new entry
into each of the table's 7 indexes and left the table at 89 MB for 10,000 rows. With half of
each page free the new row version stays on its page (~95 % HOT in the same bench). Existing
pages keep their rows until they move; new and updated rows follow the setting.
"""

from django.db import migrations, models

COMPARED = (
    "owner_id", "source_id", "name", "description", "measurement", "field", "tags",
    "aggregation", "percentile", "window", "raw_query", "group_by", "series_filter",
    "storm_threshold", "comparator", "critical", "critical_high", "warning", "warning_high",
    "recovery", "lights_on", "lights_off", "night_critical", "night_critical_high",
    "night_warning", "night_warning_high", "night_recovery", "unit", "precision", "interval",
    "pending_for", "recover_after", "repeat_every", "no_data_policy", "error_policy",
    "flap_detection", "escalation_policy_id", "enabled", "device_id", "health_kind", "status",
    "state", "state_version", "status_changed_at", "created_at", "updated_at",
)  # fmt: skip


def _row(alias: str) -> str:
    return "(" + ", ".join(f'{alias}."{column}"' for column in COMPARED) + ")"


FORWARD = f"""
ALTER TABLE monitors_monitor SET (fillfactor = 50);

CREATE FUNCTION monitors_monitor_revised() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER monitors_monitor_revised
BEFORE UPDATE ON monitors_monitor
FOR EACH ROW
WHEN ({_row("OLD")} IS DISTINCT FROM {_row("NEW")})
EXECUTE FUNCTION monitors_monitor_revised();
"""

REVERSE = """
DROP TRIGGER IF EXISTS monitors_monitor_revised ON monitors_monitor;
DROP FUNCTION IF EXISTS monitors_monitor_revised();
ALTER TABLE monitors_monitor RESET (fillfactor);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0025_escalation_step_members"),
    ]

    operations = [
        migrations.AddField(
            model_name="monitor",
            name="revision",
            field=models.PositiveBigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.RunSQL(FORWARD, REVERSE),
    ]
