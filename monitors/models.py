"""Sources, monitors, channels, incidents, the notification outbox and silences.

Model methods hold logic about one row with no I/O; everything else lives in services
(writes) and selectors (reads).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone
from django.utils.deconstruct import deconstructible

import alerts_core as ac
from monitors import crypto, display, fleet, photoperiod
from monitors.definition import Definition, Thresholds
from monitors.vocabulary import (
    ACK_ROUTE_CHOICES,
    AGGREGATION_CHOICES,
    COMPARATOR_CHOICES,
    DATA_POLICY_CHOICES,
    EVENT_CHOICES,
    STATUS_CHOICES,
    NotificationEvent,
)

V = TypeVar("V", Definition, Thresholds)

# ---------------------------------------------------------------- bounds on what users set
# Every duration and number a user can set is bounded here, once. The field validators below
# carry them, so full_clean (services, admin, shell), the API (DRF ModelSerializer copies model
# validators) and the pages (their form asks the API serializer) all refuse the same values
# with the same message; the CHECK constraints repeat the ones the dispatcher and the pipeline
# depend on, and the dispatcher's claim clamps against MAX_INTERVAL as well.

# The absolute floor; each plan has its own, at least this (billing/plans.py, settings
# MONITOR_MIN_INTERVAL_SECONDS): validated in the service layer, not in the CHECK constraint.
MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(days=1)
MIN_WINDOW = timedelta(seconds=1)
MAX_WINDOW = timedelta(days=7)
MIN_REPEAT = timedelta(minutes=1)
MAX_REPEAT = timedelta(days=7)
MIN_CHECKS, MAX_CHECKS = 1, 100  # pending_for, recover_after: consecutive evaluations
MAX_MAGNITUDE = 1e15  # thresholds: finite, |value| at most this
MAX_SILENCE = timedelta(days=366)
MIN_TIMEOUT, MAX_TIMEOUT = 0.1, 60.0  # seconds, per InfluxDB request
MAX_TAGS, MAX_TAG_LENGTH = 20, 200
SUBJECT_TEMPLATE_LENGTH = 200  # a channel's message templates (monitors/notify/templating.py)
BODY_TEMPLATE_LENGTH = 2000
SERIES_KEY_LENGTH = 2000  # group_by keys and values, escaped (monitors.fleet.series_key)


def duration_text(value: timedelta) -> str:
    """10 seconds, 1 minute, 7 days: a bound as a person reads it."""
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def checks_for(pending: timedelta, interval: timedelta) -> int:
    """A pending period ("fire after failing for 10 min") as consecutive failing checks: the
    first failing check and one more per interval after it (10 min at 1 min: 11 checks)."""
    if pending <= timedelta(0):
        return 1
    return 1 + math.ceil(pending / interval)


def pending_period(checks: int, interval: timedelta) -> timedelta:
    """The inverse of :func:`checks_for`: how long N failing checks take to fire."""
    return interval * max(0, checks - 1)


PENDING_MESSAGE = "a number of checks (e.g. 3) or a duration such as 10m"


def pending_checks(value: object, interval: timedelta | None) -> object:
    """A pending_for as written (checks: 3 or "3"; a duration: "10m") as checks; other values
    are returned as they are, for the field's own validation to refuse. Raises
    ValidationError for a duration that cannot be read or is too long at ``interval``."""
    if not isinstance(value, str) or value.strip().isdigit() or not value.strip():
        return value
    try:
        pending = display.parse_duration(value)
    except (ValueError, OverflowError) as exc:
        raise ValidationError(f"must be {PENDING_MESSAGE}") from exc
    if interval is None or interval <= timedelta(0):
        raise ValidationError("a pending duration needs a valid check interval")
    checks = checks_for(pending, interval)
    if checks > MAX_CHECKS:
        longest = display.duration(pending_period(MAX_CHECKS, interval))
        raise ValidationError(
            f"at most {longest} when checking every {display.duration(interval)} "
            f"({MAX_CHECKS} checks)"
        )
    return checks


@deconstructible
class Between:
    """``low <= value <= high`` (``low < value`` when ``low_inclusive`` is false); NaN is never
    in range. Deliberately not a Min/MaxValueValidator: DRF turns those into its own
    min_value/max_value with its own messages, and this one's message is the one to show."""

    def __init__(self, low: Any, high: Any, message: str, *, low_inclusive: bool = True) -> None:
        self.low, self.high, self.message, self.low_inclusive = low, high, message, low_inclusive

    def __call__(self, value: Any) -> None:
        if value is None:
            return
        above = self.low <= value if self.low_inclusive else self.low < value
        if not (above and value <= self.high):
            raise ValidationError(self.message, code="out_of_range")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Between) and (
            (self.low, self.high, self.message, self.low_inclusive)
            == (other.low, other.high, other.message, other.low_inclusive)
        )

    def __hash__(self) -> int:
        return hash((self.low, self.high, self.message, self.low_inclusive))


def _duration_bound(low: timedelta, high: timedelta) -> Between:
    return Between(low, high, f"must be between {duration_text(low)} and {duration_text(high)}")


INTERVAL_BOUND = _duration_bound(MIN_INTERVAL, MAX_INTERVAL)
WINDOW_BOUND = _duration_bound(MIN_WINDOW, MAX_WINDOW)
REPEAT_BOUND = _duration_bound(MIN_REPEAT, MAX_REPEAT)
CHECKS_BOUND = Between(MIN_CHECKS, MAX_CHECKS, f"must be between {MIN_CHECKS} and {MAX_CHECKS}")
_MAGNITUDE_TEXT = f"{MAX_MAGNITUDE:.0e}".replace("+", "")  # 1e15
THRESHOLD_BOUND = Between(
    -MAX_MAGNITUDE,
    MAX_MAGNITUDE,
    f"must be a finite number between -{_MAGNITUDE_TEXT} and {_MAGNITUDE_TEXT}",
)
PERCENTILE_BOUND = Between(0, 100, "must be above 0 and at most 100", low_inclusive=False)
TIMEOUT_BOUND = Between(
    MIN_TIMEOUT, MAX_TIMEOUT, f"must be between {MIN_TIMEOUT:g} and {MAX_TIMEOUT:g} seconds"
)
SILENCE_TOO_LONG = f"a silence can last at most {duration_text(MAX_SILENCE)}"
PRECISION_BOUND = Between(
    0, display.MAX_PRECISION, f"must be between 0 and {display.MAX_PRECISION} decimals"
)
TAGS_MESSAGE = 'must be an object of tag names to values, e.g. {"device": "greenhouse-1"}'


