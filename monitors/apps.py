from typing import Any

from django.apps import AppConfig
from django.db.models.signals import pre_delete


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


def _membership_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    from monitors.notify.channels import member_left

    member_left(membership_id=instance.pk)
