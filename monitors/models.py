"""Sources, monitors, channels, incidents, the notification outbox and silences.

Model methods hold logic about one row with no I/O; everything else lives in services
(writes) and selectors (reads).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from monitors import crypto


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
    timeout_seconds = models.FloatField(default=5.0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_error = models.CharField(max_length=300, blank=True)
    server_version = models.CharField(max_length=50, blank=True)
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


class Channel(models.Model):
    """Where notifications go: email addresses, a webhook, a Slack webhook or a phone (SMS)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"
        SLACK = "slack", "Slack"
        SMS = "sms", "SMS"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Non-secret settings: {"addresses": [...]}, {"url": ...}, {"phone": "+1..."}.
    config = models.JSONField(default=dict, blank=True)
    secret_ciphertext = models.TextField(blank=True, editable=False)
    verified = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

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


class Status(models.TextChoices):
    """A monitor's status; values match alerts_core's statuses."""

    OK = "ok", "OK"
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    WARNING = "warning", "Warning"
    NO_DATA = "no_data", "No data"
    ERROR = "error", "Error"
    PAUSED = "paused", "Paused"


class Monitor(models.Model):
    """A rule on a series: "mean of temperature for greenhouse-1 over 5m above 30"."""

    class Aggregation(models.TextChoices):
        MEAN = "mean", "Mean"
        MIN = "min", "Minimum"
        MAX = "max", "Maximum"
        LAST = "last", "Last value"
        COUNT = "count", "Count"
        SUM = "sum", "Sum"
        MEDIAN = "median", "Median"
        PERCENTILE = "percentile", "Percentile"

    class Comparator(models.TextChoices):
        ABOVE = "above", "Above"
        BELOW = "below", "Below"
        OUTSIDE = "outside", "Outside a range"
        INSIDE = "inside", "Inside a range"

    class DataPolicy(models.TextChoices):
        ALERTING = "alerting", "Treat as failing"
        OK = "ok", "Treat as OK"
        KEEP_LAST = "keep_last", "Keep the last state"
        STATUS = "status", "Show as its own status"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="monitors")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    # What to query: either the structured definition or a raw InfluxQL SELECT.
    measurement = models.CharField(max_length=200, blank=True)
    field = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=dict, blank=True, help_text='e.g. {"device": "greenhouse-1"}')
    aggregation = models.CharField(max_length=12, choices=Aggregation.choices, default="mean")
    percentile = models.FloatField(null=True, blank=True)
    window = models.DurationField(default=timedelta(minutes=5))
    raw_query = models.TextField(blank=True)

    # When it fails: critical (and optional warning) thresholds; the *_high values bound ranges.
    comparator = models.CharField(max_length=10, choices=Comparator.choices, default="above")
    critical = models.FloatField()
    critical_high = models.FloatField(null=True, blank=True)
    warning = models.FloatField(null=True, blank=True)
    warning_high = models.FloatField(null=True, blank=True)
    recovery = models.FloatField(
        null=True, blank=True, help_text="Value the series must cross back over to resolve."
    )

    # Policy, mirrored into alerts_core's Policy.
    interval = models.DurationField(default=timedelta(minutes=1))
    pending_for = models.PositiveSmallIntegerField(default=1)
    recover_after = models.PositiveSmallIntegerField(default=1)
    repeat_every = models.DurationField(null=True, blank=True)
    no_data_policy = models.CharField(max_length=10, choices=DataPolicy.choices, default="status")
    error_policy = models.CharField(max_length=10, choices=DataPolicy.choices, default="status")
    flap_detection = models.BooleanField(default=True)

    channels = models.ManyToManyField(Channel, blank=True, related_name="monitors")
    enabled = models.BooleanField(default=True)

    # Evaluation state, written by the evaluation pipeline.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK)
    state = models.JSONField(default=dict, blank=True, editable=False)
    state_version = models.PositiveBigIntegerField(default=0, editable=False)
    status_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    # The due time of the last evaluation applied: a redelivered or stale batch for the same
    # (or an older) tick is refused, so no transition is applied twice.
    evaluated_due_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "status"], name="monitor_owner_status_idx")]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._due_at: datetime | None = None
        super().__init__(*args, **kwargs)

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        with transaction.atomic():
            super().save(*args, **kwargs)
            self._sync_schedule()

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
        """An enabled monitor has a Schedule row, a paused one has none."""
        if not self.enabled:
            Schedule.objects.filter(monitor_id=self.pk).delete()
            self._due_at = None
            return
        defaults: dict[str, Any] = {
            "owner_id": self.owner_id,
            "source_id": self.source_id,
            "interval": self.interval,
        }
        if self._due_at is not None:
            defaults["next_due_at"] = self._due_at
        schedule, _ = Schedule.objects.update_or_create(
            monitor_id=self.pk,
            defaults=defaults,
            create_defaults={**defaults, "next_due_at": self._due_at or timezone.now()},
        )
        self._due_at = None
        self.schedule = schedule  # caches the row on this instance

    @property
    def is_range(self) -> bool:
        return self.comparator in (self.Comparator.OUTSIDE, self.Comparator.INSIDE)

    def next_due_after(self, moment: datetime) -> datetime:
        return moment + self.interval


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

    def __str__(self) -> str:
        return f"monitor {self.monitor_id} due {self.next_due_at:%H:%M:%S}"


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

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["monitor"],
                condition=Q(resolved_at__isnull=True),
                name="incident_one_open_per_monitor",
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


class Notification(models.Model):
    """The transactional outbox: one row per channel per state change that should notify,
    written in the same transaction as the state change; delivered after commit."""

    class Event(models.TextChoices):
        FIRED = "fired", "Fired"
        RESOLVED = "resolved", "Resolved"
        REPEATED = "repeated", "Still firing"
        WARNING_RAISED = "warning_raised", "Warning"
        WARNING_CLEARED = "warning_cleared", "Warning cleared"
        FLAPPING_STARTED = "flapping_started", "Flapping (notifications paused)"
        FLAPPING_STOPPED = "flapping_stopped", "Stopped flapping"
        TEST = "test", "Test notification"
        CHANNEL_FAILING = "channel_failing", "Another channel keeps failing"

    class DeliveryStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, related_name="notifications", null=True, blank=True
    )
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, related_name="notifications", null=True, blank=True
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=20, choices=Event.choices)
    # Stable across retries: receivers de-duplicate on it.
    idempotency_key = models.CharField(max_length=200, unique=True)
    payload = models.JSONField(default=dict)
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
            )
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
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)
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

    def is_active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at
