"""API routes of accounts, at the site root."""

from django.urls import URLPattern, URLResolver, path

from accounts import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("tokens", api.TokenListView.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>", api.TokenDetailView.as_view(), name="api-token"),
]