def validate_tags(value: Any) -> None:
    """Tag filters: at most MAX_TAGS names, each a non-empty string with a string value, no
    NUL characters (Postgres cannot store them) and at most MAX_TAG_LENGTH characters."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k for k, v in value.items()
    ):
        raise ValidationError(
            TAGS_MESSAGE, code="invalid_tags"
        )  # not "invalid": JSONField would replace the message
    if len(value) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tag filters", code="out_of_range")
    for key, tag in value.items():
        if "\x00" in key or "\x00" in tag:
            raise ValidationError("tag names and values cannot contain NUL characters")
        if len(key) > MAX_TAG_LENGTH or len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(f"tag names and values are at most {MAX_TAG_LENGTH} characters")


def validate_group_by(value: Any) -> None:
    """A fleet monitor's group-by tag keys (monitors.fleet bounds them)."""
    try:
        fleet.check_group_by(value)
    except fleet.SeriesBoundError as exc:
        raise ValidationError(str(exc), code="invalid_group_by") from exc


def validate_series_filter(value: Any) -> None:
    """Its shape and bounds; that its keys are grouped is checked with group_by
    (definition_errors)."""
    keys = list(value) if isinstance(value, dict) else []
    try:
        fleet.check_series_filter(value, keys)
    except fleet.SeriesBoundError as exc:
        raise ValidationError(str(exc), code="invalid_series_filter") from exc


STORM_BOUND = Between(
    1, fleet.MAX_STORM_THRESHOLD, f"must be between 1 and {fleet.MAX_STORM_THRESHOLD}"
)


def validate_unit(value: str) -> None:
    """A unit is short printable text ("°C", "µmol/m²/s"): no control characters."""
    if any(not ch.isprintable() for ch in value):
        raise ValidationError("a unit is printable text such as °C, % or kPa", code="invalid_unit")


def _in_range(name: str, low: Any, high: Any, *, nullable: bool = False) -> Q:
    inside = Q(**{f"{name}__gte": low, f"{name}__lte": high})
    return Q(**{f"{name}__isnull": True}) | inside if nullable else inside


class Source(models.Model):
    """An InfluxDB server and database that monitors query."""

    class Flavor(models.TextChoices):
        INFLUXQL = "influxql", "InfluxQL (v1 HTTP API: InfluxDB 1.x, 2.x compatibility, 3.x)"
        FLUX = "flux", "Flux (InfluxDB 2.x)"

    class AuthScheme(models.TextChoices):
        NONE = "none", "No authentication"
        BASIC = "basic", "Username and password (InfluxDB 1.x)"
        TOKEN = "token", "API token (InfluxDB 2.x/3.x)"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, help_text="e.g. http://influx.example.com:8086")
    database = models.CharField(max_length=200, help_text="Database (1.x) or bucket (2.x).")
    org = models.CharField(max_length=200, blank=True, help_text="Organisation (Flux only).")
    flavor = models.CharField(max_length=10, choices=Flavor.choices, default=Flavor.INFLUXQL)
    auth_scheme = models.CharField(max_length=10, choices=AuthScheme.choices, default="none")
    username = models.CharField(max_length=200, blank=True)
    secret_ciphertext = models.TextField(blank=True, editable=False)
    timeout_seconds = models.FloatField(default=5.0, validators=[TIMEOUT_BOUND])
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_error = models.CharField(max_length=300, blank=True)
    server_version = models.CharField(max_length=50, blank=True)
    # A source growalert creates for itself on its own InfluxDB (the demo's; later the hosted
    # device data): it skips the SSRF guard. Never settable through the API or the pages.
    hosted = models.BooleanField(default=False, editable=False)
    # Its InfluxDB pushes its writes to growalert (an InfluxDB subscription to /influx/write,
    # docs/arrival.md): the SHA-256 of the push key, shown once; '' when it does not push.
    push_key_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    push_key_prefix = models.CharField(max_length=16, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="source_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def secret(self) -> str:
        """The password or token, decrypted. Never serialise or log it."""
        return crypto.decrypt(self.secret_ciphertext)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_ciphertext = crypto.encrypt(value)

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)

    @property
    def pushes(self) -> bool:
        """Its InfluxDB pushes its writes (a subscription): monitors decide them on arrival."""
        return bool(self.push_key_hash)


