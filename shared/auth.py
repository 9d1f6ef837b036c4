"""The user behind an API request."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.request import Request


def owner_of(request: Request) -> User:
    """The authenticated user (for views that require authentication: never anonymous)."""
    user = request.user
    assert isinstance(user, User)
    return user
