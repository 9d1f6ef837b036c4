"""Page forms. The monitor form parses what people type ("5m", "device=greenhouse-1") and then
runs the one validation of a monitor definition the API runs too (monitors/validation.py), so
a rule is checked in one place and its errors land next to the field they are about."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.forms.models import construct_instance

from billing.plans import min_interval_for
from growalert.pages.errors import sentence
from monitors import display, validation
from monitors.models import (
    MAX_INTERVAL,
    MAX_REPEAT,
    MAX_SILENCE,
    MAX_WINDOW,
    MIN_REPEAT,
    SERIES_KEY_LENGTH,
    SILENCE_TOO_LONG,
    Channel,
    Monitor,
    Source,
    pending_checks,
    pending_period,
)

parse_duration = display.parse_duration


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


class HumanDurationField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "e.g. 30s, 5m, 1h")
        super().__init__(**kwargs)
        self.widget.attrs["maxlength"] = "20"

    def prepare_value(self, value: Any) -> Any:
        return format_duration(value) if isinstance(value, timedelta) else value

    def to_python(self, value: Any) -> timedelta | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise forms.ValidationError("Use a duration like 30s, 5m or 1h.") from exc
        except OverflowError as exc:  # beyond any timedelta, and so beyond every bound
            raise forms.ValidationError("That duration is far too long.") from exc


def parse_tags(text: str) -> dict[str, str]:
    """'device=greenhouse-1, site=north' → {"device": "greenhouse-1", "site": "north"}."""
    tags: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in re.split(r"[,\n]", text))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(part)
        tags[key.strip()] = value.strip()
    return tags


class TagsField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "Comma-separated name=value pairs, e.g. device=greenhouse-1")
        super().__init__(required=False, **kwargs)
        self.widget.attrs["maxlength"] = "2000"

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return ", ".join(f"{k}={v}" for k, v in value.items())
        return value

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        try:
            return parse_tags(super().to_python(value) or "")
        except ValueError as exc:
            raise forms.ValidationError(
                "Write each tag as name=value, separated by commas."
            ) from exc


def parse_group_by(text: str) -> list[str]:
    """'device, zone' → ["device", "zone"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


class GroupByField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            "Tag keys, comma-separated, e.g. device: one alert per device (empty: one series)",
        )
        super().__init__(required=False, label="One alert per", **kwargs)
        self.widget.attrs["maxlength"] = "700"

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return parse_group_by(super().to_python(value) or "")


def parse_series_filter(text: str) -> dict[str, list[str]]:
    """'device=greenhouse-*|shed, zone=a' → {"device": ["greenhouse-*", "shed"], "zone": ["a"]}."""
    chosen: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in re.split(r"[,\n]", text))):
        key, sep, values = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(part)
        chosen[key.strip()] = [v.strip() for v in values.split("|") if v.strip()]
    return chosen


class SeriesFilterField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            "Only some series: tag=value, alternatives with |, * and ? as wildcards, "
            "e.g. device=greenhouse-*|shed",
        )
        super().__init__(required=False, label="Only series", **kwargs)
        self.widget.attrs["maxlength"] = "6000"

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return ", ".join(f"{k}={'|'.join(v)}" for k, v in value.items())
        return value

    def to_python(self, value: Any) -> dict[str, list[str]]:  # type: ignore[override]
        try:
            return parse_series_filter(super().to_python(value) or "")
        except ValueError as exc:
            raise forms.ValidationError(
                "Write each filter as tag=value, alternatives separated by |."
            ) from exc


# Offered in the field input (a datalist: any other name can be typed). vpd and dew_point are
# computed by growalert from each device reading's temperature and humidity (devices/derived.py).
FIELD_SUGGESTIONS = (
    ("temperature", "Temperature, °C"),
    ("humidity", "Relative humidity, %"),
    ("vpd", "VPD: vapour-pressure deficit, kPa (computed by growalert)"),
    ("dew_point", "Dew point, °C (computed by growalert)"),
    ("soil_moisture", "Soil moisture, %"),
    ("battery", "Device battery, %"),
    ("rssi", "Device signal (RSSI), dBm"),
)

FORM_FIELDS = [
    "name", "description", "source", "measurement", "field", "tags", "group_by",
    "series_filter", "storm_threshold", "aggregation",
    "percentile", "window", "comparator", "critical", "critical_high", "warning",
    "warning_high", "recovery", "lights_on", "lights_off", "night_critical",
    "night_critical_high", "night_warning", "night_warning_high", "night_recovery",
    "unit", "precision", "interval", "pending_for", "recover_after",
    "repeat_every",
    "no_data_policy", "error_policy", "flap_detection", "channels", "enabled",
]  # fmt: skip


