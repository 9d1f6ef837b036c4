"""The channels API: ``/channels`` and ``/channels/<id>``, scoped to the owner."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import serializers, viewsets
from rest_framework.serializers import BaseSerializer

from monitors import selectors
from monitors.models import Channel


class ChannelSerializer(serializers.ModelSerializer[Channel]):
    class Meta:
        model = Channel
        fields = ["id", "name", "kind", "config", "verified", "enabled", "disabled_reason"]
        read_only_fields = ["verified", "disabled_reason"]


class ChannelViewSet(viewsets.ModelViewSet[Channel]):
    serializer_class = ChannelSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Channel]:
        return selectors.channel_list(owner=self.request.user)

    def perform_create(self, serializer: BaseSerializer[Channel]) -> None:
        serializer.save(owner=self.request.user)
