"""The channels API: ``/channels`` and ``/channels/<id>``, scoped to the owner, plus
``POST /channels/<id>/test``, ``POST /channels/<id>/send-verification``,
``POST /channels/<id>/verify``, ``GET /channels/<id>/deliveries`` (the delivery log) and
``GET /channels/<id>/dead-letters`` with ``POST /channels/<id>/dead-letters/retry``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import escape

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from monitors.models import Channel, DeliveryAttempt, Notification
from monitors.notify import acknowledge, channels, chart_links, services, twilio
from monitors.notify import selectors as notify_selectors
from shared.auth import owner_of


@contextmanager
def config_errors() -> Iterator[None]:
    """A config the kind's notifier refused, as the field errors of the ``config`` object:
    ``{"config": {"url": ["required"]}}``."""
    try:
        yield
    except channels.ConfigError as exc:
        key = exc.key or "non_field_errors"
        raise serializers.ValidationError({"config": {key: [exc.text]}}) from exc


class ChannelSerializer(serializers.ModelSerializer[Channel]):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Webhook signing secret (write-only; HMAC-SHA256 signature header).",
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = [
            "id", "name", "kind", "config", "secret", "has_secret", "verified", "enabled",
            "device_health", "default_for_new_monitors", "subject_template", "body_template",
            "disabled_reason", "opted_out_at", "created_at",
        ]  # fmt: skip
        read_only_fields = ["verified", "disabled_reason", "opted_out_at", "created_at"]
        extra_kwargs = {
            "default_for_new_monitors": {
                "help_text": "POST /monitors without `channels` attaches the account's "
                "default channels; the editor ticks them for a new monitor."
            },
            "subject_template": {
                "help_text": "The channel's own subject, e.g. `{event}: {monitor} is {value}` "
                "(at most 200 characters; empty: the default). Variables: docs/notifications.md."
            },
            "body_template": {
                "help_text": "The channel's own message with the alert's variables in braces "
                "(at most 2000 characters; empty: the default). A webhook gets it as "
                "`message.body` beside the payload."
            },
        }

    def get_has_secret(self, channel: Channel) -> bool:
        return bool(channel.secret_ciphertext)


class DeliveryAttemptSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "outcome", "status_code", "error", "started_at", "duration_ms"]


class DeliverySerializer(serializers.ModelSerializer[Notification]):
    delivery_attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id", "event", "monitor", "status", "attempts", "created_at", "sent_at",
            "last_error", "idempotency_key", "delivery_attempts",
        ]  # fmt: skip


class DeadLetterRetrySerializer(serializers.Serializer[Any]):
    notifications = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        min_length=1,
        max_length=services.RETRY_BATCH,
        help_text="The dead letters to retry (ids); all of the channel's when omitted.",
    )


class DeadLetterRetryResultSerializer(serializers.Serializer[Any]):
    retried = serializers.IntegerField(help_text="Dead letters queued for delivery again.")
    remaining = serializers.IntegerField(
        help_text="The channel's dead letters left (not named, or beyond this batch)."
    )


class DetailSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()


class VerifySerializer(serializers.Serializer[Any]):
    code = serializers.RegexField(r"^\s*\d{6}\s*$", help_text="The 6-digit code texted.")


class ChannelViewSet(viewsets.ModelViewSet[Channel]):
    serializer_class = ChannelSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Channel]:
        return notify_selectors.channel_list(owner=owner_of(self.request))

    def perform_create(self, serializer: BaseSerializer[Channel]) -> None:
        with config_errors():
            serializer.instance = channels.channel_create(
                owner=owner_of(self.request), **serializer.validated_data
            )

    def perform_update(self, serializer: BaseSerializer[Channel]) -> None:
        assert serializer.instance is not None
        with config_errors():
            serializer.instance = channels.channel_update(
                channel=serializer.instance, **serializer.validated_data
            )

    def perform_destroy(self, instance: Channel) -> None:
        channels.channel_delete(channel=instance)

    @extend_schema(
        request=None,
        responses={
            200: DeliverySerializer,
            502: OpenApiResponse(DeliverySerializer, description="The channel's target failed."),
        },
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Sends a test notification now and returns how it went."""
        notification = services.send_test(self.get_object())
        data = DeliverySerializer(notification).data
        ok = notification.status == Notification.DeliveryStatus.SENT
        return Response(data, status=status.HTTP_200_OK if ok else status.HTTP_502_BAD_GATEWAY)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"], url_path="send-verification")
    def send_verification(self, request: Request, pk: str | None = None) -> Response:
        """Texts a one-time code to an SMS channel's number."""
        try:
            services.start_verification(self.get_object())
        except services.VerificationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"detail": "code sent"}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=VerifySerializer, responses=ChannelSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        """Confirms the texted code; the channel starts receiving alerts."""
        channel = self.get_object()  # another account's channel: 404 before the body is read
        serializer = VerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            channel = services.confirm_verification(channel, serializer.validated_data["code"])
        except services.VerificationError as exc:
            return Response({"code": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ChannelSerializer(channel).data)

    @extend_schema(responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The delivery log: every notification to this channel with each attempt."""
        channel = self.get_object()
        rows = (
            Notification.objects.filter(channel=channel)
            .prefetch_related("delivery_attempts")
            .order_by("-created_at")
        )
        page = self.paginate_queryset(rows)  # type: ignore[arg-type]
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="dead-letters")
    def dead_letters(self, request: Request, pk: str | None = None) -> Response:
        """Notifications to this channel that failed for good (retries used up, or a permanent
        error), newest first, with every attempt."""
        rows = notify_selectors.dead_letters(channel=self.get_object())
        page = self.paginate_queryset(rows)  # type: ignore[arg-type]
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(
        request=DeadLetterRetrySerializer,
        responses={
            202: DeadLetterRetryResultSerializer,
            409: OpenApiResponse(
                DetailSerializer, description="The channel is disabled or not verified."
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="dead-letters/retry")
    def retry_dead_letters(self, request: Request, pk: str | None = None) -> Response:
        """Sends dead letters again (all, or those named), each with its own idempotency key
        and a new retry budget."""
        channel = self.get_object()
        serializer = DeadLetterRetrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            retried, remaining = services.retry_dead_letters(
                channel, notification_ids=serializer.validated_data.get("notifications")
            )
        except services.RetryError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(
            {"retried": retried, "remaining": remaining}, status=status.HTTP_202_ACCEPTED
        )


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """Twilio's inbound-message webhook: STOP / START and ACK replies, answered in TwiML.
    Signed by Twilio."""
    params = {key: request.POST[key] for key in request.POST}
    url = request.build_absolute_uri()
    if not twilio.valid_signature(url, params, request.headers.get("X-Twilio-Signature", "")):
        return HttpResponse("invalid signature", status=403)
    reply = services.sms_reply(params.get("From", ""), params.get("Body", ""))
    message = f"<Message>{escape(reply)}</Message>" if reply else ""
    return HttpResponse(twilio.twiml(message), content_type="text/xml")


@csrf_exempt
@require_POST
def twilio_voice_gather(request: HttpRequest, token: str) -> HttpResponse:
    """The digit pressed in an alert call (TwiML ``<Gather>``): 1 acknowledges the incident.
    Signed by Twilio; the token in the path names the incident and channel, signed by us."""
    params = {key: request.POST[key] for key in request.POST}
    url = request.build_absolute_uri()
    if not twilio.valid_signature(url, params, request.headers.get("X-Twilio-Signature", "")):
        return HttpResponse("invalid signature", status=403)
    try:
        words = services.voice_digit(token, params.get("Digits", ""))
    except acknowledge.BadLink as exc:
        words = f"Sorry, {exc}."
    return HttpResponse(twilio.twiml(f"<Say>{escape(words)}</Say>"), content_type="text/xml")


@require_GET
def notification_chart(request: HttpRequest, token: str) -> HttpResponse:
    """A notification's chart image behind a signed, expiring link (Slack's image block
    fetches it without signing in; monitors/notify/chart_links.py)."""
    try:
        png = chart_links.image(token)
    except chart_links.LinkError as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    return HttpResponse(
        png,
        content_type="image/png",
        headers={"Cache-Control": "public, max-age=86400, immutable", "X-Robots-Tag": "noindex"},
    )
