from django.apps import AppConfig


class MonitorsConfig(AppConfig):
    name = "monitors"
    verbose_name = "Monitors"

    def ready(self) -> None:
        # Registers the Celery tasks in every process (web, workers, commands): callers queue
        # them by name through monitors.notify.queue, which imports no task module.
        from monitors import tasks  # noqa: F401
        from monitors.notify import tasks as notify_tasks  # noqa: F401
