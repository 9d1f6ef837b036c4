from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save, pre_delete


class MonitorsConfig(AppConfig):
    name = "monitors"
    verbose_name = "Monitors"

    def ready(self) -> None:
        # Registers the Celery tasks in every process (web, workers, commands): callers queue
        # them by name through monitors.notify.queue, which imports no task module.
        from monitors import tasks  # noqa: F401
        from monitors.notify import tasks as notify_tasks  # noqa: F401

        # A member who leaves an account stops being told: their personal email channel is
        # disabled before the membership row goes (a string sender: accounts is not imported).
        pre_delete.connect(
            _membership_deleted, sender="accounts.Membership", dispatch_uid="monitors-member-left"
        )
        # ...and is told at their new login address as soon as they change it.
        post_save.connect(
            _user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="monitors-member-email"
        )


def _membership_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    from monitors.notify.channels import member_left

    member_left(membership_id=instance.pk)


def _user_saved(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if kwargs.get("created") or (update_fields is not None and "email" not in update_fields):
        return  # a new person has no personal channel yet; a sign-in only touches last_login
    from monitors.notify.channels import member_email_changed

    member_email_changed(user_id=instance.pk, email=instance.email or "")
