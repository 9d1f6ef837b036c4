"""Input validation and output shapes of the monitors API."""

from __future__ import annotations

import functools
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.fields import BigIntegerField  # type: ignore[attr-defined]  # not in the stubs yet
from rest_framework.settings import api_settings

from monitors import validation
from monitors.models import (
    MAX_STEP_CHANNELS,
    MAX_STEP_MEMBERS,
    MAX_STEPS,
    Channel,
    EscalationPolicy,
    EscalationStep,
    Incident,
    Monitor,
    Notification,
    SeriesState,
    Silence,
    Source,
    pending_checks,
    silence_errors,
)
from monitors.raw_rows import JsonColumn, NoSqlColumn
from monitors.vocabulary import ACK_ROUTE_CHOICES
from shared.auth import owner_of

# The bounds of every number and duration are the model fields' validators (monitors/models.py),
# which ModelSerializer copies onto its fields: the API answers 400 with their messages.


class OwnedPrimaryKeyField(serializers.PrimaryKeyRelatedField[Any]):
    """A foreign key of the requesting member's account; any other id reads as 'does not
    exist'."""

    def get_queryset(self) -> Any:
        request = self.context["request"]
        return self.queryset.filter(owner_id=owner_of(request).pk)  # type: ignore[union-attr]


class SourceSerializer(serializers.ModelSerializer[Source]):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Password (basic) or token (token auth). Write-only: never returned.",
    )
    has_secret = serializers.BooleanField(read_only=True)
    pushes = serializers.BooleanField(
        read_only=True,
        help_text="Its InfluxDB pushes its writes to growalert (POST /sources/{id}/push): "
        "its monitors are decided as the points arrive.",
    )

    class Meta:
        model = Source
        fields = [
            "id", "name", "url", "database", "org", "flavor", "auth_scheme", "username",
            "secret", "has_secret", "timeout_seconds", "last_checked_at", "last_check_ok",
            "last_check_error", "server_version", "pushes", "push_key_prefix", "created_at",
        ]  # fmt: skip
        read_only_fields = [
            "last_checked_at", "last_check_ok", "last_check_error", "server_version",
            "push_key_prefix", "created_at",
        ]  # fmt: skip


class PushSetupSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(help_text="The push key: shown this once, stored hashed.")
    url = serializers.CharField(help_text="Where the writes go (the key as Basic auth password).")
    subscription = serializers.CharField(
        help_text="The InfluxQL statement that makes an InfluxDB 1.x push to growalert."
    )


_FOREIGN_KEYS = frozenset(
    {"source", "device", "escalation_policy"}
)  # output as their ids, read from <name>_id


