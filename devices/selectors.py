"""Reads: an account's devices."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from devices.models import Device

User = AbstractBaseUser | AnonymousUser


def device_list(*, owner: User) -> QuerySet[Device]:
    return Device.objects.filter(owner_id=owner.pk)


def device_get(*, owner: User, device_id: int) -> Device | None:
    return device_list(owner=owner).filter(pk=device_id).first()
