"""Every time on the pages in the signed-in person's time zone (their Profile).

The zone is read once per session (one query) and kept in the session; the account page's
time zone form updates both."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Profile

SESSION_KEY = "growalert_time_zone"


def zone_for(user_id: int) -> str:
    found = Profile.objects.filter(user_id=user_id).values_list("time_zone", flat=True).first()
    return found or "UTC"


class TimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            name = request.session.get(SESSION_KEY)
            if name is None:
                name = request.session[SESSION_KEY] = zone_for(user.pk)
            try:
                timezone.activate(zoneinfo.ZoneInfo(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)