class MonitorSerializer(serializers.ModelSerializer[Monitor]):
    # A declared field named like Field.source: DRF's metaclass collects it, mypy cannot tell.
    source = OwnedPrimaryKeyField(queryset=Source.objects.all())  # type: ignore[assignment]
    channels = OwnedPrimaryKeyField(queryset=Channel.objects.all(), many=True, required=False)
    escalation_policy = OwnedPrimaryKeyField(
        queryset=EscalationPolicy.objects.all(),
        allow_null=True,
        required=False,
        help_text="Who is told next while an incident stays unacknowledged (null: your "
        "default policy, if any).",
    )

    class Meta:
        model = Monitor
        fields = [
            "id", "name", "description", "source",
            "measurement", "field", "tags", "group_by", "series_filter", "storm_threshold",
            "aggregation", "percentile", "window", "raw_query",
            "comparator", "critical", "critical_high", "warning", "warning_high", "recovery",
            "lights_on", "lights_off", "night_critical", "night_critical_high", "night_warning",
            "night_warning_high", "night_recovery",
            "unit", "precision", "interval", "pending_for", "recover_after", "repeat_every",
            "no_data_policy", "error_policy", "flap_detection", "channels",
            "escalation_policy", "enabled",
            "status", "status_reason", "status_changed_at", "last_value", "last_evaluated_at",
            "next_due_at", "device", "health_kind", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "status", "status_reason", "status_changed_at", "last_value", "last_evaluated_at",
            "next_due_at", "device", "health_kind", "created_at", "updated_at",
        ]  # fmt: skip

    def to_representation(self, instance: Monitor) -> dict[str, Any]:
        """The same output as ModelSerializer's, without its per-field machinery: a page of 50
        monitors is 2,000 values, and GET /monitors is the hottest read of the API."""
        plan = self._plan()
        data: dict[str, Any] = {}
        for name, convert in plan:
            if name in _FOREIGN_KEYS:
                data[name] = getattr(instance, f"{name}_id")
            elif name == "channels":
                ids = getattr(instance, "channel_ids", None)  # see selectors.monitor_page
                data[name] = ids if ids is not None else [c.pk for c in instance.channels.all()]
            else:
                value = getattr(instance, name)
                data[name] = value if value is None or convert is None else convert(value)
        return data

    def _plan(self) -> list[tuple[str, Any]]:
        cached: list[tuple[str, Any]] | None = type(self).__dict__.get("_plan_cache")
        if cached is None:
            cached = []
            for name, field in self.fields.items():
                if field.write_only:
                    continue
                plain = isinstance(
                    field,
                    serializers.CharField
                    | serializers.BooleanField
                    | serializers.IntegerField
                    | serializers.FloatField
                    | serializers.JSONField
                    | serializers.ChoiceField,
                )
                cached.append((name, None if plain else field.to_representation))
            type(self)._plan_cache = cached  # type: ignore[attr-defined]
        return cached

    def validate_raw_query(self, value: str) -> str:
        return validation.clean_raw_query(value)

    def to_internal_value(self, data: Any) -> Any:
        """``pending_for`` may be a duration ("10m", the editor's syntax) as well as a number
        of checks: converted with the interval given, or the monitor's."""
        pending = data.get("pending_for") if hasattr(data, "get") else None
        if isinstance(pending, str) and pending.strip() and not pending.strip().isdigit():
            data = {key: data[key] for key in data} | {
                "pending_for": self._pending_checks(pending, data.get("interval"))
            }
        return super().to_internal_value(data)

    def _pending_checks(self, pending: str, interval: Any) -> Any:
        current = self.instance.interval if isinstance(self.instance, Monitor) else None
        every = current or Monitor._meta.get_field("interval").get_default()
        if interval not in (None, ""):
            try:
                every = serializers.DurationField().to_internal_value(interval)
            except serializers.ValidationError:
                return pending  # the interval's own error is the one to show
        try:
            return pending_checks(pending, every)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"pending_for": exc.messages}) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The definition's one validation (monitors/validation.py), as field errors."""
        request = self.context.get("request")
        owner = getattr(request, "user", None) if request is not None else None
        return validation.clean_definition(
            attrs,
            instance=self.instance,
            owner=owner if owner is not None and owner.is_authenticated else None,
        )


# DRF field classes (exactly these: a subclass may render differently) and the JSON kind of
# their output. A field of any other class has no SQL twin: json_columns refuses it.
_JSON_KINDS: dict[type[serializers.Field[Any, Any, Any, Any]], str] = {
    serializers.IntegerField: "integer",
    BigIntegerField: "integer",
    serializers.FloatField: "float",
    serializers.BooleanField: "boolean",
    serializers.CharField: "text",
    serializers.ChoiceField: "text",
    serializers.JSONField: "json",
    serializers.PrimaryKeyRelatedField: "pk",
    OwnedPrimaryKeyField: "pk",
    serializers.DateTimeField: "datetime",
    serializers.DurationField: "duration",
    serializers.TimeField: "time",
    serializers.ManyRelatedField: "pk_list",
    serializers.ReadOnlyField: "computed",
}


