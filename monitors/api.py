"""The monitors REST API: thin views over services and selectors.

Documented paths: ``POST/GET /monitors``, ``GET/PUT/PATCH/DELETE /monitors/<id>``, plus
``POST /monitors/<id>/test`` and ``POST /monitors/preview``; sources, channels, incidents and
silences beside them. Every queryset is scoped to the requesting user.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from billing.gating import HasActiveSubscription
from growalert.pagination import CountedLimitOffsetPagination
from monitors import evaluation, selectors, services
from monitors.models import Incident, Monitor, Silence, Source
from monitors.serializers import (
    IncidentSerializer,
    MonitorSerializer,
    PreviewSerializer,
    SilenceSerializer,
    SourceSerializer,
)


@contextmanager
def _as_api_errors() -> Iterator[None]:
    """A service's Django ValidationError (e.g. a URL whose DNS changed since the serializer
    looked) answers 400 with its fields, like the serializer's own errors."""
    try:
        yield
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from exc


def owner_of(request: Request) -> User:
    """The authenticated user (every view here requires authentication)."""
    user = request.user
    assert isinstance(user, User)
    return user


class SourceViewSet(viewsets.ModelViewSet[Source]):
    serializer_class = SourceSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Source]:
        return selectors.source_list(owner=self.request.user)

    def perform_create(self, serializer: BaseSerializer[Source]) -> None:
        with _as_api_errors():
            serializer.instance = services.source_create(
                owner=owner_of(self.request), **serializer.validated_data
            )

    def perform_update(self, serializer: BaseSerializer[Source]) -> None:
        assert serializer.instance is not None
        with _as_api_errors():
            serializer.instance = services.source_update(
                source=serializer.instance, **serializer.validated_data
            )

    def perform_destroy(self, instance: Source) -> None:
        try:
            instance.delete()
        except ProtectedError as exc:
            raise ValidationError({"detail": "monitors still use this source"}) from exc

    @extend_schema(request=None, responses=SourceSerializer)
    @action(detail=True, methods=["post"])
    def check(self, request: Request, pk: str | None = None) -> Response:
        """Pings the source now and records whether it is reachable."""
        source = services.source_check(source=self.get_object())
        return Response(SourceSerializer(source).data)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "status", description="Only monitors with this status (comma-separated list)."
        )
    ]
)
class MonitorViewSet(viewsets.ModelViewSet[Monitor]):
    """Monitors need an active subscription (or a comped/staff account): otherwise 402."""

    permission_classes = [IsAuthenticated, HasActiveSubscription]
    serializer_class = MonitorSerializer
    lookup_value_regex = r"\d+"

    pagination_class = CountedLimitOffsetPagination

    def get_queryset(self) -> QuerySet[Monitor]:
        return selectors.monitor_list(
            owner=self.request.user, status=self.request.query_params.get("status")
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """GET /monitors: the page, its channel ids and due times and the total in one query
        (``selectors.monitor_page``); the answer is DRF's limit/offset page as elsewhere."""
        status = request.query_params.get("status")

        def read(limit: int | None, offset: int) -> tuple[int, list[SimpleNamespace]]:
            page = selectors.monitor_page(
                owner=request.user, status=status, limit=limit, offset=offset
            )
            return page.total, page.rows

        paginator = self.paginator
        assert isinstance(paginator, CountedLimitOffsetPagination)
        rows = paginator.paginate_counted(request, read)
        return paginator.get_paginated_response(self.get_serializer(rows, many=True).data)

    def perform_create(self, serializer: BaseSerializer[Monitor]) -> None:
        data = dict(serializer.validated_data)
        channels = data.pop("channels", [])
        serializer.instance = services.monitor_create(
            owner=owner_of(self.request), channels=channels, **data
        )

    def perform_update(self, serializer: BaseSerializer[Monitor]) -> None:
        assert serializer.instance is not None
        data = dict(serializer.validated_data)
        channels = data.pop("channels", None)
        serializer.instance = services.monitor_update(
            monitor=serializer.instance, channels=channels, **data
        )

    def perform_destroy(self, instance: Monitor) -> None:
        services.monitor_delete(monitor=instance)

    @extend_schema(request=None, responses=dict[str, Any])
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Evaluates the monitor now without notifying: the query, the value, the status it
        would have and why."""
        return Response(evaluation.dry_run(self.get_object()).as_dict())

    @extend_schema(request=PreviewSerializer, responses=dict[str, Any])
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        """Backtests an unsaved definition over the last N hours (default 24): the series, each
        evaluation, and every moment it would have fired, resolved or flapped."""
        serializer = PreviewSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        hours = data.pop("hours")
        data.pop("channels", None)
        monitor = Monitor(owner=owner_of(request), name=data.pop("name", "preview"), **data)
        return Response(evaluation.backtest(monitor, hours=hours).as_dict())

    @extend_schema(responses=IncidentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def incidents(self, request: Request, pk: str | None = None) -> Response:
        monitor = self.get_object()
        incidents = selectors.incident_list(owner=request.user, monitor_id=monitor.pk)
        paginator = self.paginator
        if paginator is None:
            return Response(IncidentSerializer(incidents, many=True).data)
        page = paginator.paginate_queryset(incidents, request, view=self)
        return paginator.get_paginated_response(IncidentSerializer(page, many=True).data)


class IncidentViewSet(viewsets.ReadOnlyModelViewSet[Incident]):
    serializer_class = IncidentSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Incident]:
        return selectors.incident_list(owner=self.request.user)


class SilenceViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Silence],
):
    serializer_class = SilenceSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Silence]:
        return selectors.silence_list(owner=self.request.user)

    def perform_create(self, serializer: BaseSerializer[Silence]) -> None:
        serializer.instance = services.silence_create(
            owner=owner_of(self.request), **serializer.validated_data
        )
