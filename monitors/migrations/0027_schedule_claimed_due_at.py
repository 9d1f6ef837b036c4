"""The newest due time the dispatcher claimed for each monitor (``Schedule.claimed_due_at``).

A polling tick that changes nothing writes nothing (``monitors.evaluate.pipeline``), so the
monitor row's ``evaluated_due_at`` no longer says which tick was evaluated last. A decision
that changes the state is applied under the newest claimed tick instead of its own, read from
this column in the same statement: a stale or replayed batch can then never count a tick that
was already evaluated (quietly, without a write) a second time. Nullable, no default: adding it
rewrites nothing.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('monitors', '0026_monitor_revision'),
    ]

    operations = [
        migrations.AddField(
            model_name='schedule',
            name='claimed_due_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