@functools.cache
def json_columns(serializer_class: type[serializers.BaseSerializer[Any]]) -> tuple[JsonColumn, ...]:
    """The serializer's output keys, in order, as :class:`JsonColumn` s: derived from its own
    fields, so a field added to the serializer is added to the SQL-built JSON too, or (a field
    class without a known SQL twin) raises :class:`NoSqlColumn` rather than drifting apart."""
    serializer = serializer_class()
    assert isinstance(serializer, serializers.Serializer), "a serializer of named fields"
    columns = []
    for name, field in serializer.fields.items():
        if field.write_only:
            continue
        kind = _JSON_KINDS.get(type(field))
        if kind is None:
            raise NoSqlColumn(f"{serializer_class.__name__}.{name}: no SQL for {type(field)}")
        output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
        if kind == "datetime" and (output_format != ISO_8601 or hasattr(field, "timezone")):
            raise NoSqlColumn(f"{serializer_class.__name__}.{name}: only ISO 8601 in UTC")
        if kind == "time" and getattr(field, "format", api_settings.TIME_FORMAT) != ISO_8601:
            raise NoSqlColumn(f"{serializer_class.__name__}.{name}: only ISO 8601 times")
        coerced = getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
        if isinstance(field, BigIntegerField) and coerced:
            raise NoSqlColumn(f"{serializer_class.__name__}.{name}: big integers as strings")
        if isinstance(field, serializers.JSONField) and field.binary:
            raise NoSqlColumn(f"{serializer_class.__name__}.{name}: binary JSON renders as text")
        assert isinstance(field.source, str), f"{name}: a callable source"
        columns.append(JsonColumn(key=name, source=field.source, kind=kind))
    return tuple(columns)


class IncidentSerializer(serializers.ModelSerializer[Incident]):
    acknowledged_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="The user who acknowledged it (null: by a link, an SMS reply or a call).",
    )
    acknowledged_via = serializers.ChoiceField(
        choices=[("", "Not acknowledged"), *ACK_ROUTE_CHOICES],
        read_only=True,
        help_text='How it was acknowledged ("" while it is not).',
    )
    acknowledged_by_text = serializers.CharField(
        read_only=True, help_text='Who and how, as people read it: "alice via the API".'
    )
    short_code = serializers.CharField(
        read_only=True, help_text="Reply ACK <short_code> to an alert SMS to acknowledge it."
    )

    class Meta:
        model = Incident
        fields = [
            "id", "monitor", "series_key", "severity", "opened_at", "resolved_at",
            "opened_value", "peak_value", "last_value", "summary", "acknowledged_at",
            "acknowledged_by", "acknowledged_via", "acknowledged_note", "acknowledged_by_text",
            "short_code",
        ]  # fmt: skip
        read_only_fields = fields


class AcknowledgedSerializer(IncidentSerializer):
    acknowledged_now = serializers.BooleanField(
        read_only=True, help_text="True: this request acknowledged it; false: someone had."
    )

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "acknowledged_now"]
        read_only_fields = fields


class TimelineAttemptSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    outcome = serializers.CharField()
    at = serializers.DateTimeField()
    error = serializers.CharField()


class TimelineEntrySerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(
        choices=[
            "fired",
            "notification",
            "escalation",
            "silenced",
            "acknowledged",
            "escalation_finished",
            "resolved",
        ]
    )
    text = serializers.CharField()
    channel = serializers.CharField(help_text="The channel told (notifications).")
    delivery = serializers.CharField(help_text="The notification's delivery status.")
    attempts = TimelineAttemptSerializer(many=True)