class Channel(models.Model):
    """Where notifications go: email addresses, a webhook, a Slack webhook or a phone (SMS)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"
        SLACK = "slack", "Slack"
        SMS = "sms", "SMS"
        VOICE = "voice", "Voice call"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Non-secret settings: {"addresses": [...]}, {"url": ...}, {"phone": "+1..."}.
    config = models.JSONField(default=dict, blank=True)
    secret_ciphertext = models.TextField(blank=True, editable=False)
    verified = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    device_health = models.BooleanField(
        default=True,
        help_text="Device health alerts (offline, battery low, signal weak) of every device of "
        "the account, now and later, go to this channel (monitors/notify/channels.py).",
    )
    # New monitors notify the account's default channels unless told otherwise (the editor
    # ticks them; POST /monitors without "channels" uses them).
    default_for_new_monitors = models.BooleanField(default=False)
    # The channel's own words (monitors/notify/templating.py): "{monitor} is {value}"; empty
    # means the default message. Bounded here and by a CHECK constraint.
    subject_template = models.CharField(max_length=SUBJECT_TEMPLATE_LENGTH, blank=True)
    body_template = models.TextField(
        blank=True, validators=[MaxLengthValidator(BODY_TEMPLATE_LENGTH)]
    )
    disabled_reason = models.CharField(max_length=300, blank=True)
    consecutive_permanent_failures = models.PositiveIntegerField(default=0)
    # The current failing streak (any failed attempt starts it, a success ends it) and when
    # the owner was told about it by another channel (once per streak).
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    owner_told_at = models.DateTimeField(null=True, blank=True, editable=False)
    # SMS consent: a one-time code is sent to the number; only its hash is stored.
    verification_code_hash = models.CharField(max_length=128, blank=True, editable=False)
    verification_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    verification_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    # A member's personal email channel (to their login address), made when an escalation
    # step names them (monitors/escalation_policies.py). When they leave the account it is
    # disabled and kept (SET_NULL), with its notification history.
    member = models.ForeignKey(
        "accounts.Membership",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("body_template"), BODY_TEMPLATE_LENGTH),
                name="channel_body_template_bounded",
            ),
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(member__isnull=False),
                name="channel_one_personal_per_member",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_ciphertext)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_ciphertext = crypto.encrypt(value)

    @property
    def deliverable(self) -> bool:
        return self.enabled and self.verified

    @property
    def is_phone(self) -> bool:
        """SMS and voice channels reach a phone number that proves consent by a code."""
        return self.kind in PHONE_KINDS


PHONE_KINDS = (Channel.Kind.SMS, Channel.Kind.VOICE)


# A monitor's status: alerts_core's statuses (labels: monitors.vocabulary).
Status = ac.Status


class Monitor(models.Model):
    """A rule on a series: "mean of temperature for greenhouse-1 over 5m above 30"."""

    # The values are alerts_core's; the labels monitors.vocabulary's.
    Aggregation = ac.Aggregation
    Comparator = ac.Comparator
    DataPolicy = ac.DataPolicy

    class HealthKind(models.TextChoices):
        """The health monitors growalert keeps for every device (devices/health.py)."""

        OFFLINE = "offline", "Offline"
        BATTERY_LOW = "battery_low", "Battery low"
        SIGNAL_WEAK = "signal_weak", "Signal weak"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="monitors")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    # What to query: either the structured definition or a raw InfluxQL SELECT.
    measurement = models.CharField(max_length=200, blank=True)
    field = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(
        default=dict,
        blank=True,
        help_text='e.g. {"device": "greenhouse-1"}',
        validators=[validate_tags],
    )
    aggregation = models.CharField(max_length=12, choices=AGGREGATION_CHOICES, default="mean")
    percentile = models.FloatField(null=True, blank=True, validators=[PERCENTILE_BOUND])
    window = models.DurationField(default=timedelta(minutes=5), validators=[WINDOW_BOUND])
    raw_query = models.TextField(blank=True)
    # A fleet monitor: one state per series these tag keys tell apart (monitors/fleet.py).
    group_by = models.JSONField(
        default=list,
        blank=True,
        help_text='Tag keys, e.g. ["device"]: one state, incident and notification per series.',
        validators=[validate_group_by],
    )
    series_filter = models.JSONField(
        default=dict,
        blank=True,
        help_text='Only these series, e.g. {"device": ["greenhouse-1", "greenhouse-*"]}.',
        validators=[validate_series_filter],
    )
    # More series than this changing state in one evaluation: one message per channel listing
    # them (null: FLEET_STORM_THRESHOLD).
    storm_threshold = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[STORM_BOUND]
    )

    # When it fails: critical (and optional warning) thresholds; the *_high values bound ranges.
    comparator = models.CharField(max_length=10, choices=COMPARATOR_CHOICES, default="above")
    critical = models.FloatField(validators=[THRESHOLD_BOUND])
    critical_high = models.FloatField(null=True, blank=True, validators=[THRESHOLD_BOUND])
    warning = models.FloatField(null=True, blank=True, validators=[THRESHOLD_BOUND])
    warning_high = models.FloatField(null=True, blank=True, validators=[THRESHOLD_BOUND])
    recovery = models.FloatField(
        null=True,
        blank=True,
        help_text="Value the series must cross back over to resolve.",
        validators=[THRESHOLD_BOUND],
    )
    # Day and night (photoperiod): from lights_on to lights_off, wall-clock times in the
    # owner's time zone (accounts' Profile), the thresholds above hold; otherwise the night_*
    # ones (monitors/photoperiod.py). Both times or neither.
    lights_on = models.TimeField(
        null=True, blank=True, help_text="Day thresholds from this time, e.g. 06:00."
    )
    lights_off = models.TimeField(
        null=True, blank=True, help_text="Night thresholds from this time, e.g. 20:00."
    )
    night_critical = models.FloatField(null=True, blank=True, validators=[THRESHOLD_BOUND])
    night_critical_high = models.FloatField(null=True, blank=True, validators=[THRESHOLD_BOUND])
    night_warning = models.FloatField(null=True, blank=True, validators=[THRESHOLD_BOUND])
    night_warning_high = models.FloatField(null=True, blank=True, validators=[THRESHOLD_BOUND])
    night_recovery = models.FloatField(null=True, blank=True, validators=[THRESHOLD_BOUND])
    # How values are shown (pages, notifications): "22.7 °C". Blank unit: a bare number; no
    # precision: at most two decimals.
    unit = models.CharField(
        max_length=display.MAX_UNIT_LENGTH,
        blank=True,
        validators=[validate_unit],
        help_text="Shown after every value, e.g. °C, %, kPa.",
    )
    precision = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[PRECISION_BOUND],
        help_text=f"Decimals shown (0 to {display.MAX_PRECISION}); empty: at most two.",
    )

    # Policy, mirrored into alerts_core's Policy.
    interval = models.DurationField(default=timedelta(minutes=1), validators=[INTERVAL_BOUND])
    pending_for = models.PositiveSmallIntegerField(default=1, validators=[CHECKS_BOUND])
    recover_after = models.PositiveSmallIntegerField(default=1, validators=[CHECKS_BOUND])
    repeat_every = models.DurationField(null=True, blank=True, validators=[REPEAT_BOUND])
    # No data for longer than the window notifies by default: a dead sensor is heard of.
    no_data_policy = models.CharField(
        max_length=10,
        choices=DATA_POLICY_CHOICES,
        default=ac.DataPolicy.ALERTING.value,
        help_text="What no data in the window means. alerting (the default): a failing check, "
        "so it notifies after pending_for checks; status: shown as No data, notifies nobody.",
    )
    error_policy = models.CharField(max_length=10, choices=DATA_POLICY_CHOICES, default="status")
    flap_detection = models.BooleanField(default=True)

    channels = models.ManyToManyField(Channel, blank=True, related_name="monitors")
    # Who is told next while an incident stays unacknowledged (null: the owner's default
    # policy, if any; monitors/notify/escalation.py).
    escalation_policy = models.ForeignKey(
        "EscalationPolicy",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="monitors",
    )
    enabled = models.BooleanField(default=True)
    # A device's health monitor (offline, battery low, signal weak), kept by devices/health.py:
    # its owner changes its thresholds or switches it off; it goes with its device.
    device = models.ForeignKey(
        "devices.Device",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        editable=False,
        related_name="health_monitors",
    )
    # null (not ""): the API documents it as an enum or null
    health_kind = models.CharField(  # noqa: DJ001
        max_length=12, choices=HealthKind.choices, null=True, blank=True, editable=False
    )

    # Evaluation state, written by the evaluation pipeline.
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=Status.OK.value)
    state = models.JSONField(default=dict, blank=True, editable=False)
    state_version = models.PositiveBigIntegerField(default=0, editable=False)
    status_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    # When an evaluation last wrote the row. A settled monitor's steady ticks write nothing
    # (``evaluate.pipeline``): polled more often, it is refreshed every
    # EVALUATION_ROW_REFRESH_SECONDS (plus at most one interval), so it says "evaluated at least
    # this recently", not the last tick. Nothing schedules from it (the Schedule row does).
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    # The tick of the last evaluation written (a polled transition: the newest tick claimed,
    # ``Schedule.claimed_due_at``): a redelivered or stale batch for the same (or an older)
    # tick is refused, so no transition is applied twice.
    evaluated_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Moves with every write that changes anything but the four columns a quiet evaluation
    # writes (status_reason, last_value, last_evaluated_at, evaluated_due_at): bumped by a
    # database trigger (migration 0026), whoever writes the row. An evaluation worker keeps a
    # monitor between ticks while this has not moved (``evaluate.resident``).
    revision = models.PositiveBigIntegerField(default=0, db_default=0, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "status"], name="monitor_owner_status_idx")]
        # What the dispatcher and the pipeline depend on, enforced by the database too.
        constraints = [
            models.CheckConstraint(
                condition=_in_range("interval", MIN_INTERVAL, MAX_INTERVAL),
                name="monitor_interval_in_range",
            ),
            models.CheckConstraint(
                condition=_in_range("window", MIN_WINDOW, MAX_WINDOW),
                name="monitor_window_in_range",
            ),
            models.CheckConstraint(
                condition=_in_range("repeat_every", MIN_REPEAT, MAX_REPEAT, nullable=True),
                name="monitor_repeat_every_in_range",
            ),
            models.CheckConstraint(
                condition=_in_range("pending_for", MIN_CHECKS, MAX_CHECKS)
                & _in_range("recover_after", MIN_CHECKS, MAX_CHECKS),
                name="monitor_checks_in_range",
            ),
            models.CheckConstraint(
                # NaN compares above every number in Postgres, so it is outside the range too
                condition=_in_range("critical", -MAX_MAGNITUDE, MAX_MAGNITUDE)
                & _in_range("critical_high", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True)
                & _in_range("warning", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True)
                & _in_range("warning_high", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True)
                & _in_range("recovery", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True)
                & (Q(percentile__isnull=True) | Q(percentile__gt=0, percentile__lte=100)),
                name="monitor_numbers_finite",
            ),
            models.CheckConstraint(
                condition=_in_range("night_critical", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True)
                & _in_range("night_critical_high", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True)
                & _in_range("night_warning", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True)
                & _in_range("night_warning_high", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True)
                & _in_range("night_recovery", -MAX_MAGNITUDE, MAX_MAGNITUDE, nullable=True),
                name="monitor_night_numbers_finite",
            ),
            models.CheckConstraint(
                condition=Q(lights_on__isnull=True, lights_off__isnull=True)
                | Q(lights_on__isnull=False, lights_off__isnull=False),
                name="monitor_photoperiod_both_times",
            ),
            models.CheckConstraint(
                condition=_in_range("precision", 0, display.MAX_PRECISION, nullable=True),
                name="monitor_precision_in_range",
            ),
            models.CheckConstraint(
                condition=_in_range("storm_threshold", 1, fleet.MAX_STORM_THRESHOLD, nullable=True),
                name="monitor_storm_threshold_in_range",
            ),
            models.CheckConstraint(
                condition=Q(device__isnull=True, health_kind__isnull=True)
                | Q(
                    device__isnull=False, health_kind__in=("offline", "battery_low", "signal_weak")
                ),
                name="monitor_health_kind_with_device",
            ),
            models.UniqueConstraint(
                fields=["device", "health_kind"],
                condition=Q(device__isnull=False),
                name="monitor_one_health_kind_per_device",
            ),
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._due_at: datetime | None = None
        # The owner's time zone, which the photoperiod follows: set by whoever loads the
        # monitor for evaluation (monitors/evaluate/time_zones.py), never stored here.
        self.time_zone: str | None = None
        super().__init__(*args, **kwargs)

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        with transaction.atomic():
            super().save(*args, **kwargs)
            self._sync_schedule()

    def clean(self) -> None:
        errors = definition_errors({name: getattr(self, name, None) for name in _RULE_FIELDS})
        if self.critical is None:
            errors.pop("critical", None)  # clean_fields says so already
        if errors:
            raise ValidationError(errors)

    def out_of_range(self) -> dict[str, str]:
        """The stored settings outside their bounds, by field (field validators only, no
        query): why a row planted past validation cannot be evaluated."""
        problems: dict[str, str] = {}
        for name in _BOUNDED_FIELDS:
            try:
                self._meta.get_field(name).run_validators(getattr(self, name))  # type: ignore[union-attr]
            except ValidationError as exc:
                problems[name] = " ".join(exc.messages)
        return problems

    @property
    def next_due_at(self) -> datetime | None:
        """When the dispatcher next evaluates this monitor (None while it is paused). Lives in
        the narrow :class:`Schedule` table; setting it takes effect on ``save()``."""
        if self._due_at is not None:
            return self._due_at
        if not self.pk or not self.enabled:
            return None
        try:
            return self.schedule.next_due_at
        except Schedule.DoesNotExist:
            return None

    @next_due_at.setter
    def next_due_at(self, moment: datetime | None) -> None:
        self._due_at = moment

    def _sync_schedule(self) -> None:
        """An enabled monitor has a Schedule row, a paused one has none: a database trigger
        keeps that true for every write (migration 0008), however the row is written. Here
        only a due time set on the instance is applied, and the cached row dropped."""
        self._state.fields_cache.pop("schedule", None)  # the trigger may have changed it
        if self._due_at is not None and self.enabled:
            Schedule.objects.filter(monitor_id=self.pk).update(next_due_at=self._due_at)
            self.schedule = Schedule(  # caches the row as written
                monitor_id=self.pk,
                owner_id=self.owner_id,
                source_id=self.source_id,
                interval=self.interval,
                next_due_at=self._due_at,
            )
        self._due_at = None

    def show(self, value: float | None) -> str:
        """A value of this monitor's series with its unit and precision: "22.7 °C"."""
        return display.quantity(value, self.unit, self.precision)

    # The monitor as values for querying and deciding: pure, no I/O.

    def _values(self, kind: type[V]) -> V:
        """``kind`` (a dataclass whose fields are named as this model's) from this row."""
        return kind(**{f.name: getattr(self, f.name) for f in dataclasses.fields(kind)})

    def definition(self) -> Definition:
        """What a structured monitor queries (a raw query is its own text)."""
        return self._values(Definition)

    def thresholds(self) -> Thresholds:
        """The (day) thresholds. Raises ValueError for a threshold that is not a finite number
        (a row planted past validation): every comparison with NaN is false, so it would
        silently never fire."""
        return _thresholds(self, "", "day" if self.has_photoperiod else "")

    @property
    def has_photoperiod(self) -> bool:
        return self.lights_on is not None and self.lights_off is not None

    def thresholds_at(self, moment: datetime, time_zone: str) -> Thresholds:
        """The thresholds in force at ``moment``: the night ones in the photoperiod's night
        (``lights_on``/``lights_off`` read in ``time_zone``, the owner's). Raises ValueError as
        :meth:`thresholds` does."""
        if photoperiod.is_night(moment, self.lights_on, self.lights_off, time_zone):
            return _thresholds(self, "night_", "night")
        return self.thresholds()

    @property
    def is_fleet(self) -> bool:
        return bool(self.group_by)

    def policy(self) -> ac.Policy:
        """How outcomes become statuses, for alerts_core's state machine."""
        return ac.Policy(
            pending_for=self.pending_for,
            recover_after=self.recover_after,
            repeat_every=self.repeat_every,
            no_data=ac.DataPolicy(self.no_data_policy),
            error=ac.DataPolicy(self.error_policy),
            flap_detection=self.flap_detection,
        )

    def alert_state(self) -> ac.MonitorState:
        """What the state machine remembers (a fresh state for a new monitor). Raises for a
        stored state that cannot be read (the pipeline resets it)."""
        return ac.MonitorState.from_dict(self.state) if self.state else ac.MonitorState()


