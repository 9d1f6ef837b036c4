from __future__ import annotations

from rest_framework import serializers

from accounts.models import INVITABLE_ROLE_CHOICES, ApiToken, Invitation, Membership


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=ApiToken.NAME_MAX_LENGTH)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The token itself: shown in this answer only")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class MemberSerializer(serializers.ModelSerializer[Membership]):
    user_id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user_id", "email", "username", "role", "created_at"]
        read_only_fields = fields


class MemberRoleSerializer(serializers.Serializer[None]):
    role = serializers.ChoiceField(choices=INVITABLE_ROLE_CHOICES)


class InvitationSerializer(serializers.ModelSerializer[Invitation]):
    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "created_at", "expires_at"]
        read_only_fields = fields


class InvitationCreateSerializer(serializers.Serializer[None]):
    email = serializers.EmailField(max_length=Invitation.EMAIL_MAX_LENGTH)
    role = serializers.ChoiceField(choices=INVITABLE_ROLE_CHOICES)
