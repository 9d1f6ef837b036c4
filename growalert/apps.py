from __future__ import annotations

from django.apps import AppConfig


class GrowalertConfig(AppConfig):
    name = "growalert"
    verbose_name = "growalert"

    def ready(self) -> None:
        from growalert import checks  # noqa: F401  (registers the deploy checks)
