"""Every new user holds a one-person account, as its owner (sign-up, admin, createsuperuser)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from accounts import acting


def user_saved(sender: Any, instance: AbstractBaseUser, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw"):
        acting.own_membership(instance)
