"""Every existing user becomes the owner of a one-person account (its rows keep their
``owner_id``: the account's holder), and every API token acts in its owner's own account.

Safe on a populated database and re-runnable: users that already hold an account are skipped.
Reversing removes nothing but the token links (0004's reversal drops the tables)."""

from django.db import migrations

BATCH = 1000
NAME_MAX_LENGTH = 100


def account_name(email, username):
    return (email or username or "").strip()[:NAME_MAX_LENGTH] or "My team"


def create_accounts(apps, schema_editor):
    User = apps.get_model("auth", "User")
    Account = apps.get_model("accounts", "Account")
    Membership = apps.get_model("accounts", "Membership")
    ApiToken = apps.get_model("accounts", "ApiToken")
    users = User.objects.filter(held_account__isnull=True).order_by("pk")
    last = 0
    while True:
        chunk = list(users.filter(pk__gt=last).values_list("pk", "email", "username")[:BATCH])
        if not chunk:
            break
        accounts = Account.objects.bulk_create(
            [Account(holder_id=pk, name=account_name(email, username)) for pk, email, username in chunk]
        )
        Membership.objects.bulk_create(
            [Membership(account_id=a.pk, user_id=a.holder_id, role="owner") for a in accounts]
        )
        last = chunk[-1][0]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ApiToken._meta.db_table} t SET account_id = a.id "  # noqa: S608
            f"FROM {Account._meta.db_table} a "
            "WHERE t.account_id IS NULL AND a.holder_id = t.owner_id"
        )


def unlink_tokens(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    ApiToken.objects.update(account=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_teams"),
    ]

    operations = [
        migrations.RunPython(create_accounts, unlink_tokens),
    ]
