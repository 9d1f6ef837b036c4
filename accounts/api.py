"""``GET/POST /tokens``, ``DELETE /tokens/<id>``: the caller's API tokens in the account they
act in (session or token auth); a token acts there with its member's current role. The token
itself is in the POST answer only; lists show its prefix."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
)
from shared.auth import acting_of


def _person(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _account_id(request: Request) -> int | None:
    acting = acting_of(request)
    return acting.account_id if acting else None


class TokenListView(APIView):
    @extend_schema(responses=ApiTokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        """The caller's live tokens (name, prefix, created, last used), newest first."""
        tokens = selectors.api_token_list(owner=request.user, account_id=_account_id(request))
        return Response(ApiTokenSerializer(tokens, many=True).data)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def post(self, request: Request) -> Response:
        """Creates a named token; the answer's ``token`` is shown this once, never again."""
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            token, secret = services.api_token_create(
                owner=_person(request),
                name=body.validated_data["name"],
                account_id=_account_id(request),
            )
        except services.TokenError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        data: dict[str, Any] = {**ApiTokenSerializer(token).data, "token": secret}
        return Response(data, status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        """Revokes the token at once; requests that present it get 401."""
        if not services.api_token_revoke(
            owner=_person(request), token_id=token_id, account_id=_account_id(request)
        ):
            raise NotFound("No such token.")
        return Response(status=status.HTTP_204_NO_CONTENT)
