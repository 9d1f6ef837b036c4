"""The team API: ``/account/members`` (GET; PATCH a role, DELETE a member) and
``/account/invitations`` (GET pending, POST to invite by email, DELETE to revoke). Who may do
what is decided by ``accounts.permissions`` (reads: everyone in the account for members, admins
for invitations; writes: admins)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, team
from accounts.models import Account
from accounts.serializers import (
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberRoleSerializer,
    MemberSerializer,
)
from shared.auth import Acting, acting_of

TAGS = ["team"]


def _acting(request: Request) -> Acting:
    acting = acting_of(request)
    if acting is None:  # authenticated by DRF but not resolved: no membership to act with
        raise NotFound("No account.")
    return acting


class MemberListView(APIView):
    @extend_schema(responses=MemberSerializer(many=True), tags=TAGS)
    def get(self, request: Request) -> Response:
        """The account's members and their roles, the owner first."""
        members = selectors.member_list(account_id=_acting(request).account_id)
        return Response(MemberSerializer(members, many=True).data)


class MemberDetailView(APIView):
    @extend_schema(request=MemberRoleSerializer, responses=MemberSerializer, tags=TAGS)
    def patch(self, request: Request, member_id: int) -> Response:
        """Changes a member's role (admin, member or viewer; the owner's cannot change)."""
        account_id = _acting(request).account_id
        if not selectors.member_list(account_id=account_id).filter(pk=member_id).exists():
            raise NotFound("No such member in this account.")
        body = MemberRoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            membership = team.change_role(
                account_id=account_id,
                membership_id=member_id,
                role=body.validated_data["role"],
            )
        except team.TeamError as exc:
            raise _error(exc) from exc
        return Response(MemberSerializer(membership).data)

    @extend_schema(request=None, responses={204: None}, tags=TAGS)
    def delete(self, request: Request, member_id: int) -> Response:
        """Removes a member at once (not the owner); their API tokens for it stop working."""
        try:
            team.remove_member(account_id=_acting(request).account_id, membership_id=member_id)
        except team.TeamError as exc:
            raise _error(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(APIView):
    @extend_schema(responses=InvitationSerializer(many=True), tags=TAGS)
    def get(self, request: Request) -> Response:
        """Pending invitations (not accepted, revoked or expired), newest first."""
        pending = selectors.pending_invitations(account_id=_acting(request).account_id)
        return Response(InvitationSerializer(pending, many=True).data)

    @extend_schema(
        request=InvitationCreateSerializer, responses={201: InvitationSerializer}, tags=TAGS
    )
    def post(self, request: Request) -> Response:
        """Invites someone by email with a role; the link is emailed to them (single use,
        expires in 7 days)."""
        body = InvitationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        acting = _acting(request)
        account = Account.objects.get(pk=acting.account_id)
        try:
            invitation, _ = team.invite(
                account=account,
                email=body.validated_data["email"],
                role=body.validated_data["role"],
                invited_by=acting.user,
            )
        except team.TeamError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationDetailView(APIView):
    @extend_schema(request=None, responses={204: None}, tags=TAGS)
    def delete(self, request: Request, invitation_id: int) -> Response:
        """Revokes a pending invitation: its link stops working."""
        if not team.revoke_invitation(
            account_id=_acting(request).account_id, invitation_id=invitation_id
        ):
            raise NotFound("No such pending invitation.")
        return Response(status=status.HTTP_204_NO_CONTENT)


def _error(exc: team.TeamError) -> NotFound | ValidationError:
    if isinstance(exc, team.NoSuchMember):
        return NotFound(str(exc))
    return ValidationError({"detail": str(exc)})
