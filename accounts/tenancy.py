"""The one enforcement of ``accounts.permissions``, for the API and the pages alike: a
middleware that resolves the acting membership (``accounts.acting``), leaves it on the request
(``request.acting``; ``shared.auth.owner_of`` reads it) and refuses what its role may not do.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template import loader
from rest_framework import exceptions

from accounts import acting as resolve
from accounts import permissions
from shared.errors import json_error, wants_json


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """403: JSON with the message on the API, the plain page with it elsewhere."""
    if wants_json(request):
        return json_error(exceptions.PermissionDenied(message))
    body = loader.get_template("403.html").render({"message": message}, request)
    return HttpResponse(body, status=403)


class TenancyMiddleware:
    """Resolves the acting membership (``request.acting``) and refuses, with 403, what its
    role may not do (``accounts.permissions``). Anonymous requests pass: the views answer
    401 or the sign-in page themselves. After AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., HttpResponse], args: object, kwargs: object
    ) -> HttpResponse | None:
        match = request.resolver_match
        name = match.view_name if match else ""
        method = request.method or "GET"
        least = permissions.required_role(name, method)
        if resolve.presents_token(request):
            # Public URLs (ingest, webhooks) never pay for a token lookup they do not use.
            acting = resolve.token_acting(request) if least is not None else None
        else:
            acting = resolve.session_acting(request)
        request.acting = acting  # type: ignore[attr-defined]
        if acting is None or least is None:
            return None
        if not permissions.at_least(acting.role, least):
            return forbidden(request, permissions.refusal(acting.role, least, method))
        return None
