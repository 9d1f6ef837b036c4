"""Admin for API tokens: who has which, when used; the secret is never there to see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import ApiToken

if TYPE_CHECKING:
    ApiTokenAdminBase = admin.ModelAdmin[ApiToken]
else:
    ApiTokenAdminBase = admin.ModelAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(ApiTokenAdminBase):
    list_display = ["name", "owner", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "owner__username", "owner__email"]
    readonly_fields = ["owner", "prefix", "token_hash", "created_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token is made by its owner, who alone sees it once
