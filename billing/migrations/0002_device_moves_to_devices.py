# Device now lives in the devices app (devices/migrations/0001 takes over the same table):
# billing only forgets the model state, the table and its rows are untouched.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("devices", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Device")],
            database_operations=[],
        ),
    ]