_THRESHOLD_NAMES = ("critical", "critical_high", "warning", "warning_high", "recovery")
NIGHT_FIELDS = tuple(f"night_{name}" for name in _THRESHOLD_NAMES)
PHOTOPERIOD_FIELDS = ("lights_on", "lights_off", *NIGHT_FIELDS)


def _thresholds(monitor: Monitor, prefix: str, period: str) -> Thresholds:
    values = {name: getattr(monitor, prefix + name) for name in _THRESHOLD_NAMES}
    if any(v is not None and not math.isfinite(v) for v in values.values()):
        raise ValueError("a threshold is not a finite number")
    if values["critical"] is None:
        raise ValueError(f"the {prefix}critical threshold is missing")
    return Thresholds(comparator=monitor.comparator, period=period, **values)


_RULE_FIELDS = (
    "group_by", "series_filter", "tags", "raw_query", "measurement", "field", "aggregation",
    "percentile", "comparator", "critical", "critical_high", "warning", "warning_high",
    "recovery", *PHOTOPERIOD_FIELDS,
)  # fmt: skip
_BOUNDED_FIELDS = (
    "interval", "window", "repeat_every", "pending_for", "recover_after", "percentile",
    "critical", "critical_high", "warning", "warning_high", "recovery", "tags", "precision",
    "group_by", "series_filter", "storm_threshold", *NIGHT_FIELDS,
)  # fmt: skip


