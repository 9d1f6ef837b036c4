"""What a locked-out sign-in sees: the login page with a clear message (django-axes calls
``locked_out`` through ``AXES_LOCKOUT_CALLABLE``), answered 429."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def lockout_message() -> str:
    minutes = max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return (
        "Too many failed sign-ins for this account or from your network. "
        f"Sign-in is locked for {minutes} minute{'s' if minutes != 1 else ''}; "
        "try again later, or reset your password."
    )


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out": lockout_message(), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)


def attempted_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The username an attempt counts against, case-folded so "Alice" and "alice" share one."""
    username = (credentials or {}).get("username") or request.POST.get("username")
    return str(username).strip().lower() if username else None