class MonitorForm(forms.ModelForm[Monitor]):
    tags = TagsField()
    group_by = GroupByField()
    series_filter = SeriesFilterField()
    # the bounds are the model's (monitors/models.py); clean() runs them, as the API does
    window = HumanDurationField(
        label="Window", help_text=f"Aggregate over, e.g. 5m (at most {format_duration(MAX_WINDOW)})"
    )
    interval = HumanDurationField(
        label="Check every",
        help_text=f"e.g. 1m (at most {format_duration(MAX_INTERVAL)})",
    )
    pending_for = forms.CharField(
        label="Fire after failing for",
        max_length=20,
        help_text="A duration, e.g. 10m (0s: at the first failing check); a bare number "
        "counts failing checks",
    )
    repeat_every = HumanDurationField(
        label="Repeat every",
        required=False,
        help_text=f"Re-notify while firing, {format_duration(MIN_REPEAT)} to "
        f"{format_duration(MAX_REPEAT)} (empty: never)",
    )

    class Meta:
        model = Monitor
        fields = FORM_FIELDS
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "channels": forms.CheckboxSelectMultiple,
            "lights_on": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "lights_off": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }
        labels = {
            "critical": "Critical threshold",
            "critical_high": "Critical upper bound",
            "warning": "Warning threshold",
            "warning_high": "Warning upper bound",
            "recovery": "Recovery value",
            "unit": "Unit",
            "precision": "Decimals shown",
            "recover_after": "Resolve after (passing checks)",
            "no_data_policy": "When there is no data",
            "error_policy": "When the query fails",
            "storm_threshold": "Group messages above (series)",
            "lights_on": "Lights on (day from)",
            "lights_off": "Lights off (night from)",
            # not "Night: critical threshold": labels must not contain one another
            "night_critical": "Night critical",
            "night_critical_high": "Night critical high",
            "night_warning": "Night warning",
            "night_warning_high": "Night warning high",
            "night_recovery": "Night recovery",
        }
        help_texts = {
            "lights_on": "Optional: with lights off, the night thresholds below hold from "
            "lights off to lights on, in your account's time zone (daylight saving included)",
            "no_data_policy": "Notify: no data for the whole window, for as many checks as "
            "“Fire after”, notifies like a breach (and resolves when data returns).",
        }

    def __init__(self, *args: Any, owner: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        source_field = self.fields["source"]
        assert isinstance(source_field, forms.ModelChoiceField)
        source_field.queryset = Source.objects.filter(owner_id=owner.pk)
        channels_field = self.fields["channels"]
        assert isinstance(channels_field, forms.ModelMultipleChoiceField)
        channels_field.queryset = Channel.objects.filter(owner_id=owner.pk)
        channels_field.required = False
        if self.instance.pk is None and not self.is_bound:
            # a new monitor starts with the account's default channels ticked
            channels_field.initial = [
                c.pk for c in channels_field.queryset if c.default_for_new_monitors
            ]
            channels_field.help_text = (
                "Your channels marked “default for new monitors” are ticked (Channels page)"
            )
        self.field_suggestions = FIELD_SUGGESTIONS
        self.unit_suggestions = display.UNIT_SUGGESTIONS
        self.fields["unit"].widget.attrs["list"] = "unit-suggestions"
        self.fields["field"].widget.attrs["list"] = "field-suggestions"
        self.fields["measurement"].widget.attrs["list"] = "measurement-suggestions"
        self.fields["tags"].widget.attrs["list"] = "tag-suggestions"
        self.fields["field"].help_text = (
            "e.g. temperature, humidity, vpd (kPa) or dew_point (°C): growalert computes "
            "VPD and dew point from each device reading"
        )
        self.fields["storm_threshold"].help_text = (
            "More series than this changing at once: one message listing them "
            f"(empty: {settings.FLEET_STORM_THRESHOLD})"
        )
        self.fields["interval"].help_text = (
            f"e.g. 1m ({format_duration(min_interval_for(owner))} to "
            f"{format_duration(MAX_INTERVAL)} on your plan)"
        )
        for name in ("tags", "group_by", "series_filter", "window", "interval", "repeat_every"):
            self.fields[name].initial = getattr(self.instance, name, None)
        self.fields["pending_for"].initial = format_duration(
            pending_period(self.instance.pending_for or 1, self.instance.interval)
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            checks = pending_checks(cleaned.get("pending_for"), cleaned.get("interval"))
        except ValidationError as exc:
            self.add_error("pending_for", sentence(exc.messages[0]))
            return cleaned
        cleaned["pending_for"] = int(checks) if isinstance(checks, str) else checks
        values = {name: cleaned.get(name) for name in FORM_FIELDS}
        try:
            self.validated = validation.clean_definition(
                values, instance=self.instance if self.instance.pk else None, owner=self.owner
            )
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                target = name if name in self.fields else None
                for message in messages:
                    self.add_error(target, sentence(message))
        return cleaned

    def _post_clean(self) -> None:
        """Only builds the instance, as ModelForm does. The model's own validation is not run
        again: clean() ran the definition's validation, which applies the same field validators
        and Monitor.clean()'s rules (monitors/models.py), so each error is shown once."""
        try:
            self.instance = construct_instance(
                self, self.instance, self._meta.fields, self._meta.exclude
            )
        except forms.ValidationError as exc:
            self.add_error(None, exc)


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Channel.Kind.choices)
    target = forms.CharField(
        max_length=500,
        label="Send to",
        help_text="What it takes depends on the kind (below).",
    )
    device_health = forms.BooleanField(
        required=False,
        initial=True,
        label="Device health alerts",
        help_text="Also send the offline, battery low and signal weak alerts of all your "
        "devices, now and later, to this channel",
    )
    default_for_new_monitors = forms.BooleanField(
        required=False,
        initial=False,
        label="Default for new monitors",
        help_text="New monitors start with this channel ticked",
    )

    def channel_fields(self) -> dict[str, Any]:
        """What channel_create takes: the "Send to" text as the kind's config."""
        kind, target = self.cleaned_data["kind"], self.cleaned_data["target"].strip()
        config: dict[str, Any]
        if kind == Channel.Kind.EMAIL:
            config = {"addresses": [a.strip() for a in target.split(",") if a.strip()]}
        elif kind == Channel.Kind.SMS:
            config = {"phone": target}
        else:
            config = {"url": target}
        return {
            "name": self.cleaned_data["name"],
            "kind": kind,
            "config": config,
            "device_health": self.cleaned_data["device_health"],
            "default_for_new_monitors": self.cleaned_data["default_for_new_monitors"],
        }


class SilenceForm(forms.Form):
    """Silence one monitor for a duration ("2h") or until a moment, from now or from a given
    start, once or every day at that time (a maintenance window), with a reason."""

    starts = forms.DateTimeField(
        label="Starting",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text="Empty: now",
        error_messages={"invalid": "Enter a date and time, e.g. 2026-12-24 02:00."},
    )
    duration = HumanDurationField(label="Silence for", required=False, help_text="e.g. 30m, 2h, 1d")
    until = forms.DateTimeField(
        label="Or until",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text="A date and time in your time zone",
        error_messages={"invalid": "Enter a date and time, e.g. 2026-12-24 14:30."},
    )
    daily = forms.BooleanField(
        label="Every day at this time (a maintenance window)", required=False
    )
    reason = forms.CharField(
        max_length=300, required=False, help_text="e.g. cleaning the sensors (shown to others)"
    )

    def __init__(self, *args: Any, now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = now

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        duration, until = cleaned.get("duration"), cleaned.get("until")
        if self.errors:
            return cleaned
        if (duration is None) == (until is None):
            raise forms.ValidationError("Give either how long (e.g. 2h) or until when, not both.")
        starts = cleaned.get("starts") or self.now
        ends = starts + duration if duration is not None else until
        assert ends is not None
        field = "duration" if duration is not None else "until"
        daily = cleaned.get("daily")
        if ends <= (starts if daily else max(starts, self.now)):
            self.add_error(field, "The silence must end in the future, after it starts.")
        elif daily and ends - starts >= timedelta(days=1):
            self.add_error(field, "A daily window lasts less than a day.")
        elif ends - starts > MAX_SILENCE:
            self.add_error(field, SILENCE_TOO_LONG.capitalize() + ".")
        cleaned["starts_at"], cleaned["ends_at"] = starts, ends
        return cleaned


class SeriesSilenceForm(forms.Form):
    """Silence one series of a fleet monitor for a while, from its grid."""

    DURATIONS = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1),
                 "7d": timedelta(days=7)}  # fmt: skip

    series_key = forms.CharField(max_length=SERIES_KEY_LENGTH)
    duration = forms.ChoiceField(
        label="Silence a series for",
        choices=[("1h", "1 hour"), ("4h", "4 hours"), ("1d", "1 day"), ("7d", "7 days")],
        initial="1h",
    )