def definition_errors(m: Mapping[str, Any]) -> dict[str, str]:
    """What a monitor definition needs beyond each field's own bounds: a query, a percentile
    for the percentile aggregation, both bounds for range comparators, and a warning that trips
    before the critical threshold. ``m`` maps field names to values (missing ones are unset)."""
    errors: dict[str, str] = {}
    if not m.get("raw_query"):
        for name in ("measurement", "field"):
            if not m.get(name):
                errors[name] = "required unless raw_query is given"
    errors.update(_fleet_errors(m))
    if m.get("aggregation") == ac.Aggregation.PERCENTILE and m.get("percentile") is None:
        errors["percentile"] = "required when aggregation is percentile"
    if m.get("critical") is None:
        errors["critical"] = "this field is required"
        return errors
    errors.update(_threshold_errors(m, ""))
    errors.update(_photoperiod_errors(m))
    return errors


def _threshold_errors(m: Mapping[str, Any], prefix: str) -> dict[str, str]:
    """A set of thresholds (the day's, or with ``prefix`` "night_" the night's) consistent
    with the comparator; errors keyed by the prefixed field names."""
    errors: dict[str, str] = {}
    comparator, critical = m.get("comparator", ac.Comparator.ABOVE), m[f"{prefix}critical"]
    numbers = [m.get(prefix + name) for name in _THRESHOLD_NAMES]
    if any(n is not None and not math.isfinite(n) for n in numbers):
        return errors  # each field's own validator says which
    if ac.Comparator(comparator).is_range:
        high = m.get(f"{prefix}critical_high")
        if high is None:
            errors[f"{prefix}critical_high"] = f"required for the {comparator} comparator"
        elif high <= critical:
            errors[f"{prefix}critical_high"] = f"must be greater than {prefix}critical"
        if (m.get(f"{prefix}warning") is None) != (m.get(f"{prefix}warning_high") is None):
            errors[f"{prefix}warning_high"] = (
                f"a warning range needs both {prefix}warning and {prefix}warning_high"
            )
        return errors
    warning, recovery = m.get(f"{prefix}warning"), m.get(f"{prefix}recovery")
    above = comparator == ac.Comparator.ABOVE
    if warning is not None and (warning >= critical if above else warning <= critical):
        errors[f"{prefix}warning"] = (
            f"must be {'below' if above else 'above'} {prefix}critical ({critical})"
        )
    if recovery is not None and (recovery > critical if above else recovery < critical):
        errors[f"{prefix}recovery"] = (
            f"must be {'at or below' if above else 'at or above'} {prefix}critical"
        )
    return errors


