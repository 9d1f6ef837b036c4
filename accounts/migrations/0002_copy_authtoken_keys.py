"""Existing ``rest_framework.authtoken`` keys become ApiToken rows, stored as their SHA-256
(prefix: the first 8 characters), so the clients that use them keep working; then the keys in
clear are deleted from ``authtoken_token``. The table itself is left (empty) so the migration
history of ``rest_framework.authtoken`` stays consistent; nothing reads it any more."""

import hashlib

from django.db import migrations


def copy_keys(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        digest = hashlib.sha256(key.encode()).hexdigest()
        if not ApiToken.objects.filter(token_hash=digest).exists():
            ApiToken.objects.create(
                owner_id=user_id,
                name="API token",
                prefix=key[:8],
                token_hash=digest,
                created_at=created,
            )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_api_tokens"),
    ]

    operations = [
        migrations.RunPython(copy_keys, migrations.RunPython.noop, elidable=True),
    ]