class StepMembersField(serializers.ListField):
    """Membership ids in, membership ids out (the step's ``members``); the service checks
    that each is a member of the account."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            child=serializers.IntegerField(min_value=1),
            max_length=MAX_STEP_MEMBERS,
            **kwargs,
        )

    def to_representation(self, data: Any) -> list[int]:
        return [member.pk for member in data.all()]


class EscalationStepSerializer(serializers.ModelSerializer[EscalationStep]):
    channels = OwnedPrimaryKeyField(
        queryset=Channel.objects.all(),
        many=True,
        required=False,
        help_text=f"The channels this step notifies (yours; 0 to {MAX_STEP_CHANNELS}).",
    )

    members = StepMembersField(
        required=False,
        help_text=f"Members of your account told by email at their login address: ids from "
        f"GET /account/members (0 to {MAX_STEP_MEMBERS}; a step names at least one channel "
        f"or member).",
    )

    class Meta:
        model = EscalationStep
        fields = ["after_minutes", "hours", "channels", "members"]
        extra_kwargs = {
            "after_minutes": {"help_text": "Minutes after the incident opened, unacknowledged."}
        }


@extend_schema_field({"type": "string", "pattern": r"^\d{2}:\d{2}$", "example": "08:00"})
class ClockTimeField(serializers.TimeField):
    """A time of day as "08:00" (the schema's ``format: time`` demands a UTC offset)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"], **kwargs)


class EscalationPolicySerializer(serializers.ModelSerializer[EscalationPolicy]):
    working_start = ClockTimeField(required=False, help_text="Working hours start, e.g. 08:00.")
    working_end = ClockTimeField(required=False, help_text="Working hours end, e.g. 18:00.")
    steps = EscalationStepSerializer(
        many=True, help_text=f"1 to {MAX_STEPS} steps, kept in order of their minutes."
    )

    class Meta:
        model = EscalationPolicy
        fields = [
            "id", "name", "repeat_minutes", "is_default", "working_days", "working_start",
            "working_end", "steps", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]
        validators: list[Any] = []  # the service checks the name per owner


class SeriesStateSerializer(serializers.ModelSerializer[SeriesState]):
    """One series of a fleet monitor, as GET /monitors/<id>/series lists it."""

    silenced = serializers.SerializerMethodField(help_text="Under a silence of its own.")
    incident = serializers.SerializerMethodField(
        help_text="The series' open incident (null: none); acknowledge it with "
        "POST /incidents/<id>/acknowledge."
    )
    acknowledged = serializers.SerializerMethodField(
        help_text="Its open incident is acknowledged (false without one)."
    )

    class Meta:
        model = SeriesState
        fields = [
            "key", "tags", "status", "status_reason", "status_changed_at", "last_value",
            "last_evaluated_at", "silenced", "incident", "acknowledged",
        ]  # fmt: skip
        read_only_fields = fields

    def get_silenced(self, row: SeriesState) -> bool:
        return row.key in self.context.get("silenced_keys", ())

    def _incident(self, row: SeriesState) -> Incident | None:
        incident: Incident | None = self.context.get("open_incidents", {}).get(row.key)
        return incident

    def get_incident(self, row: SeriesState) -> int | None:
        incident = self._incident(row)
        return incident.pk if incident is not None else None

    def get_acknowledged(self, row: SeriesState) -> bool:
        incident = self._incident(row)
        return incident is not None and incident.acknowledged_at is not None


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = [
            "id", "monitor", "series_key", "incident", "channel", "event", "status", "attempts",
            "sent_at", "last_error", "created_at",
        ]  # fmt: skip


class SilenceSerializer(serializers.ModelSerializer[Silence]):
    monitor = OwnedPrimaryKeyField(queryset=Monitor.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Silence
        fields = [
            "id",
            "monitor",
            "series_key",
            "starts_at",
            "ends_at",
            "reason",
            "daily",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Silence.clean()'s rules (silence_errors), as field errors."""
        # the model's default start is now
        starts = attrs.get("starts_at", getattr(self.instance, "starts_at", None)) or timezone.now()
        ends = attrs.get("ends_at", getattr(self.instance, "ends_at", None))
        if "starts_at" not in attrs and self.instance is None and ends and ends <= starts:
            raise serializers.ValidationError(
                {"ends_at": "must be in the future (the silence starts now)"}
            )
        daily = attrs.get("daily", getattr(self.instance, "daily", False))
        if errors := silence_errors(starts, ends, daily=daily):
            raise serializers.ValidationError(errors)
        if attrs.get("series_key"):
            monitor = attrs.get("monitor")
            if monitor is None or not monitor.is_fleet:
                raise serializers.ValidationError(
                    {"series_key": "a series is silenced on its fleet monitor: give monitor too"}
                )
        return attrs


class PreviewSerializer(MonitorSerializer):
    """An unsaved monitor definition plus how far back to replay it."""

    hours = serializers.FloatField(default=24, min_value=0.1, max_value=24 * 7, write_only=True)
    series_key = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        write_only=True,
        help_text="A fleet monitor's series (GET /monitors/<id>/series keys): replay it alone, "
        "with every evaluation. Without it, each series' summary.",
    )

    class Meta(MonitorSerializer.Meta):
        fields = [*MonitorSerializer.Meta.fields, "hours", "series_key"]
        extra_kwargs = {"name": {"required": False}}
