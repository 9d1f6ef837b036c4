from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest


class GrowalertConfig(AppConfig):
    name = "growalert"
    verbose_name = "growalert"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from growalert import checks  # noqa: F401  (registers the deploy checks)

        user_logged_out.connect(_forget_live_session, dispatch_uid="growalert-live-signed-out")


def _forget_live_session(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """A signed-out session's live tokens stop reading cached answers at once
    (growalert/pages/live_wsgi.py)."""
    from growalert.pages import live

    if request is not None and hasattr(request, "session"):
        live.forget_session(request.session.session_key)