class SeriesAcknowledgeForm(forms.Form):
    """Acknowledge one series' open incident, from its fleet monitor's grid."""

    series_key = forms.CharField(max_length=SERIES_KEY_LENGTH)


class VerifyForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Code",
        error_messages={"invalid": "Enter the 6-digit code."},
    )


class ChargeForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=100, initial=1, label="Devices")


class SourceForm(forms.Form):
    """An InfluxDB source. Validated by the source service, as the API's; the secret is
    write-only."""

    name = forms.CharField(max_length=100)
    url = forms.CharField(
        max_length=500, label="URL", help_text="e.g. http://influx.example.com:8086"
    )
    database = forms.CharField(max_length=200, help_text="Database (1.x) or bucket (2.x)")
    flavor = forms.ChoiceField(choices=Source.Flavor.choices, label="Query language")
    org = forms.CharField(max_length=200, required=False, help_text="Organisation (Flux only)")
    auth_scheme = forms.ChoiceField(choices=Source.AuthScheme.choices, label="Authentication")
    username = forms.CharField(max_length=200, required=False, help_text="Basic auth only")
    secret = forms.CharField(
        required=False,
        max_length=500,
        label="Password or token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; never shown again",
    )

    def source_fields(self) -> dict[str, Any]:
        """What source_create takes: the fields filled in (an empty one keeps the default)."""
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}


class FreeAccountForm(forms.Form):
    """Sign-up on a deployment without Stripe (billing.services.free_account_register)."""

    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        min_length=8,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not a common password.",
    )
    name = forms.CharField(
        max_length=150, required=False, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
