"""Admin for API tokens: who has which, when used; the secret is never there to see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import Account, ApiToken, Invitation, Membership

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


if TYPE_CHECKING:
    AccountAdminBase = admin.ModelAdmin[Account]
    InvitationAdminBase = admin.ModelAdmin[Invitation]
    MembershipInlineBase = admin.TabularInline[Membership, Account]
else:
    AccountAdminBase = admin.ModelAdmin
    InvitationAdminBase = admin.ModelAdmin
    MembershipInlineBase = admin.TabularInline


class MembershipInline(MembershipInlineBase):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Account)
class AccountAdmin(AccountAdminBase):
    """Teams: the holder's id is the ``owner_id`` of the account's rows."""

    list_display = ["name", "holder", "created_at"]
    search_fields = ["name", "holder__username", "holder__email"]
    readonly_fields = ["holder", "created_at"]
    inlines = [MembershipInline]


@admin.register(Invitation)
class InvitationAdmin(InvitationAdminBase):
    list_display = ["email", "account", "role", "created_at", "expires_at", "accepted_at"]
    search_fields = ["email", "account__name"]
    readonly_fields = ["token_hash", "invited_by", "accepted_by", "accepted_at", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invitations are sent from the team page, which emails the link