def _photoperiod_errors(m: Mapping[str, Any]) -> dict[str, str]:
    """Both times or neither, two different times, and night thresholds exactly with them."""
    on, off = m.get("lights_on"), m.get("lights_off")
    nights = [name for name in NIGHT_FIELDS if m.get(name) is not None]
    if on is None and off is None:
        return {nights[0]: "night thresholds need lights on and lights off times"} if nights else {}
    if on is None or off is None:
        missing = "lights_on" if on is None else "lights_off"
        return {missing: "lights on and lights off go together: give both or neither"}
    if not isinstance(on, time) or not isinstance(off, time):
        return {}  # each field's own validation says so
    if on == off:
        return {"lights_off": "must differ from lights on"}
    if m.get("night_critical") is None:
        return {"night_critical": "required with lights on and lights off"}
    return _threshold_errors(m, "night_")


def _fleet_errors(m: Mapping[str, Any]) -> dict[str, str]:
    group_by = m.get("group_by") or []
    series_filter = m.get("series_filter") or {}
    if not isinstance(group_by, list) or not isinstance(series_filter, dict):
        return {}  # each field's own validator says so
    if not group_by:
        return {"series_filter": "needs group_by"} if series_filter else {}
    if m.get("raw_query"):
        return {"group_by": "needs a structured definition (measurement and field), not raw_query"}
    fixed = set(m.get("tags") or {}).intersection(group_by)
    if fixed:
        return {"group_by": f"{sorted(fixed)[0]!r} is a fixed tag: group by it or filter on it"}
    try:
        fleet.check_series_filter(series_filter, group_by)
    except fleet.SeriesBoundError as exc:
        return {"series_filter": str(exc)}
    return {}


class Schedule(models.Model):
    """The dispatcher's table: one narrow row per enabled monitor, claimed and advanced every
    second. Kept apart from the wide Monitor row so that advancing 10,000 due times rewrites
    10,000 small tuples with two indexes, not 10,000 monitors with five."""

    monitor = models.OneToOneField(
        Monitor, on_delete=models.CASCADE, primary_key=True, related_name="schedule"
    )
    owner_id = models.BigIntegerField()  # copies: the claim filters and batches on them
    source_id = models.BigIntegerField()
    interval = models.DurationField()
    next_due_at = models.DateTimeField(db_index=True)
    # The newest due time the dispatcher claimed (written by the claim): a polled decision that
    # changes the state is applied under it (``pipeline._APPLY_POLLED``), so a batch arriving
    # after a newer tick was evaluated without a write cannot count that tick a second time.
    claimed_due_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=_in_range("interval", MIN_INTERVAL, MAX_INTERVAL),
                name="schedule_interval_in_range",
            )
        ]

    def __str__(self) -> str:
        return f"monitor {self.monitor_id} due {self.next_due_at:%H:%M:%S}"


