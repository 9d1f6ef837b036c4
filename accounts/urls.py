"""API routes of accounts, at the site root."""

from django.urls import URLPattern, URLResolver, path

from accounts import api, team_api

urlpatterns: list[URLPattern | URLResolver] = [
    path("tokens", api.TokenListView.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>", api.TokenDetailView.as_view(), name="api-token"),
    path("account/members", team_api.MemberListView.as_view(), name="account-members"),
    path(
        "account/members/<int:member_id>",
        team_api.MemberDetailView.as_view(),
        name="account-member",
    ),
    path("account/invitations", team_api.InvitationListView.as_view(), name="account-invitations"),
    path(
        "account/invitations/<int:invitation_id>",
        team_api.InvitationDetailView.as_view(),
        name="account-invitation",
    ),
]
