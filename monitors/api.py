"""The monitors REST API: thin views over services and selectors.

Documented paths: ``POST/GET /monitors``, ``GET/PUT/PATCH/DELETE /monitors/<id>``, plus
``POST /monitors/<id>/test`` and ``POST /monitors/preview``; sources, channels, incidents and
silences beside them. Every queryset is scoped to the requesting user.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, QuerySet
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from billing.gating import HasActiveSubscription
from monitors import escalation_policies, fleet, selectors, services, timeline
from monitors.evaluate import backtest, dry_run
from monitors.influxdb import client as influx
from monitors.influxdb import explain
from monitors.influxdb import fleet as influx_fleet
from monitors.models import EscalationPolicy, Incident, Monitor, Silence, Source, validate_tags
from monitors.notify import acknowledge
from monitors.notify import channels as notify_channels
from monitors.notify.api import DetailSerializer
from monitors.raw_rows import NoSqlColumn
from monitors.serializers import (
    AcknowledgedSerializer,
    EscalationPolicySerializer,
    IncidentSerializer,
    MonitorSerializer,
    PreviewSerializer,
    PushSetupSerializer,
    SeriesStateSerializer,
    SilenceSerializer,
    SourceSerializer,
    TimelineEntrySerializer,
    json_columns,
)
from monitors.vocabulary import AckRoute
from shared.auth import owner_of
from shared.pagination import CountedLimitOffsetPagination

logger = logging.getLogger(__name__)


def _writes_plain_json(request: Request) -> bool:
    """Whether DRF would answer with compact JSON and datetimes in UTC: what the page JSON
    that Postgres writes reproduces."""
    renderer = request.accepted_renderer
    return (
        isinstance(renderer, JSONRenderer)
        and renderer.get_indent(request.accepted_media_type, {}) is None
        and settings.USE_TZ
        and timezone.get_current_timezone_name() == "UTC"
    )


class SourceViewSet(viewsets.ModelViewSet[Source]):
    serializer_class = SourceSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Source]:
        return selectors.source_list(owner=owner_of(self.request))

    def perform_create(self, serializer: BaseSerializer[Source]) -> None:
        serializer.instance = services.source_create(
            owner=owner_of(self.request), **serializer.validated_data
        )

    def perform_update(self, serializer: BaseSerializer[Source]) -> None:
        assert serializer.instance is not None
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

    @extend_schema(request=None, responses={201: PushSetupSerializer, 204: None})
    @action(detail=True, methods=["post", "delete"])
    def push(self, request: Request, pk: str | None = None) -> Response:
        """POST: a new push key (any earlier one stops working) and the subscription that makes
        the source's InfluxDB push its writes, so that its monitors are decided as the points
        arrive. DELETE: the source no longer pushes; its monitors are polled."""
        source = self.get_object()
        if request.method == "DELETE":
            services.source_push_disable(source=source)
            return Response(status=204)
        setup = services.source_push_enable(source=source)
        return Response(PushSetupSerializer(setup).data, status=201)

    @extend_schema(
        parameters=[
            OpenApiParameter("measurement", description="Also its fields and tags."),
            OpenApiParameter(
                "group_by",
                description="With measurement: tag keys (comma-separated, e.g. device,zone); "
                "the answer's `series` lists the series a fleet monitor would watch now.",
            ),
            OpenApiParameter(
                "series_filter",
                description='With group_by: a JSON object, e.g. {"device": ["greenhouse-*"]}.',
            ),
            OpenApiParameter(
                "tags", description='With group_by: fixed tags, a JSON object {"site": "north"}.'
            ),
        ],
        responses=dict[str, Any],
    )
    @action(detail=True, methods=["get"], url_path="schema")
    def contents(self, request: Request, pk: str | None = None) -> Response:
        """What the source holds (InfluxQL or Flux): measurements, and for ``?measurement=``
        its fields and tag values. The editor offers them as suggestions. With ``group_by``
        (and ``series_filter``), ``series``: how many series match now and the first 100."""
        source = self.get_object()
        params = request.query_params
        measurement = params.get("measurement", "")[:200]
        try:
            found = explain.schema(source, measurement=measurement)
            if params.get("group_by") and measurement in found["measurements"]:  # type: ignore[operator]
                found["series"] = influx_fleet.matching_series(
                    source, measurement=measurement, **_series_choice(params)
                )
            return Response(found)
        except influx.InfluxError as exc:
            return Response({"detail": f"InfluxDB: {exc}"}, status=502)


def _series_choice(params: Mapping[str, str]) -> dict[str, Any]:
    """``group_by``, ``series_filter`` and ``tags`` from query parameters, checked as a
    monitor's are; ValidationError (400, naming the parameter) otherwise."""
    group_by = [key.strip() for key in params.get("group_by", "").split(",") if key.strip()]
    chosen: dict[str, Any] = {}
    for name in ("series_filter", "tags"):
        try:
            chosen[name] = json.loads(params.get(name) or "{}")
        except ValueError as exc:
            raise ValidationError({name: ["must be a JSON object"]}) from exc
    try:
        fleet.check_group_by(group_by)
        fleet.check_series_filter(chosen["series_filter"], group_by)
    except fleet.SeriesBoundError as exc:
        raise ValidationError({"series_filter": [str(exc)]}) from exc
    try:
        validate_tags(chosen["tags"])
    except DjangoValidationError as exc:
        raise ValidationError({"tags": exc.messages}) from exc
    return {"group_by": group_by, **chosen}


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
            owner=owner_of(self.request), status=self.request.query_params.get("status")
        )

    def list(  # type: ignore[override]  # a plain HttpResponse for JSON Postgres wrote
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """GET /monitors: the page, its channel ids and due times and the total in one query;
        the answer is DRF's limit/offset page as elsewhere. For a plain JSON answer (what API
        clients get) Postgres writes the page's JSON itself (``selectors.monitor_page_json``,
        with the serializer's own keys and formats); otherwise (the browsable API, indented
        JSON, another time zone, or a serializer field without an SQL twin) the serializer
        renders rows (``selectors.monitor_page``)."""
        status = request.query_params.get("status")
        paginator = self.paginator
        assert isinstance(paginator, CountedLimitOffsetPagination)
        if _writes_plain_json(request):
            try:
                columns = json_columns(self.get_serializer_class())  # type: ignore[arg-type]

                def read_json(limit: int | None, offset: int) -> tuple[int, str]:
                    page = selectors.monitor_page_json(
                        owner=owner_of(request),
                        columns=columns,
                        status=status,
                        limit=limit,
                        offset=offset,
                    )
                    return page.total, page.results

                return paginator.get_paginated_json_response(
                    paginator.paginate_counted(request, read_json)
                )
            except NoSqlColumn:  # raised before any SQL runs; the serializer is always right
                logger.exception("GET /monitors: a field Postgres cannot write, serializing")

        def read(limit: int | None, offset: int) -> tuple[int, list[SimpleNamespace]]:
            page = selectors.monitor_page(
                owner=owner_of(request), status=status, limit=limit, offset=offset
            )
            return page.total, page.rows

        rows = paginator.paginate_counted(request, read)
        return paginator.get_paginated_response(self.get_serializer(rows, many=True).data)

    def perform_create(self, serializer: BaseSerializer[Monitor]) -> None:
        data = dict(serializer.validated_data)
        owner = owner_of(self.request)
        # no "channels" at all: the account's default channels; "channels": [] means none
        channels = data.pop("channels", None)
        if channels is None:
            channels = notify_channels.default_channels(owner=owner)
        serializer.instance = services.monitor_create(owner=owner, channels=channels, **data)

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
        return Response(dry_run.dry_run(self.get_object()).as_dict())

    @extend_schema(request=PreviewSerializer, responses=dict[str, Any])
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        """Backtests an unsaved definition over the last N hours (default 24): the series, each
        evaluation, and every moment it would have fired, resolved or flapped. A fleet
        definition (group_by) replays each series alone: ``per_series`` summaries, or one
        series in full with ``series_key``."""
        serializer = PreviewSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        hours = data.pop("hours")
        series_key = data.pop("series_key", "")
        data.pop("channels", None)
        monitor = Monitor(owner=owner_of(request), name=data.pop("name", "preview"), **data)
        return Response(backtest.backtest(monitor, hours=hours, series_key=series_key).as_dict())

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", description="Only series with this status (comma-separated list)."
            )
        ],
        responses=SeriesStateSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def series(self, request: Request, pk: str | None = None) -> Response:
        """A fleet monitor's series, worst first: each with its status, reason and last value
        (empty for a single-series monitor)."""
        # ?status filters the series here, not the monitors get_queryset would filter
        monitor = get_object_or_404(selectors.monitor_list(owner=owner_of(request)), pk=pk)
        rows = selectors.series_list(monitor=monitor, status=request.query_params.get("status"))
        context = {
            "silenced_keys": selectors.silenced_series_keys(monitor=monitor),
            "open_incidents": selectors.open_series_incidents(monitor=monitor),
        }
        paginator = self.paginator
        if paginator is None:
            return Response(SeriesStateSerializer(rows, many=True, context=context).data)
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(
            SeriesStateSerializer(page, many=True, context=context).data
        )

    @extend_schema(responses=IncidentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def incidents(self, request: Request, pk: str | None = None) -> Response:
        monitor = self.get_object()
        incidents = selectors.incident_list(owner=owner_of(request), monitor_id=monitor.pk)
        paginator = self.paginator
        if paginator is None:
            return Response(IncidentSerializer(incidents, many=True).data)
        page = paginator.paginate_queryset(incidents, request, view=self)
        return paginator.get_paginated_response(IncidentSerializer(page, many=True).data)


class IncidentViewSet(viewsets.ReadOnlyModelViewSet[Incident]):
    serializer_class = IncidentSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Incident]:
        return selectors.incident_list(owner=owner_of(self.request)).select_related(
            "acknowledged_by"
        )

    @extend_schema(
        request=None,
        responses={
            200: AcknowledgedSerializer,
            409: OpenApiResponse(DetailSerializer, description="The incident is resolved."),
        },
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Acknowledges the incident: escalation and repeats stop. Acknowledging one that is
        already acknowledged answers 200 with who did (``acknowledged_now`` false)."""
        incident = self.get_object()
        try:
            outcome = acknowledge.acknowledge(incident.pk, via=AckRoute.API, by=request.user)
        except acknowledge.AlreadyResolved as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        outcome.incident.acknowledged_now = outcome.won  # type: ignore[attr-defined]
        return Response(AcknowledgedSerializer(outcome.incident).data)

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        """What happened, oldest first: fired, each notification and its delivery, escalation
        steps, silences, the acknowledgement (who, how), resolved."""
        entries = timeline.incident_timeline(self.get_object())
        return Response(TimelineEntrySerializer(entries, many=True).data)


class EscalationPolicyViewSet(viewsets.ModelViewSet[EscalationPolicy]):
    """Escalation policies: ordered steps ("after N minutes unacknowledged, notify these
    channels"), the last repeated every ``repeat_minutes`` until acknowledged or resolved."""

    serializer_class = EscalationPolicySerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[EscalationPolicy]:
        return EscalationPolicy.objects.filter(owner_id=owner_of(self.request).pk).prefetch_related(
            "steps__channels", "steps__members"
        )

    def perform_create(self, serializer: BaseSerializer[EscalationPolicy]) -> None:
        serializer.instance = escalation_policies.policy_save(
            owner=owner_of(self.request), data=_policy_input(serializer.validated_data)
        )

    def perform_update(self, serializer: BaseSerializer[EscalationPolicy]) -> None:
        assert serializer.instance is not None
        current = EscalationPolicySerializer(serializer.instance).data
        merged = {**_policy_fields(current, serializer.instance), **serializer.validated_data}
        serializer.instance = escalation_policies.policy_save(
            owner=owner_of(self.request), data=_policy_input(merged), policy=serializer.instance
        )

    def perform_destroy(self, instance: EscalationPolicy) -> None:
        escalation_policies.policy_delete(policy=instance)


def _policy_fields(current: Any, policy: EscalationPolicy) -> dict[str, Any]:
    """A stored policy as validated data (what a PATCH leaves alone)."""
    steps = [
        {
            "after_minutes": s.after_minutes,
            "hours": s.hours,
            "channels": list(s.channels.all()),
            "members": [m.pk for m in s.members.all()],
        }
        for s in policy.steps.all()
    ]
    names = ("name", "repeat_minutes", "is_default", "working_days")
    return {
        **{name: current[name] for name in names},
        "working_start": policy.working_start,
        "working_end": policy.working_end,
        "steps": steps,
    }


def _policy_input(data: dict[str, Any]) -> escalation_policies.PolicyInput:
    steps = [escalation_policies.StepInput(**step) for step in data.get("steps", [])]
    fields = {k: v for k, v in data.items() if k not in ("steps", "id", "created_at")}
    return escalation_policies.PolicyInput(steps=steps, **fields)


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
        return selectors.silence_list(owner=owner_of(self.request))

    def perform_create(self, serializer: BaseSerializer[Silence]) -> None:
        serializer.instance = services.silence_create(
            owner=owner_of(self.request), **serializer.validated_data
        )