class SeriesState(models.Model):
    """One series of a fleet monitor: its own alerts_core state, written by the pipeline
    (monitors/evaluate/fleet.py) with the same conditional update as a monitor's, and only
    when it changes. A series that stops reporting keeps its row: the no-data policy applies
    to it alone."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="series")
    key = models.CharField(max_length=SERIES_KEY_LENGTH)
    tags = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=Status.OK.value)
    state = models.JSONField(default=dict)
    state_version = models.PositiveBigIntegerField(default=0)
    status_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    evaluated_due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["monitor", "key"]
        constraints = [
            models.UniqueConstraint(fields=["monitor", "key"], name="series_state_one_per_key")
        ]
        indexes = [  # the retention's gone series (monitors/retention.py): no data, oldest first
            models.Index(
                fields=["last_evaluated_at"],
                condition=Q(last_value__isnull=True),
                name="series_state_gone_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.monitor_id}: {self.key}"

    def alert_state(self) -> ac.MonitorState:
        return ac.MonitorState.from_dict(self.state) if self.state else ac.MonitorState()


class Incident(models.Model):
    """One stretch of trouble: opened when a monitor fires, resolved when it recovers."""

    class Severity(models.TextChoices):
        CRITICAL = "critical", "Critical"
        WARNING = "warning", "Warning"

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="incidents")
    severity = models.CharField(max_length=10, choices=Severity.choices, default="critical")
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    opened_value = models.FloatField(null=True, blank=True)
    peak_value = models.FloatField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    # A fleet monitor's series ("" for a single-series monitor): one open incident per series.
    series_key = models.CharField(max_length=SERIES_KEY_LENGTH, blank=True, default="")
    # Acknowledgement: someone is on it (monitors/notify/acknowledge.py decides it with one
    # conditional update). It stops escalation and repeats; resolution still ends the incident.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # database defaults too: the fleet path writes incidents with its own INSERT
    acknowledged_via = models.CharField(
        max_length=10, choices=ACK_ROUTE_CHOICES, blank=True, default="", db_default=""
    )
    # Who, when no signed-in user did it: the channel of a link, the phone that replied.
    acknowledged_note = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-opened_at"]
        indexes = [  # retention walks the resolved ones, oldest first (monitors/retention.py)
            models.Index(
                fields=["resolved_at"],
                condition=Q(resolved_at__isnull=False),
                name="incident_resolved_at_idx",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["monitor", "series_key"],
                condition=Q(resolved_at__isnull=True),
                name="incident_one_open_per_series",
            )
        ]

    def __str__(self) -> str:
        return f"{self.monitor} since {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def duration(self) -> timedelta | None:
        return None if self.resolved_at is None else self.resolved_at - self.opened_at

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def hushes(self, event_kind: str) -> bool:
        """An acknowledged incident is not repeated ("still firing") any more."""
        return event_kind == NotificationEvent.REPEATED and self.acknowledged_at is not None

    @property
    def short_code(self) -> str:
        """What an SMS reply names it by: ``ACK 4821`` (only incidents texted to that number
        can be acknowledged from it)."""
        return str(self.pk)

    def acknowledged_by_text(self) -> str:
        """ "alice via the API", "+15551234567 via an SMS reply": who, as a person reads it."""
        if self.acknowledged_at is None:
            return ""
        who = self.acknowledged_by.get_username() if self.acknowledged_by else ""
        who = who or self.acknowledged_note or "someone"
        via = self.get_acknowledged_via_display()
        return f"{who} via {via}" if via else who


class Notification(models.Model):
    """The transactional outbox: one row per channel per state change that should notify,
    written in the same transaction as the state change; delivered after commit."""

    Event = NotificationEvent

    class DeliveryStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # Held back by a silence: logged, never sent (what changed is told when it ends).
        SUPPRESSED = "suppressed", "Not sent: silenced"
        # An escalation or "still firing" row whose incident was acknowledged or resolved
        # before it went out: never sent, the reason in ``last_error``.
        WITHHELD = "withheld", "Not sent"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, related_name="notifications", null=True, blank=True
    )
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, related_name="notifications", null=True, blank=True
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=20, choices=EVENT_CHOICES)
    # Stable across retries: receivers de-duplicate on it.
    idempotency_key = models.CharField(max_length=200, unique=True)
    payload = models.JSONField(default=dict)
    # The fleet series it is about ("" for a single-series monitor, or a storm listing many).
    series_key = models.CharField(max_length=SERIES_KEY_LENGTH, blank=True, default="")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Retries stop at this time; null means created_at + NOTIFY_RETRY_FOR_HOURS. A retried
    # dead letter gets a new budget.
    retry_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="notification_backlog_idx",
            ),
            # retention walks the outbox oldest first (monitors/retention.py)
            models.Index(fields=["created_at"], name="notification_created_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.channel}"


class DeliveryAttempt(models.Model):
    """One try at delivering a notification: the delivery log a user reads."""

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        TRANSIENT = "transient", "Failed, will retry"
        PERMANENT = "permanent", "Failed permanently"
        UNKNOWN = "unknown", "Interrupted, outcome unknown"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    number = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)  # null: the attempt was interrupted

    class Meta:
        ordering = ["notification", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "number"], name="delivery_attempt_once_per_number"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.get_outcome_display()}"


class Silence(models.Model):
    """A maintenance window: monitors keep being evaluated but do not notify.

    With no monitor it silences all of the owner's monitors."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, related_name="silences", null=True, blank=True
    )
    # One series of a fleet monitor (its key, as GET /monitors/<id>/series lists it).
    series_key = models.CharField(max_length=SERIES_KEY_LENGTH, blank=True, default="")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)
    # A maintenance window that comes back every day at the same local time (the site's time
    # zone): from starts_at on, each day for as long as ends_at - starts_at (under a day).
    daily = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["owner", "ends_at"], name="silence_owner_end_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="silence_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        target = self.monitor or "all monitors"
        return f"Silence {target} until {self.ends_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        errors = silence_errors(self.starts_at, self.ends_at, daily=self.daily)
        if self.series_key and self.monitor_id is None:
            errors["series_key"] = "a series is silenced on its monitor: give monitor too"
        if errors:
            raise ValidationError(errors)

    def window_at(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The window (start, end) that covers ``at``, if any: the silence itself, or for a
        daily one today's or yesterday's window (local time, so it keeps its hour across DST)."""
        if at < self.starts_at:
            return None
        if not self.daily:
            return (self.starts_at, self.ends_at) if at < self.ends_at else None
        length = self.ends_at - self.starts_at
        first = timezone.localtime(self.starts_at)
        today = timezone.localtime(at).date()
        for back in (0, 1):
            day = today - timedelta(days=back)
            start = timezone.make_aware(datetime.combine(day, first.time().replace(tzinfo=None)))
            if self.starts_at <= start <= at < start + length:
                return start, start + length
        return None

    def is_active(self, at: datetime) -> bool:
        return self.window_at(at) is not None

    def windows_between(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The windows (start, end) that overlap ``start``..``end``: the silence itself, or
        for a daily one each day's window (the site's time zone, as the evaluation's
        :meth:`window_at` sees it, whichever zone a page has activated)."""
        if not self.daily:
            return (
                [(self.starts_at, self.ends_at)]
                if self.starts_at < end and self.ends_at > start
                else []
            )
        zone = timezone.get_default_timezone()
        length = self.ends_at - self.starts_at
        first = timezone.localtime(self.starts_at, zone).time().replace(tzinfo=None)
        day = timezone.localtime(max(start, self.starts_at), zone).date() - timedelta(days=1)
        last = timezone.localtime(end, zone).date()
        found = []
        while day <= last:
            opens = timezone.make_aware(datetime.combine(day, first), zone)
            if opens >= self.starts_at and opens < end and opens + length > start:
                found.append((opens, opens + length))
            day += timedelta(days=1)
        return found


def silence_errors(
    starts: datetime | None, ends: datetime | None, *, daily: bool = False
) -> dict[str, str]:
    """A silence ends after it starts and lasts at most MAX_SILENCE; a daily window lasts less
    than a day."""
    if starts is None or ends is None:
        return {}
    if ends <= starts:
        return {"ends_at": "must be after starts_at"}
    if daily and ends - starts >= timedelta(days=1):
        return {"ends_at": "a daily window lasts less than a day"}
    if ends - starts > MAX_SILENCE:
        return {"ends_at": SILENCE_TOO_LONG}
    return {}


def covering_silences(owner_ids: set[int], now: datetime) -> list[Silence]:
    """The owners' silences of whole monitors in force at ``now`` (one-off and daily windows);
    a silence of one fleet series is :func:`covering_series_silences`'."""
    candidates = Silence.objects.filter(
        owner_id__in=owner_ids, starts_at__lte=now, series_key=""
    ).filter(Q(ends_at__gt=now) | Q(daily=True))
    return [s for s in candidates if s.is_active(now)]


def covering_series_silences(monitor_ids: list[int], now: datetime) -> list[Silence]:
    """The silences of single fleet series of these monitors in force at ``now``."""
    candidates = (
        Silence.objects.filter(monitor_id__in=monitor_ids, starts_at__lte=now)
        .exclude(series_key="")
        .filter(Q(ends_at__gt=now) | Q(daily=True))
    )
    return [s for s in candidates if s.is_active(now)]


# ---------------------------------------------------------------- escalation
# Bounds of an escalation policy (every value a user sets).
MAX_STEPS = 10
MIN_STEP_MINUTES, MAX_STEP_MINUTES = 1, 7 * 24 * 60  # after N minutes unacknowledged
MIN_REPEAT_MINUTES, MAX_REPEAT_MINUTES = 1, 24 * 60  # the last step again every M minutes
MAX_STEP_CHANNELS = 20
MAX_STEP_MEMBERS = 20  # members of the account one step tells by email
MAX_POLICY_REPEATS = 500  # repeats of the last step per incident, then escalation stops
STEP_MINUTES_BOUND = Between(
    MIN_STEP_MINUTES, MAX_STEP_MINUTES, f"must be between 1 and {MAX_STEP_MINUTES} minutes (7 days)"
)
REPEAT_MINUTES_BOUND = Between(
    MIN_REPEAT_MINUTES,
    MAX_REPEAT_MINUTES,
    f"must be between 1 and {MAX_REPEAT_MINUTES} minutes (1 day)",
)


def validate_working_days(value: Any) -> None:
    """Weekdays as numbers, Monday 0 to Sunday 6, each at most once."""
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in value
    ):
        raise ValidationError(
            "must be a list of weekdays as numbers, Monday 0 to Sunday 6", code="invalid_days"
        )
    if len(set(value)) != len(value):
        raise ValidationError("each weekday at most once", code="invalid_days")


def _weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]


class EscalationPolicy(models.Model):
    """Who is told next while an incident stays unacknowledged: ordered steps ("after 10
    minutes, call the on-call phone"), then the last step again every ``repeat_minutes`` until
    someone acknowledges or the incident resolves. A step can apply in working hours only or
    after hours only (the owner's time zone, accounts.Profile)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    repeat_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[REPEAT_MINUTES_BOUND],
        help_text="Repeat the last step every this many minutes until acknowledged (empty: once).",
    )
    is_default = models.BooleanField(
        default=False, help_text="Used by every monitor of the owner that names no policy."
    )
    working_days = models.JSONField(
        default=_weekdays,
        blank=True,
        validators=[validate_working_days],
        help_text="Weekdays of the working hours, Monday 0 to Sunday 6.",
    )
    working_start = models.TimeField(default=time(8, 0))
    working_end = models.TimeField(default=time(18, 0))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], name="escalation_policy_unique_name_per_owner"
            ),
            models.UniqueConstraint(
                fields=["owner"],
                condition=Q(is_default=True),
                name="escalation_policy_one_default_per_owner",
            ),
            models.CheckConstraint(
                condition=_in_range(
                    "repeat_minutes", MIN_REPEAT_MINUTES, MAX_REPEAT_MINUTES, nullable=True
                ),
                name="escalation_policy_repeat_in_range",
            ),
            models.CheckConstraint(
                condition=Q(working_end__gt=models.F("working_start")),
                name="escalation_policy_working_hours_order",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.working_start and self.working_end and self.working_end <= self.working_start:
            raise ValidationError({"working_end": "must be after the start of working hours"})

    def in_working_hours(self, local: datetime) -> bool:
        """``local``: a moment in the owner's time zone."""
        return (
            local.weekday() in (self.working_days or [])
            and self.working_start <= local.time().replace(tzinfo=None) < self.working_end
        )


class EscalationStep(models.Model):
    class Hours(models.TextChoices):
        ALWAYS = "always", "Always"
        WORKING = "working", "In working hours only"
        AFTER = "after", "After hours only"

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    after_minutes = models.PositiveIntegerField(validators=[STEP_MINUTES_BOUND])
    hours = models.CharField(max_length=10, choices=Hours.choices, default=Hours.ALWAYS)
    channels = models.ManyToManyField(Channel, blank=True, related_name="escalation_steps")
    # Members of the policy's account told by email at their login address (each through
    # their personal channel, Channel.member); a member who leaves drops out of the step.
    members = models.ManyToManyField(
        "accounts.Membership", blank=True, related_name="escalation_steps"
    )

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "position"], name="escalation_step_one_per_position"
            ),
            models.CheckConstraint(
                condition=_in_range("after_minutes", MIN_STEP_MINUTES, MAX_STEP_MINUTES),
                name="escalation_step_after_in_range",
            ),
            models.CheckConstraint(
                condition=Q(position__lt=MAX_STEPS), name="escalation_step_position_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"step {self.position + 1}: after {self.after_minutes} min"

    def applies(self, policy: EscalationPolicy, local: datetime) -> bool:
        if self.hours == self.Hours.ALWAYS:
            return True
        working = policy.in_working_hours(local)
        return working if self.hours == self.Hours.WORKING else not working


class Escalation(models.Model):
    """The due row of one incident's escalation: claimed like every outbox row (FOR UPDATE
    SKIP LOCKED, the step's notifications written and the row advanced in one transaction), so
    a step is taken exactly once and a crash mid-step leaves the row due for the next claim."""

    incident = models.OneToOneField(
        Incident, on_delete=models.CASCADE, primary_key=True, related_name="escalation"
    )
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="+")
    next_step = models.PositiveSmallIntegerField(default=0)  # == steps: repeating the last
    repeats = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    finished_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=Q(finished_at__isnull=True),
                name="escalation_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"escalation of incident {self.incident_id}, step {self.next_step + 1}"
